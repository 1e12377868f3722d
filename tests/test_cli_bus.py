"""``yimen demo`` brings a living hall; ``yimen broker-config`` writes working Mosquitto files."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import urllib.request

import aiomqtt
import pytest

from controller.bus import security
from controller.config import load_config
from protocol.link import BrokerAddress
from tests.bushelp import free_port, mosquitto_available, reachable
from tests.helpers import DEMO, start_yimen
from tests.test_cli import yimen
from tests.waiting import wait_for

pytestmark = pytest.mark.slow                   # yimen processes and a Mosquitto of our own


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


async def test_demo_runs_the_hall_with_simulated_devices_and_citizens(tmp_path):
    proc, url, line = await start_yimen("demo", "--data", str(tmp_path), "--http", "127.0.0.1:0",
                                        "--mqtt", "127.0.0.1:0")
    try:
        assert "mqtt://127.0.0.1:" in line and "40 devices" in line
        await wait_for(lambda: sum(1 for w in get(url + "/api/board")["windows"] if w["ticket"]) >= 2,
                       20, "simulated citizens and clerks to bring two windows a ticket", interval=0.2)
        devices = get(url + "/api/devices")
        assert devices["ok"] and devices["connected"] and len(devices["devices"]) == 40
        assert all(d["online"] for d in devices["devices"]) and devices["errors"] == {}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


async def test_broker_config_files_run_mosquitto_with_the_hall_passwords(tmp_path):
    mosquitto_available()
    out, port = tmp_path / "mq", free_port()
    run = yimen("broker-config", "--config", str(DEMO), "--data", str(tmp_path), "--out", str(out),
                "--port", str(port))
    assert run.returncode == 0, run.stderr
    assert {p.name for p in out.iterdir()} == {"mosquitto.conf", "passwd", "acl"}
    assert oct((out / "passwd").stat().st_mode & 0o777) == "0o600"
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "set_tcp_nodelay true" in conf
    assert "max_queued_messages" in conf
    assert "topic write yimen/v1/demo/device/kiosk-1/event" in (out / "acl").read_text()
    # Mosquitto runs on these files, and a device logs in with the password derived from the
    # secret the CLI kept in --data
    config = load_config(DEMO)
    password = security.passwords(config, security.load_secret(config, tmp_path))["kiosk-1"]
    if os.geteuid() == 0:                         # Mosquitto started as root reads as 'mosquitto'
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam("mosquitto")
            os.chown(out / "passwd", user.pw_uid, user.pw_gid)
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                             "mosquitto.conf"], cwd=out, stderr=subprocess.DEVNULL)
    try:
        address = BrokerAddress("127.0.0.1", port)
        await wait_for(lambda: reachable(address), what=f"mosquitto to listen on port {port}")
        async with aiomqtt.Client("127.0.0.1", port, username="kiosk-1", password=password):
            pass
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", port, username="kiosk-1", password="guess"):
                pass
    finally:
        proc.terminate()
        proc.wait(10)


def test_bench_bus_measures_calls_and_tickets_through_a_hall_server_of_its_own():
    r = yimen("bench", "bus", "--devices", "30", "--windows", "3", "--presses", "3",
              "--interval", "0.05", "--tickets", "90")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "30 devices connected" in out and "3 windows calling" in out
    assert "(9 presses)" in out and "(9 round trips)" in out      # every press got its set
    assert "over 90 tickets" in out
    assert "did not arrive within 10 s: 0 []" in out and "bus errors: none" in out
    assert re.search(r"p50 \d+\.\d+ ms, p99 \d+\.\d+ ms \(9 presses\)", out)
    assert re.search(r"alone: +p50 \d+\.\d+ ms, p99 \d+\.\d+ ms", out)
    assert re.search(r"CPU per take: \d+\.\d+ ms, embedded broker's process \d+\.\d+ ms", out)

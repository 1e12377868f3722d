"""``yimen demo`` brings a living hall; ``yimen device credentials`` makes a device's password
and ``yimen broker-config`` writes working Mosquitto files for an external broker."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

import aiomqtt
import pytest

from controller.bus.credentials import id_token_key
from controller.bus.idcards import IdCards
from controller.config import load_config
from protocol.link import BrokerAddress
from tests.bushelp import free_port, mosquitto_available, reachable
from tests.helpers import DEMO, api_token, start_yimen
from tests.test_cli import yimen
from tests.waiting import wait_for

pytestmark = pytest.mark.slow                   # yimen processes and a Mosquitto of our own


def get(url: str, token: str = "") -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.loads(r.read())


async def test_demo_runs_the_hall_with_simulated_devices_and_citizens(tmp_path):
    """Every simulated device logs in with a credential of its own; a new one made through the
    running server (``yimen device credentials``) cuts the old holder off at once."""
    proc, url, line = await start_yimen("demo", "--data", str(tmp_path), "--http", "127.0.0.1:0",
                                        "--mqtt", "127.0.0.1:0")
    try:
        assert "mqtt://127.0.0.1:" in line and "41 devices" in line
        token = await api_token(load_config(DEMO), tmp_path)
        await wait_for(lambda: sum(1 for w in get(url + "/api/board")["windows"] if w["ticket"]) >= 2,
                       20, "simulated citizens and clerks to bring two windows a ticket", interval=0.2)
        devices = get(url + "/api/devices", token)
        assert devices["ok"] and devices["connected"] and len(devices["devices"]) == 41
        assert all(d["online"] for d in devices["devices"]) and devices["errors"] == {}

        made = subprocess.run([sys.executable, "-m", "controller.cli", "device", "credentials", "kiosk-2",
                               "--data", str(tmp_path), "--server", url.removeprefix("http://")],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "YIMEN_TOKEN": token})
        assert made.returncode == 0, made.stderr
        said = dict(line.split(":", 1) for line in made.stdout.splitlines())
        password = said["password"].strip()
        # the box's reader seals ID numbers to the running server's public key, printed with it
        assert said["id_public_key"].strip() == IdCards(id_token_key(tmp_path), "demo").public_key

        def kiosk_2_online() -> bool:
            listed = get(url + "/api/devices", token)["devices"]
            return next(d for d in listed if d["id"] == "kiosk-2")["online"]

        await wait_for(lambda: not kiosk_2_online(), 5, "the simulated kiosk-2, cut off, to be offline")
        port = int(line.rsplit(":", 1)[1])
        async with aiomqtt.Client("127.0.0.1", port, identifier="kiosk-2", username="kiosk-2",
                                  password=password):
            pass                                           # the new password is the one now
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


async def test_broker_config_files_run_mosquitto_with_the_hall_passwords(tmp_path):
    mosquitto_available()
    # a device's credential, made on the database (no server runs): shown once, with what the
    # box needs
    made = yimen("device", "credentials", "kiosk-1", "--config", str(DEMO), "--data", str(tmp_path))
    assert made.returncode == 0, made.stderr
    said = dict(line.split(":", 1) for line in made.stdout.splitlines())
    password = said["password"].strip()
    assert said["username"].strip() == said["device"].strip() == "kiosk-1"
    assert said["hall"].strip() == "demo" and said["broker"].strip() == "mqtt://127.0.0.1:1884"
    assert "只显示这一次" in made.stderr and "shown only this once" in made.stderr
    assert said["id_public_key"].strip() == IdCards(id_token_key(tmp_path), "demo").public_key
    assert "id_public_key" in made.stderr                 # what to do with it
    unknown = yimen("device", "credentials", "kiosk-99", "--config", str(DEMO), "--data", str(tmp_path))
    assert unknown.returncode == 1 and "kiosk-99" in unknown.stderr and not unknown.stdout

    out, port = tmp_path / "mq", free_port()
    run = yimen("broker-config", "--config", str(DEMO), "--data", str(tmp_path), "--out", str(out),
                "--port", str(port))
    assert run.returncode == 0, run.stderr
    assert {p.name for p in out.iterdir()} == {"mosquitto.conf", "passwd", "acl"}
    assert oct((out / "passwd").stat().st_mode & 0o777) == "0o600"
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "set_tcp_nodelay true" in conf
    assert "max_queued_messages" in conf and f"listener {port} 127.0.0.1" in conf
    assert "use_username_as_clientid true" in conf
    assert "topic write yimen/v1/demo/device/kiosk-1/event" in (out / "acl").read_text()
    users = [line.split(":")[0] for line in (out / "passwd").read_text().splitlines()]
    assert users == ["controller", "kiosk-1"]             # kiosk-2 has no credential yet
    caller = yimen("device", "credentials", "caller-w01", "--config", str(DEMO), "--data", str(tmp_path))
    assert caller.returncode == 0 and "id_public_key" not in caller.stdout    # no card reader
    assert password not in (out / "passwd").read_text()   # only its hash
    # Mosquitto runs on these files, and the device logs in with its own password
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
        for user, guess in [("kiosk-1", "guess"), ("kiosk-2", password), ("kiosk-2", "")]:
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client("127.0.0.1", port, username=user, password=guess):
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
    assert re.search(r"CPU per take: \d+\.\d+ ms, Mosquitto's process \d+\.\d+ ms", out)

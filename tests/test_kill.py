"""SIGKILL in the middle of a burst of ticket requests: every acknowledged ticket survives,
and numbering continues without a gap or a repeat."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from controller.config import load_config
from tests.helpers import DEMO, bearer, start_yimen
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def noon_timezone() -> str:
    """A fixed-offset zone where it is now about midday, so no rollover hits the test."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def write_config(folder: Path) -> Path:
    text = DEMO.read_text(encoding="utf-8").replace(
        'timezone = "Asia/Shanghai"', f'timezone = "{noon_timezone()}"')
    tomllib.loads(text)
    path = folder / "hall.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def start_server(config: Path, data: Path, mqtt: str = "127.0.0.1:0",
                       *extra: str) -> tuple[subprocess.Popen, str]:
    proc, url, _ = await start_yimen("serve", "--config", str(config), "--data", str(data),
                                     "--http", "127.0.0.1:0", "--mqtt", mqtt, *extra, timeout=30)
    return proc, url


async def test_sigkill_mid_burst_loses_no_acknowledged_ticket(tmp_path):
    config, data = write_config(tmp_path), tmp_path / "data"
    proc, url = await start_server(config, data)
    acked: list[str] = []
    headers = await bearer(load_config(config), data, "desk")
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            async def take(i: int) -> None:
                await asyncio.sleep(i * 0.002)                  # paces the burst
                async with http.post(f"{url}/api/tickets", json={"service": "A"}) as r:
                    if r.status == 201:
                        acked.append((await r.json())["ticket"]["number"])

            burst = [asyncio.create_task(take(i)) for i in range(600)]
            await wait_for(lambda: len(acked) >= 150, 30, "150 acknowledged tickets before the kill",
                           interval=0.005)
            proc.send_signal(signal.SIGKILL)
            await asyncio.gather(*burst, return_exceptions=True)
    finally:
        proc.kill()
        proc.wait()
    assert 150 <= len(acked) < 600, "the kill must land in the middle of the burst"
    assert len(set(acked)) == len(acked)

    proc, url = await start_server(config, data)
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{url}/api/tickets") as r:
                stored = [t["number"] for t in (await r.json())["tickets"] if t["service"] == "A"]
            assert set(acked) <= set(stored), "an acknowledged ticket was lost"
            async with http.post(f"{url}/api/tickets", json={"service": "A"}) as r:
                assert r.status == 201
                after = (await r.json())["ticket"]["number"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    numbers = stored + [after]
    assert len(numbers) == len(set(numbers)), "a number was issued twice"
    assert sorted(numbers) == [f"A{i:03d}" for i in range(1, len(numbers) + 1)], "a gap"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_a_killed_server_leaves_no_broker_holding_its_port(tmp_path):
    """The hall's Mosquitto is a child of the hall server that the kernel stops when the
    server dies, however it dies: it saves its retained messages and frees the port, so the
    server can start again on it."""
    config, data, port = write_config(tmp_path), tmp_path / "data", _free_port()
    proc, url = await start_server(config, data, f"127.0.0.1:{port}")
    saved = data / "broker" / "mosquitto.db"
    try:
        async with aiohttp.ClientSession(headers=await bearer(load_config(config), data)) as http:
            async def bus_up() -> bool:
                async with http.get(f"{url}/api/health") as r:
                    return (await r.json())["checks"]["bus"]["ok"]
            await wait_for(bus_up, 10, "the controller to be on its broker", interval=0.1)
        saved.unlink(missing_ok=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await wait_for(lambda: not _listening(port), 10,
                       f"port {port} to be free (the broker outlived the hall server)", interval=0.1)
        await wait_for(lambda: saved.exists() and b"controller/state" in saved.read_bytes(), 10,
                       "the retained messages saved on the broker's way out", interval=0.1)
    finally:
        proc.kill()
        proc.wait()
    proc, _ = await start_server(config, data, f"127.0.0.1:{port}")   # the same port again
    try:
        assert _listening(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

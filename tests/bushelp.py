"""Bus test helpers: brokers (embedded, the machine's Mosquitto, a Mosquitto of our own),
a hall server on an injected clock, and simulated devices acting over the real broker."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from controller.bus import security
from controller.bus.broker import EmbeddedBroker
from controller.bus.service import HallBus
from controller.clock import Clock
from controller.config import HallConfig, parse_config
from controller.engine import Engine
from controller.server import create_app
from controller.web.api import BUS, ENGINE
from devices.simhall import build_devices, connect_all
from protocol.client import DeviceClient
from protocol.link import BrokerAddress
from tests.waiting import wait_for

SECRET = "bus-test-secret"
MOSQUITTO_URL = os.environ.get("YIMEN_MQTT_URL", "mqtt://127.0.0.1:1883")
REQUIRED = os.environ.get("YIMEN_REQUIRE_SERVICES", "") not in ("", "0")


def unique(config: HallConfig, **hall: Any) -> HallConfig:
    """The same hall under a fresh id (tests share the machine's Mosquitto) and a known secret."""
    return config.model_copy(update={
        "hall": config.hall.model_copy(update={"id": f"t-{uuid.uuid4().hex[:10]}", **hall}),
        "bus": config.bus.model_copy(update={"secret": SECRET, "broker": ""})})


def big_hall(windows: int) -> HallConfig:
    """A hall of ``windows`` windows, each with a caller, a window display and an evaluator."""
    ids = [f"{i:02d}" for i in range(1, windows + 1)]
    devices = [{"id": "kiosk-1", "kind": "kiosk"}, {"id": "kiosk-2", "kind": "kiosk"},
               {"id": "hall-screen-1", "kind": "hall_display"}]
    for w in ids:
        devices += [{"id": f"caller-w{w}", "kind": "caller", "window": w},
                    {"id": f"led-w{w}", "kind": "window_display", "window": w},
                    {"id": f"eval-w{w}", "kind": "evaluator", "window": w}]
    return parse_config({
        "hall": {"id": f"t-{uuid.uuid4().hex[:10]}", "name": "大厅", "hours": ["00:00-24:00"],
                 "national_calendar": False,
                 "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        "services": [{"code": "A", "name": "综合", "daily_cap": 9999, "avg_service_min": 5}],
        "windows": [{"id": w, "services": ["A"]} for w in ids],
        "clerks": [{"id": f"1{w}", "name": f"员工{w}", "windows": [w]} for w in ids],
        "devices": devices, "bus": {"secret": SECRET},
    }, "big")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(address: BrokerAddress) -> bool:
    try:
        socket.create_connection((address.host, address.port), timeout=2).close()
        return True
    except OSError:
        return False


class Mosquitto:
    """A Mosquitto process of our own, from the files ``yimen broker-config`` writes."""

    def __init__(self, config: HallConfig, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in security.mosquitto_files(config, SECRET, self.port).items():
            (folder / name).write_text(text, encoding="utf-8")
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", "mosquitto.conf"], cwd=self.folder,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def listening() -> bool:
            if reachable(self.address):
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto failed: {self.proc.stderr.read().decode()}")
            return False

        await wait_for(listening, what=f"mosquitto to listen on port {self.port}", interval=0.05)

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            await asyncio.get_running_loop().run_in_executor(None, self.proc.wait)
            self.proc = None

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port)


@dataclass
class BrokerHandle:
    kind: str
    address: BrokerAddress
    acl: bool                                    # does this broker enforce protocol v1's ACL?
    _impl: Any = None

    async def restart(self, down_s: float = 0.3) -> None:
        await self._impl.stop()
        await asyncio.sleep(down_s)              # the outage itself: down this long, on purpose
        await self._impl.start()

    @property
    def url(self) -> str:
        return f"mqtt://{self.address.host}:{self.address.port}"


def mosquitto_available() -> bool:
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        return True
    if REQUIRED:
        pytest.fail("mosquitto is required here (YIMEN_REQUIRE_SERVICES) but not installed")
    pytest.skip("mosquitto is not installed")
    return False


@asynccontextmanager
async def open_broker(kind: str, config: HallConfig, folder: Path):
    """``embedded`` (amqtt, standalone so it can be restarted), ``mosquitto`` (the machine's,
    127.0.0.1:1883 or $YIMEN_MQTT_URL) or ``mosquitto-own`` (a process with our ACL)."""
    if kind == "embedded":
        broker = EmbeddedBroker(config, SECRET, folder, "127.0.0.1:0")
        address = await broker.start()
        try:
            yield BrokerHandle(kind, address, True, broker)
        finally:
            await broker.stop()
    elif kind == "mosquitto":
        address = BrokerAddress.parse(MOSQUITTO_URL)
        if not reachable(address):
            if REQUIRED:
                pytest.fail(f"Mosquitto is required here (YIMEN_REQUIRE_SERVICES) but "
                            f"{MOSQUITTO_URL} does not answer")
            pytest.skip(f"no MQTT broker at {MOSQUITTO_URL}")
        yield BrokerHandle(kind, address, False)
    else:
        mosquitto_available()
        own = Mosquitto(config, folder / "mosquitto")
        await own.start()
        try:
            yield BrokerHandle(kind, own.address, True, own)
        finally:
            await own.stop()


@dataclass
class HallServer:
    """The hall server's app (engine + bus) without its HTTP listener."""

    config: HallConfig
    data: Path
    clock: Clock | None
    broker: str | None
    runner: web.AppRunner | None = None
    restarts: int = field(default=0)

    async def start(self) -> None:
        app = create_app(self.config, self.data, clock=self.clock, broker=self.broker,
                         broker_listen="127.0.0.1:0")
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await asyncio.wait_for(self.bus.link.connected.wait(), 10)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def bus(self) -> HallBus:
        return self.runner.app[BUS]

    @property
    def engine(self) -> Engine:
        return self.runner.app[ENGINE]


@asynccontextmanager
async def hall_server(config: HallConfig, data: Path, clock: Clock | None = None,
                      broker: str | None = None):
    server = HallServer(config, data, clock, broker)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def devices(config: HallConfig, address: BrokerAddress, ids: list[str] | None = None,
                  **kwargs: Any):
    """Started simulators for ``ids`` (default: every configured device), connected."""
    built = build_devices(config, address, SECRET, **kwargs)
    chosen: dict[str, DeviceClient] = {i: built[i] for i in (ids or built)}
    for d in chosen.values():
        # MQTT client ids as unique as the test's hall id: test runs sharing the machine's
        # Mosquitto would otherwise take each other's "kiosk-1" session over and lose replies.
        # The broker checks logins and the ACL by user name, which stays the device id.
        d.link.client_id = f"{d.id}@{config.hall.id}"
    try:
        await connect_all(chosen.values())
        yield chosen
    finally:
        await asyncio.gather(*[d.stop() for d in chosen.values()])

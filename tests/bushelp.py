"""Bus test helpers: brokers (a Mosquitto of our own, supervised as the hall server runs it, or
the machine's), a hall server on an injected clock, and simulated devices acting over the real
broker, each logging in with its own credential."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiohttp import web

from controller.bus import credentials
from controller.bus.hall_broker import BROKER, HallBroker
from controller.bus.mosquitto import Mosquitto, conf_text
from controller.bus.security import CONTROLLER_USER, acl_text, passwd_text
from controller.bus.service import HallBus
from controller.clock import Clock
from controller.config import HallConfig, parse_config
from controller.engine import Engine
from controller.server import create_app, device_passwords
from controller.web.api import BUS, ENGINE
from devices.simhall import build_devices, connect_all
from protocol.client import DeviceClient
from protocol.link import BrokerAddress

MOSQUITTO_URL = os.environ.get("YIMEN_MQTT_URL", "mqtt://127.0.0.1:1883")
REQUIRED = os.environ.get("YIMEN_REQUIRE_SERVICES", "") not in ("", "0")
#: Hall id → device → password: what the brokers and hall servers of the tests made, for
#: ``devices`` (each test's hall has an id of its own).
PASSWORDS: dict[str, dict[str, str]] = {}


def unique(config: HallConfig, **hall: Any) -> HallConfig:
    """The same hall under a fresh id (tests share the machine's Mosquitto), on the broker
    the test names."""
    return config.model_copy(update={
        "hall": config.hall.model_copy(update={"id": f"t-{uuid.uuid4().hex[:10]}", **hall}),
        "bus": config.bus.model_copy(update={"broker": ""})})


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
        "devices": devices,
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


def mosquitto_available() -> bool:
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        return True
    if REQUIRED:
        pytest.fail("mosquitto is required here (YIMEN_REQUIRE_SERVICES) but not installed")
    pytest.skip("mosquitto is not installed (scripts/setup installs it)")
    return False


def standalone(config: HallConfig, folder: Path, data: Path) -> tuple[Mosquitto, dict[str, str]]:
    """A supervised Mosquitto with the hall's files, as ``yimen serve`` writes them, but of its
    own (so a test can stop and restart it, with or without a hall server): every enabled
    device gets a new password, and the controller logs in with the one kept in ``data`` (the
    hall server's data folder). Returns it and device → password."""
    passwords = {d.id: credentials.new_password() for d in config.devices if d.enabled}
    users = {CONTROLLER_USER: credentials.mosquitto_hash(credentials.controller_password(data)),
             **{d: credentials.mosquitto_hash(p) for d, p in passwords.items()}}
    files = {"passwd": passwd_text(users), "acl": acl_text(config)}

    async def made() -> dict[str, str]:
        return files

    address = BrokerAddress("127.0.0.1", free_port())
    folder = folder.resolve()
    return Mosquitto(folder, address, conf_text(config.hall.id, address, folder), made), passwords


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


@asynccontextmanager
async def open_broker(kind: str, config: HallConfig, folder: Path):
    """``own``: a Mosquitto of our own as the hall server supervises it (``standalone``:
    the hall server's data folder is ``folder / "data"``); ``mosquitto``: the machine's
    (127.0.0.1:1883 or $YIMEN_MQTT_URL, anonymous, no ACL)."""
    if kind == "own":
        mosquitto_available()
        broker, PASSWORDS[config.hall.id] = standalone(config, folder / "broker", folder / "data")
        await broker.start()
        try:
            yield BrokerHandle(kind, broker.address, True, broker)
        finally:
            await broker.stop()
    else:
        address = BrokerAddress.parse(MOSQUITTO_URL)
        if not reachable(address):
            if REQUIRED:
                pytest.fail(f"Mosquitto is required here (YIMEN_REQUIRE_SERVICES) but "
                            f"{MOSQUITTO_URL} does not answer")
            pytest.skip(f"no MQTT broker at {MOSQUITTO_URL}")
        yield BrokerHandle(kind, address, False)


@dataclass
class HallServer:
    """The hall server's app (engine + bus) without its HTTP listener."""

    config: HallConfig
    data: Path
    clock: Clock | None
    broker: str | None
    runner: web.AppRunner | None = None
    restarts: int = field(default=0)
    listen: str = "127.0.0.1:0"                      # its own broker's

    async def start(self) -> None:
        """Started; on its own broker (no ``broker``) every configured device gets a
        credential, as the demo's do."""
        if self.broker is None:
            mosquitto_available()
        app = create_app(self.config, self.data, clock=self.clock, broker=self.broker,
                         broker_listen=self.listen)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        if not self.config.bus.enabled:
            return
        await asyncio.wait_for(self.bus.link.connected.wait(), 10)
        if self.broker is None:
            PASSWORDS[self.config.hall.id] = await device_passwords(
                app, [d.id for d in self.engine.config.devices])

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

    @property
    def broker_own(self) -> HallBroker:
        """The hall's own Mosquitto (when no ``broker`` was named)."""
        return self.runner.app[BROKER]


@asynccontextmanager
async def hall_server(config: HallConfig, data: Path, clock: Clock | None = None,
                      broker: str | None = None, listen: str = "127.0.0.1:0"):
    server = HallServer(config, data, clock, broker, listen=listen)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def devices(config: HallConfig, address: BrokerAddress, ids: list[str] | None = None,
                  **kwargs: Any):
    """Started simulators for ``ids`` (default: every configured device), connected, each with
    the password the test's broker or hall server made for it."""
    built = build_devices(config, address, PASSWORDS.get(config.hall.id, {}), **kwargs)
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


async def receive(c: aiomqtt.Client, seconds: float = 0.7) -> list[tuple[str, bytes]]:
    """What ``c`` receives in ``seconds`` (topic, payload)."""
    got = []

    async def collect() -> None:
        async for m in c.messages:
            got.append((str(m.topic), bytes(m.payload)))

    try:
        await asyncio.wait_for(collect(), seconds)
    except TimeoutError:
        pass
    return got

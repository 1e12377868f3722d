"""Live configuration end to end over the hall server's own Mosquitto: what the JSON
configuration API changes (a new service, a keypad moved to another window, a kiosk disabled)
reaches the devices on MQTT at once, without a restart, and is still there after one: the
database's configuration wins over the unchanged demo hall file. A disabled kiosk is cut off
from the broker and cannot log in again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from aiohttp import web

from controller.clock import Clock
from controller.config import HallConfig, load_config
from devices.simulators import Caller, HallDisplay, Kiosk
from protocol.client import DeviceClient
from protocol.link import BrokerAddress
from tests.bushelp import PASSWORDS, HallServer, hall_server
from tests.helpers import DEMO, bearer
from tests.waiting import wait_for

pytestmark = pytest.mark.slow                   # the hall server starts its broker process, twice

KINDS: dict[str, type[DeviceClient]] = {"kiosk": Kiosk, "caller": Caller, "hall_display": HallDisplay}


@asynccontextmanager
async def served(config: HallConfig, data: Path, clock: Clock
                 ) -> AsyncIterator[tuple[HallServer, aiohttp.ClientSession]]:
    """The hall server (its own Mosquitto on a free port) with its HTTP listener on a free port,
    and an HTTP session on it."""
    async with hall_server(config, data, clock) as server:
        assert server.runner is not None
        site = web.TCPSite(server.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}",
                                         headers=await bearer(config, data)) as http:
            yield server, http


async def api(http: aiohttp.ClientSession, method: str, path: str, body: dict[str, Any] | None = None,
              status: int = 200) -> dict[str, Any]:
    async with http.request(method, path, json=body) as r:
        data = await r.json()
        assert r.status == status, (method, path, r.status, data)
        return data


@asynccontextmanager
async def connected(config: HallConfig, data: Path, broker: BrokerAddress, kinds: dict[str, str]
                    ) -> AsyncIterator[dict[str, Any]]:
    """Simulated devices (id → kind), logged in to the broker with their own passwords."""
    devs = {i: KINDS[kind](config.hall.id, i, broker, PASSWORDS[config.hall.id][i], retry_s=0.5)
            for i, kind in kinds.items()}
    try:
        for d in devs.values():
            await d.start()
        await asyncio.wait_for(asyncio.gather(*[d.link.connected.wait() for d in devs.values()]), 10)
        yield devs
    finally:
        await asyncio.gather(*[d.stop() for d in devs.values()])


async def test_configuration_changes_reach_the_bus_live_and_survive_a_restart(tmp_path, clock):
    data = tmp_path / "data"
    config = load_config(DEMO)                  # the demo hall file as shipped
    async with served(config, data, clock) as (server, http):
        broker = server.bus.link.broker
        kinds = {"kiosk-1": "kiosk", "kiosk-2": "kiosk", "caller-w01": "caller",
                 "hall-screen-1": "hall_display"}
        async with connected(config, data, broker, kinds) as dev:
            kiosk, kiosk_2, caller, screen = (dev[i] for i in kinds)

            # 1. a new service, added to window 1, is taken at a kiosk connected before it existed
            added = await api(http, "POST", "/api/config/services",
                              {"code": "F", "name": "公积金", "category": "公积金"}, status=201)
            assert added["ok"] and added["id"] == "F"
            await api(http, "PATCH", "/api/config/windows/1", {"services": ["A", "F"]})
            ticket = await kiosk.take("F")
            assert (ticket["number"], ticket["service"]) == ("F001", "F")

            # 2. caller-w01 moved to window 2: a clerk of window 2 logs in from it and calls there
            moved = await api(http, "PATCH", "/api/config/devices/caller-w01", {"window": "2"})
            assert moved["ok"] and moved["id"] == "caller-w01"
            assert (await kiosk.take("A"))["number"] == "A001"
            await caller.press("login", staff="1002")              # 李娜: window 2 is hers
            called = await caller.press("next")
            assert called["result"]["ticket"]["number"] == "A001", called
            assert called["result"]["ticket"]["window"] == "2", called
            await screen.wait_until(lambda: any(c["ticket"] == "A001" for c in screen.calls))
            (call,) = [c for c in screen.calls if c["ticket"] == "A001"]
            assert (call["window"], call["text"]) == ("2", "请A001号到2号窗口办理")
            board = await api(http, "GET", "/api/board")
            windows = {w["window"]: w for w in board["windows"]}
            assert (windows["2"]["state"], windows["2"]["ticket"]) == ("serving", "A001")
            assert windows["1"]["ticket"] is None                  # nobody called at window 1
            status = {d["id"]: d for d in server.bus.status()["devices"]}
            assert status["caller-w01"]["bound_window"] == "2"

            # 3. kiosk-2 disabled: the broker cuts it off at once and lets it in no more, so it
            # takes no ticket
            disabled = await api(http, "PATCH", "/api/config/devices/kiosk-2", {"enabled": False})
            assert disabled["ok"]
            await wait_for(lambda: not kiosk_2.link.connected.is_set(), 1.0, "kiosk-2 to be cut off")
            await refused(broker, "kiosk-2", PASSWORDS[config.hall.id]["kiosk-2"])
            tickets = (await api(http, "GET", "/api/tickets"))["tickets"]
            assert sorted(t["number"] for t in tickets) == ["A001", "F001"]
            # kiosk-1 still takes tickets
            assert (await kiosk.take("A"))["number"] == "A002"

    # 4. a restart on the same data folder, from the same (unchanged) hall file: the
    # database's configuration, not the file's
    config = load_config(DEMO)
    async with served(config, data, clock) as (server, http):
        service = (await api(http, "GET", "/api/config/services/F"))["item"]
        assert (service["code"], service["name"], service["category"]) == ("F", "公积金", "公积金")
        assert (await api(http, "GET", "/api/config/windows/1"))["item"]["services"] == ["A", "F"]
        caller_w01 = (await api(http, "GET", "/api/config/devices/caller-w01"))["item"]
        assert (caller_w01["window"], caller_w01["enabled"]) == ("2", True)
        kiosk_2 = (await api(http, "GET", "/api/config/devices/kiosk-2"))["item"]
        assert (kiosk_2["kind"], kiosk_2["enabled"]) == ("kiosk", False)
        # ... and the bus and the broker follow it from the start: kiosk-2 cannot log in,
        # kiosk-1 takes the next F ticket, caller-w01 is bound to window 2
        broker = server.bus.link.broker
        assert server.bus.devices["caller-w01"].window == "2"
        await refused(broker, "kiosk-2", PASSWORDS[config.hall.id]["kiosk-2"])
        async with connected(config, data, broker, {"kiosk-1": "kiosk"}) as dev:
            assert (await dev["kiosk-1"].take("F"))["number"] == "F002"


async def refused(broker: BrokerAddress, user: str, password: str) -> None:
    """``user`` cannot log in to ``broker`` with ``password``."""
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(broker.host, broker.port, identifier=user, username=user,
                                  password=password, timeout=5):
            pass

"""The demo hall end to end over the server's own Mosquitto: a citizen takes a ticket at
kiosk-1, caller-w01 calls it, led-w01 shows it, hall-screen-1 and the announcer get the call,
eval-w01 asks for a rating and the rating is stored."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from controller.storage import schema
from tests.bushelp import devices, hall_server, unique
from tests.helpers import demo_config
from tests.waiting import wait_for

pytestmark = pytest.mark.slow                   # the hall server starts its broker process


async def test_a_citizen_from_kiosk_to_rating(tmp_path, clock):
    config = unique(demo_config())
    async with hall_server(config, tmp_path / "data", clock) as server:      # its own Mosquitto
        ids = ["kiosk-1", "caller-w01", "led-w01", "hall-screen-1", "announcer-1", "eval-w01"]
        async with devices(config, server.bus.link.broker, ids) as dev:
            kiosk, caller, led = dev["kiosk-1"], dev["caller-w01"], dev["led-w01"]
            screen, announcer, evaluator = dev["hall-screen-1"], dev["announcer-1"], dev["eval-w01"]
            ticket = await kiosk.take("A")
            assert ticket["number"] == "A001" and kiosk.printed == [ticket]
            await caller.press("login", staff="1001")
            await caller.press("next")
            await led.wait_until(lambda: led.lines == ["A001", "请到1号窗口"])
            assert led.shown["flash_s"] > 0
            await screen.wait_until(lambda: len(screen.calls) == 1 and screen.board is not None
                                    and screen.board["windows"][0]["ticket"] == "A001")
            call = screen.calls[0]
            assert (call["ticket"], call["window"], call["recall"]) == ("A001", "1", False)
            assert call["text"] == "请A001号到1号窗口办理"
            assert screen.board["recent_calls"][-1]["ticket"] == "A001"
            await announcer.wait_until(lambda: len(announcer.spoken) == 2)
            assert announcer.spoken == ["请A001号到1号窗口办理"] * 2 and announcer.max_speaking == 1
            await caller.press("evaluate")
            prompt = await asyncio.wait_for(evaluator.prompted.get(), 10)
            assert prompt["ticket"] == "A001"
            await evaluator.rate("very_satisfied")
            # the registry saw every device come online
            status = {d["id"]: d for d in server.bus.status()["devices"]}
            assert all(status[i]["online"] for i in ids)
            assert status["led-w01"]["bound_window"] == "1"
        async with server.engine.db.connect() as conn:
            (row,) = (await conn.execute(select(schema.evaluations))).all()
        assert (row.number, row.window, row.clerk, row.level) == ("A001", "1", "1001", "very_satisfied")

        def kiosk_online() -> bool:
            (kiosk_1,) = [d for d in server.bus.status()["devices"] if d["id"] == "kiosk-1"]
            return kiosk_1["online"]

        await wait_for(lambda: not kiosk_online(), what="kiosk-1 to go offline once stopped")


async def test_announcements_never_overlap_under_a_burst(tmp_path, clock):
    config = unique(demo_config())
    async with hall_server(config, tmp_path / "data", clock) as server:
        ids = ["kiosk-1", "announcer-1"] + [f"caller-w{i:02d}" for i in range(1, 4)]
        async with devices(config, server.bus.link.broker, ids) as dev:
            dev["announcer-1"].seconds_per_char = 0.0005      # each sentence takes a while
            for _ in range(21):
                await dev["kiosk-1"].take("A")
            callers = [dev[f"caller-w{i:02d}"] for i in range(1, 4)]
            for c, staff in zip(callers, ("1001", "1002", "1003"), strict=True):
                await c.press("login", staff=staff)
            for _ in range(7):
                await asyncio.gather(*[c.press("next") for c in callers])
            announcer = dev["announcer-1"]
            await announcer.wait_until(lambda: len(announcer.spoken) == 42, 20)
            assert announcer.max_speaking == 1
            assert len(set(announcer.spoken)) == 21

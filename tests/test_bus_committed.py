"""What devices and pages show is committed state only: a call whose commit fails in the middle
of a burst is never on a window screen, a keypad, the calls, the board or a page, and all of
them go on showing what was stored."""

from __future__ import annotations

import asyncio
import json

import pytest

from controller.web.feed import FEED
from devices.simulators import Refusal
from tests.bushelp import devices, hall_server, open_broker, unique
from tests.helpers import demo_config
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def record(device, name: str, into: list) -> None:  # noqa: ANN001
    """Keep every ``set``/``call``/``board`` ``device`` is sent, in order."""
    handler = getattr(device, name)

    async def keep(body):  # noqa: ANN001
        into.append(body)
        await handler(body)
    setattr(device, name, keep)


async def test_a_call_whose_commit_fails_is_shown_nowhere(tmp_path, clock):
    config = unique(demo_config())
    async with open_broker("mosquitto", config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ["kiosk-1", "caller-w01", "led-w01", "hall-screen-1"]) as dev:
        kiosk, caller, led, screen = (dev[i] for i in ("kiosk-1", "caller-w01", "led-w01", "hall-screen-1"))
        shown: list[dict] = []
        for device, name in ((led, "on_set"), (caller, "on_set"), (screen, "on_call"), (screen, "on_board")):
            record(device, name, shown)
        page: asyncio.Queue = asyncio.Queue(1000)      # what a hall-screen page is pushed
        server.runner.app[FEED].clients.add(page)

        real = server.engine.repo.write

        def refuse_a003(conn, rows):  # noqa: ANN001 - storage refuses A003's call, every time
            if any({"A003", "called"} <= set(r.values() if isinstance(r, dict) else r)
                   for _, ps in rows for r in ps):
                raise OSError("value refused by storage")
            real(conn, rows)
        server.engine.repo.write = refuse_a003

        for _ in range(5):
            await kiosk.take("A")
        await caller.press("login", staff="1001")
        burst = await asyncio.gather(caller.press("next"), caller.press("next"), caller.press("next"),
                                     kiosk.take("A"), kiosk.take("A"), return_exceptions=True)
        refused = [r for r in burst if isinstance(r, Refusal)]
        assert [r.reply["error"]["code"] for r in refused] == ["unavailable"], burst
        for number in ("A004", "A005"):
            assert (await caller.press("call", number=number))["ok"]
        await wait_for(lambda: led.lines[:1] == ["A005"], what="the window screen to show A005")
        await wait_for(lambda: any(c["ticket"] == "A005" for c in screen.calls), what="A005's call")

        text = json.dumps(shown, ensure_ascii=False)
        pushed = []
        while not page.empty():
            item = page.get_nowait()
            if item is not None:            # (a board lists A003 among the next waiting: it is)
                kind, data, frame = item
                if kind == "board":
                    data = {**data, "services": [{**s, "next": []} for s in data["services"]]}
                pushed.append(json.dumps(data, ensure_ascii=False))
        assert "A003" not in text, "a call that was never committed reached a device"
        assert pushed and not any("A003" in p for p in pushed), \
            "a call that was never committed reached a page"
        # and what is shown is the stored state: A003 still waits, window 1 serves A005
        hall = await server.engine.settled()
        assert hall.ticket("A003").state.value == "waiting"
        await wait_for(lambda: screen.board["windows"][0]["ticket"] == "A005",  # the board follows
                       what="the hall screen's board to show A005 at window 1")
        assert hall.window_view("1")["ticket"] == "A005"

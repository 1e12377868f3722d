"""Protocol v1 contract: tests that act as devices over a real broker (the hall's own Mosquitto
and the machine's)."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest
from sqlalchemy import select

from controller.bus.service import COUNTS_EVERY_S
from controller.storage import schema
from devices.simulators import Refusal
from protocol import MAX_PAYLOAD
from tests.bushelp import big_hall, devices, hall_server, open_broker, unique
from tests.helpers import demo_config, snapshot
from tests.waiting import wait_for


@pytest.fixture(params=["own", pytest.param("mosquitto", marks=pytest.mark.slow)])
def broker_kind(request) -> str:
    """conftest's ``broker_kind`` (the hall's own Mosquitto and the machine's), with the
    machine's runs in the slow lane: the fast lane (``-m "not slow"``) keeps the contract on a
    Mosquitto of the test's own, which needs no outside service and starts in milliseconds."""
    return request.param


async def raw_event(device, payload: bytes) -> dict:
    """Publish raw bytes as ``device``'s event and return the next ``cmd`` it receives."""
    async with device._changed:
        before = len(device._seen_cmds)
        await device.link.publish(device.topics.device(device.id, "event"), payload)
        await asyncio.wait_for(device._changed.wait_for(lambda: len(device._seen_cmds) > before), 10)
    return device.last_cmd


async def test_take_replies_with_a_ticket_and_a_repeat_gets_the_same_one(broker_kind, tmp_path, clock):
    config = unique(demo_config())
    async with open_broker(broker_kind, config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ["kiosk-1"]) as dev:
        kiosk = dev["kiosk-1"]
        first = await kiosk.send("take", service="B", event_id="boot1:7")
        again = await kiosk.send("take", service="B", event_id="boot1:7")
        assert first["ok"] and first["op"] == "ticket" and first["ref"] == "boot1:7"
        assert first["ticket"]["number"] == again["ticket"]["number"] == "B001"
        assert first["ticket"]["service_name"] == "不动产登记"
        assert {"ahead", "est_wait_min", "issued_at"} <= set(first["ticket"])
        assert len((await server.engine.settled()).queue.all) == 1                  # never a second ticket
        other = await kiosk.take("B", priority="green", phone_tail="1234")
        assert other["number"] == "B002" and "phone_tail" not in json.dumps(other)
        refused = await kiosk.send("take", service="Z")
        assert not refused["ok"] and refused["op"] == "error"
        assert refused["error"] == {"code": "unknown_service", "message": refused["error"]["message"]}
        assert refused["error"]["message"]                           # zh-CN text for the screen
        # the registry knows the kiosk from its retained info and availability
        status = server.bus.status()
        (record,) = [d for d in status["devices"] if d["id"] == "kiosk-1"]
        assert record["kind"] == "kiosk" and record["online"] and record["model"] == "yimen-sim"


@pytest.mark.slow
async def test_fifty_callers_pressing_next_at_once_never_get_the_same_ticket(broker_kind, tmp_path, clock):
    config = unique(big_hall(50))
    async with open_broker(broker_kind, config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address) as dev:
        for _ in range(60):
            await dev["kiosk-1"].take("A")
        callers = [dev[f"caller-w{i:02d}"] for i in range(1, 51)]
        await asyncio.gather(*[c.press("login", staff=f"1{c.id[-2:]}") for c in callers])
        replies = await asyncio.gather(*[c.press("next") for c in callers])
        numbers = [r["result"]["ticket"]["number"] for r in replies]
        assert len(set(numbers)) == 50 and set(numbers) == {f"A{i:03d}" for i in range(1, 51)}
        # every window display and caller readout shows its own window's ticket
        for caller, number in zip(callers, numbers, strict=True):
            led = dev[f"led-w{caller.id[-2:]}"]
            await led.wait_until(lambda led=led, n=number: led.lines[:1] == [n])
            await caller.wait_until(lambda c=caller, n=number: c.shown == {
                "op": "show", "text": n, "waiting": 10, "state": "serving"})
        hall = await server.engine.settled()
        assert sorted(w.current for w in hall.desk.windows.values() if w.current) == \
            sorted(t.id for t in hall.queue.all.values() if t.window)


@pytest.mark.slow
async def test_a_call_shows_at_once_and_a_rush_of_tickets_updates_readouts_once(broker_kind, tmp_path,
                                                                             clock):
    """What citizens watch (the called window's screen) goes out at once; the people-waiting
    count on every other keypad follows a rush of tickets within a second, not per ticket."""
    config = unique(big_hall(6))
    async with open_broker(broker_kind, config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url), \
            devices(config, broker.address) as dev:
        callers = [dev[f"caller-w{i:02d}"] for i in range(1, 7)]
        await asyncio.gather(*[c.press("login", staff=f"1{c.id[-2:]}") for c in callers])
        watcher = dev["caller-w06"]
        await watcher.wait_until(lambda: watcher.shown and watcher.shown["state"] == "idle")
        seen: list[int] = []
        real_on_set = watcher.on_set

        async def counting(body):
            seen.append(body["waiting"])
            await real_on_set(body)

        watcher.on_set = counting
        for _ in range(30):
            await dev["kiosk-1"].take("A")
        await watcher.wait_until(lambda: watcher.shown["waiting"] == 30, COUNTS_EVERY_S * 5)
        assert seen[-1] == 30 and len(seen) <= 3, seen          # coalesced, and right
        # Kept as a sleep: the counting period under test. One and a half periods lets the
        # last count go out and the counter fall quiet, so the "not yet" check below starts
        # a fresh period (nothing a device receives says when the counter has gone idle).
        await asyncio.sleep(COUNTS_EVERY_S * 1.5)
        led = dev["led-w01"]
        await callers[0].press("next")
        await led.wait_until(lambda: led.lines[:1] == ["A001"], COUNTS_EVERY_S / 2)
        assert watcher.shown["waiting"] == 30                   # not yet: it follows
        await watcher.wait_until(lambda: watcher.shown["waiting"] == 29, COUNTS_EVERY_S * 5)


async def test_every_caller_key_acts_and_refusals_carry_codes(broker_kind, tmp_path, clock):
    config = unique(demo_config())
    ids = ["kiosk-1", "caller-w01", "led-w01", "caller-w04", "hall-screen-1"]
    async with open_broker(broker_kind, config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ids) as dev:
        kiosk, caller, led, screen = dev["kiosk-1"], dev["caller-w01"], dev["led-w01"], dev["hall-screen-1"]

        async def refused(key: str, **fields) -> str:
            try:
                await caller.press(key, **fields)
            except Refusal as r:
                return r.code
            raise AssertionError(f"{key} was not refused")

        assert await refused("next") == "not_logged_in"
        await caller.press("login", staff="1001")
        assert await refused("next") == "queue_empty"
        for _ in range(4):
            await kiosk.take("A")
        called = await caller.press("next")
        assert called["result"]["ticket"]["number"] == "A001"
        await caller.press("recall")
        await screen.wait_until(lambda: [c["recall"] for c in screen.calls] == [False, True])
        assert screen.calls[1]["text"] == "请A001号到1号窗口办理"
        await caller.press("no_show")
        await caller.press("next")                                     # A002
        await caller.press("hold")
        await caller.press("next")                                     # A003
        await caller.press("call", number="A002")                      # call back the held one
        await led.wait_until(lambda: led.lines[:1] == ["A002"])
        await caller.press("transfer", to_service="B")                 # A002 goes to the B line
        await caller.press("next")                                     # A004
        await caller.press("evaluate")
        await caller.press("done")
        await caller.press("pause")
        assert await refused("next") == "window_paused"
        await caller.press("resume")
        assert await refused("call", number="A999") == "unknown_ticket"
        await caller.press("logout")
        await led.wait_until(lambda: led.lines == ["1号窗口", "暂停服务"])
        t = (await server.engine.settled()).queue.all
        states = {x.number: x.state.value for x in t.values()}
        assert states["A001"] == "no_show" and states["A004"] == "done"
        a002 = next(x for x in t.values() if x.number == "A002")
        assert states["A002"] == "waiting" and a002.service == "B"
        await dev["caller-w04"].press("login", staff="1004")
        moved = await dev["caller-w04"].press("next")                  # the B window gets A002
        assert moved["result"]["ticket"]["number"] == "A002"


async def test_bad_input_gets_an_error_reply_is_counted_and_changes_nothing(broker_kind, tmp_path, clock):
    config = unique(demo_config())
    async with open_broker(broker_kind, config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ["kiosk-1", "caller-w01", "hall-screen-1"]) as dev:
        kiosk, caller = dev["kiosk-1"], dev["caller-w01"]
        for d in (kiosk, caller):
            d.last_cmd = None

            async def keep(body, d=d):
                d.last_cmd = body
            d.on_cmd = keep
        await kiosk.take("A")
        before = snapshot(await server.engine.settled())
        cases = [
            (kiosk, b"{not json", None, "bad_json"),
            (kiosk, b"\xff\xfe", None, "bad_json"),
            (kiosk, b"[1, 2]", None, "bad_payload"),
            (kiosk, b'{"type": "take", "service": "A"}', None, "missing_field"),
            (kiosk, b'{"event_id": "x1", "service": "A"}', "x1", "missing_field"),
            (kiosk, b'{"event_id": "x2", "type": "dance"}', "x2", "unknown_type"),
            (kiosk, b'{"event_id": "x3", "type": "take"}', "x3", "missing_field"),
            (kiosk, b'{"event_id": "x4", "type": "take", "service": 7}', "x4", "bad_field"),
            (kiosk, b'{"event_id": "x5", "type": "key", "key": "next"}', "x5", "wrong_kind"),
            (caller, b'{"event_id": "x6", "type": "key", "key": "explode"}', "x6", "unknown_key"),
            (caller, b'{"event_id": "x7", "type": "key", "key": "call"}', "x7", "missing_field"),
            (caller, b'{"event_id": "x8", "type": "rating", "level": "basic"}', "x8", "wrong_kind"),
            (kiosk, b'{"event_id": "x9", "type": "take", "service": "A", "pad": "'
             + b"x" * MAX_PAYLOAD + b'"}', None, "payload_too_large"),
        ]
        for device, payload, ref, code in cases:
            out = await raw_event(device, payload)
            assert "error" in out, (payload[:40], out)
            got = (out["op"], out["ok"], out["ref"], out["error"]["code"])
            assert got == ("error", False, ref, code), payload[:60]
            assert out["error"]["message"]
        assert snapshot(await server.engine.settled()) == before                  # nothing changed
        assert sum(server.bus.errors.values()) == len(cases)
        status = {d["id"]: d for d in server.bus.status()["devices"]}
        assert status["kiosk-1"]["errors"] == 10 and status["caller-w01"]["errors"] == 3
        assert status["kiosk-1"]["last_error"].startswith("payload_too_large")
        # the bus keeps working
        assert (await kiosk.take("A"))["number"] == "A002"


async def test_unknown_and_unbound_devices_change_nothing(tmp_path, clock):
    """On a broker without the ACL (the machine's Mosquitto) a stranger can still publish."""
    base = demo_config()
    config = unique(base.model_copy(update={"devices": base.devices + (
        base.devices[0].model_copy(update={"id": "caller-spare", "kind": "caller", "window": None}),)}))
    async with open_broker("mosquitto", config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ["caller-spare"]) as dev:
        before = snapshot(await server.engine.settled())
        spare = dev["caller-spare"]
        try:
            await spare.press("next")
        except Refusal as r:
            assert r.code == "not_bound"
        else:
            raise AssertionError("an unbound caller acted")
        async with aiomqtt.Client(broker.address.host, broker.address.port, identifier="stranger") as c:
            topic = f"{server.bus.topics.root}device/stranger/"
            await c.subscribe(topic + "cmd", qos=1)
            await c.publish(topic + "event", b'{"event_id":"s1","type":"take","service":"A"}', qos=1)
            async for message in c.messages:
                body = json.loads(message.payload)
                break
        assert body["error"]["code"] == "unknown_device" and body["ref"] == "s1"
        assert snapshot(await server.engine.settled()) == before


async def test_ratings_one_per_session_stored_and_time_outs_unrated(broker_kind, tmp_path, clock):
    config = unique(demo_config(), evaluation_timeout_s=30)
    ids = ["kiosk-1", "caller-w01", "eval-w01"]
    async with open_broker(broker_kind, config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ids) as dev:
        kiosk, caller, evaluator = dev["kiosk-1"], dev["caller-w01"], dev["eval-w01"]
        await evaluator.wait_until(lambda: evaluator.shown == {"op": "idle"})
        await kiosk.take("A")
        await kiosk.take("A")
        await caller.press("login", staff="1001")
        await caller.press("next")
        await caller.press("evaluate")
        prompt = await asyncio.wait_for(evaluator.prompted.get(), 10)
        assert prompt["ticket"] == "A001" and prompt["staff_name"] == "王*"
        assert prompt["timeout_s"] == 30 and "level" not in prompt      # nothing pre-selected
        ack = await evaluator.rate("dissatisfied", ["attitude"])
        assert ack["ok"] and ack["evaluation"]["level"] == "dissatisfied"
        await evaluator.wait_until(lambda: evaluator.shown == {"op": "idle"})
        try:
            await evaluator.rate("very_satisfied", session=prompt["session"])
        except Refusal as r:
            assert r.code == "session_closed"
        else:
            raise AssertionError("a second rating was taken")
        # the next citizen walks away: the session times out as unrated
        await caller.press("next")
        await caller.press("evaluate")
        second = await asyncio.wait_for(evaluator.prompted.get(), 10)
        clock.advance(seconds=31)
        await evaluator.wait_until(lambda: evaluator.shown == {"op": "idle"})
        async with server.engine.db.connect() as conn:
            rows = {r.number: r for r in (await conn.execute(select(schema.evaluations))).all()}
        assert rows["A001"].level == "dissatisfied" and rows["A001"].clerk == "1001"
        assert rows["A001"].window == "1" and rows["A001"].closed_at is not None
        assert rows["A002"].level is None and rows["A002"].closed_at is not None
        assert second["ticket"] == "A002"


async def test_controller_restart_keeps_every_display_right(broker_kind, tmp_path, clock):
    config = unique(big_hall(6))
    async with open_broker(broker_kind, config, tmp_path) as broker:
        server = hall_server(config, tmp_path / "data", clock, broker.url)
        async with server as first, devices(config, broker.address) as dev:
            boot = first.bus.boot_id
            for _ in range(4):
                await dev["kiosk-1"].take("A")
            for i in range(1, 5):
                await dev[f"caller-w{i:02d}"].press("login", staff=f"10{i}")
                await dev[f"caller-w{i:02d}"].press("next")
            await dev["led-w04"].wait_until(lambda: dev["led-w04"].lines[:1] == ["A004"])
        # the controller is gone; a display that reboots now still shows the right thing
        async with devices(config, broker.address, [f"led-w{i:02d}" for i in range(1, 7)]) as rebooted:
            for i in range(1, 7):
                led = rebooted[f"led-w{i:02d}"]
                want = [f"A{i:03d}"] if i <= 4 else [server_window_name(config, i)]
                await led.wait_until(lambda led=led, w=want: led.lines[:1] == w)
        async with hall_server(config, tmp_path / "data", clock, broker.url) as second, \
                devices(config, broker.address) as dev:
            assert second.bus.boot_id != boot
            for i in range(1, 5):
                led = dev[f"led-w{i:02d}"]
                await led.wait_until(lambda led=led, i=i: led.lines[:1] == [f"A{i:03d}"])
            await dev["caller-w01"].wait_until(
                lambda: (dev["caller-w01"].controller or {}).get("boot_id") == second.bus.boot_id)
            assert dev["caller-w01"].controller["state"] == "online"
            assert (await dev["caller-w05"].send("key", key="next"))["error"]["code"] == "not_logged_in"


def server_window_name(config, i: int) -> str:
    window = config.windows[i - 1]
    return window.name


async def test_a_device_announcing_garbage_leaves_the_device_list_readable(tmp_path, clock):
    config = unique(demo_config())
    async with open_broker("own", config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ["kiosk-1"]) as dev:
        kiosk = dev["kiosk-1"]
        await kiosk.link.publish(kiosk.topics.device("kiosk-1", "info"),
                                 b'{"kind": "\\ud800", "model": "' + b"m" * 500 + b'", "fw": "1.0"}',
                                 retain=True)
        await wait_for(lambda: server.bus.errors["bad_info"] >= 1, what="the bad info to be counted")
        (record,) = [d for d in server.bus.status()["devices"] if d["id"] == "kiosk-1"]
        assert (record["kind"], record["model"], record["fw"]) == (None, None, "1.0")
        json.dumps(server.bus.status(), ensure_ascii=False).encode()   # the page can show it


async def test_where_the_hall_asks_for_it_a_keypad_login_needs_the_clerks_pin(tmp_path, clock):
    from controller.auth.accounts import Accounts
    from controller.cli_auth import open_hall_db

    config = unique(demo_config())
    config = config.model_copy(update={"hall": config.hall.model_copy(update={"keypad_pin": True})})
    db = await open_hall_db(tmp_path / "data", None)
    try:
        accounts = Accounts(db, config.hall.id)
        await accounts.add_user("wangfang", ["clerk"], "a long enough phrase", staff="1001")
        await accounts.change_user("wangfang", {"pin": "2468"})
    finally:
        await db.dispose()
    async with hall_server(config, tmp_path / "data", clock) as server, \
            devices(config, server.bus.link.broker, ["caller-w01"]) as dev:
        caller = dev["caller-w01"]

        async def refused(**fields) -> str:
            try:
                await caller.press("login", staff="1001", **fields)
            except Refusal as r:
                return r.code
            raise AssertionError("the login was not refused")

        assert await refused() == "pin_required"
        assert await refused(pin="1357") == "bad_pin"
        await caller.press("login", staff="1001", pin="2468")
        window = (await server.engine.settled()).desk.windows["1"]
        assert window.clerk == "1001"
        await caller.press("logout")
        for _ in range(6):                                         # five free, then a wait
            assert await refused(pin="0000") == "bad_pin"
        assert await refused(pin="2468") == "throttled"           # a guesser waits, even when right
        async with server.engine.db.connect() as conn:
            stored = (await conn.execute(select(schema.events.c.payload))).scalars().all()
        assert stored and not any("2468" in p for p in stored)       # the PIN is in no event

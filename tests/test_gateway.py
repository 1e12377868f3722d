"""The serial/GPIO gateway over real pseudo-terminals and the hall server's own broker: keypads,
evaluators and LED screens on their byte protocols act on the hall as protocol v1 devices."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import date

import pytest
from gpiozero.pins.mock import MockFactory

from controller.bus.credentials import id_token_key
from controller.bus.idcards import id_token
from devices import serialsim
from devices.codecs import ff68
from devices.gateway import REPEAT_S, Gateway
from devices.gateway_config import parse
from display import led
from tests.bushelp import PASSWORDS, big_hall, hall_server
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


#: The devices the test's gateway attaches: each logs in with its own password.
GATEWAY_DEVICES = {"caller-w01", "eval-w01", "led-w01", "caller-w02", "eval-w02", "led-w02",
                   "kiosk-1", "caller-w03"}


@asynccontextmanager
async def hall_with_gateway(tmp_path):
    config = big_hall(3)
    keypads = serialsim.Ff68Keypads([1, 2])
    screen = serialsim.OnbonScreen(96, 16)
    own_bus = serialsim.YbusDevices([3, 4, 5])
    reader, printer = serialsim.SamReader(), serialsim.EscposPrinter()
    sims = [keypads, screen, own_bus, reader, printer]
    pins = MockFactory()
    async with hall_server(config, tmp_path / "data") as server:
        address = server.bus.link.broker
        gw_config = parse({
            "hall": config.hall.id, "broker": f"mqtt://{address.host}:{address.port}",
            "id_public_key": server.bus.id_public_key,
            "devices": {d: {"password": p} for d, p in PASSWORDS[config.hall.id].items()
                        if d in GATEWAY_DEVICES},
            "bus": [
                {"port": keypads.path, "protocol": "ff68",
                 "devices": [{"id": "caller-w01", "kind": "caller", "addr": 1},
                             {"id": "eval-w01", "kind": "evaluator", "addr": 2}]},
                {"port": screen.path, "protocol": "onbon",
                 "devices": [{"id": "led-w01", "kind": "window_display", "addr": 1}]},
                {"port": own_bus.path, "protocol": "ybus", "baud": 115200,
                 "reply_timeout_ms": 30, "offline_after": 3,
                 "devices": [{"id": "caller-w02", "kind": "caller", "addr": 3},
                             {"id": "eval-w02", "kind": "evaluator", "addr": 4},
                             {"id": "led-w02", "kind": "window_display", "addr": 5,
                              "width": 96, "line_height": 16}]},
            ],
            "gpio": [{"id": "kiosk-1", "kind": "kiosk", "debounce_ms": 50,
                      "buttons": [{"pin": 17, "key": "take", "arg": "A"}]},
                     {"id": "caller-w03", "kind": "caller", "hold_ms": 300,
                      "buttons": [{"pin": 22, "key": "next", "hold": "recall"}]}],
            "reader": [{"port": reader.path, "kiosk": "kiosk-1"}],
            "printer": [{"port": printer.path, "kiosk": "kiosk-1", "width": 384}],
        })
        for sim in sims:
            await sim.start()
        gateway = Gateway(gw_config, pin_factory=pins)
        await gateway.start()
        try:
            for d in gateway.devices.values():
                await asyncio.wait_for(d.link.connected.wait(), 10)
            gateway.sims = {"reader": reader, "printer": printer}
            yield server, gateway, keypads, screen, own_bus, pins
        finally:
            await gateway.stop()
            for sim in sims:
                await sim.stop()
            pins.close()


async def push(pins: MockFactory, pin: int, hold_s: float = 0.1) -> None:
    """A press of a button wired to ground (pull-up): low for ``hold_s``, then high again."""
    pins.pin(pin).drive_low()
    await asyncio.sleep(hold_s)                   # held down: part of the press
    pins.pin(pin).drive_high()
    await asyncio.sleep(0.08)                     # settles past the debounce (50 ms)


async def tickets(server) -> dict:  # noqa: ANN001
    return (await server.engine.settled()).queue.all


async def waiting(server) -> list[str]:  # noqa: ANN001
    return sorted(t.number for t in (await tickets(server)).values() if t.state.value == "waiting")


async def called_at(server, window: str) -> str | None:  # noqa: ANN001
    hall = await server.engine.settled()
    current = hall.desk.windows[window].current
    return hall.queue.all[current].number if current else None


async def calls(server, window: str, number: str) -> bool:  # noqa: ANN001
    return await called_at(server, window) == number


async def issued(server, n: int) -> bool:  # noqa: ANN001
    return len(await tickets(server)) == n


async def take(server, pins: MockFactory, n: int) -> None:  # noqa: ANN001
    before = len(await tickets(server))
    for _ in range(n):
        await push(pins, 17)
    await wait_for(lambda: issued(server, before + n),
                   what=f"{n} kiosk button press(es) to issue {n} ticket(s)")


async def test_a_keypad_press_calls_the_next_ticket_and_the_led_screen_shows_it(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, keypads, screen, _, pins):
        doors: list[tuple[str, str, str]] = []
        server.engine.subscribe(lambda c: doors.extend((e.kind, e.actor, e.origin) for e in c.events))
        await take(server, pins, 2)                               # GPIO kiosk button
        await gateway.devices["caller-w01"].send("key", key="login", staff="101")
        assert await keypads.press(1, 0x0C)                       # next, echoed
        await wait_for(lambda: calls(server, "01", "A001"), what="window 01 to call A001")
        # the events say the keypad did it, and through the gateway
        assert ("called", "device:caller-w01", "gateway") in doors, doors
        await screen.wait_until(lambda: "A001" in screen.text.get(1, ""))
        await keypads.wait_until(lambda: keypads.digits(1) == "001001")   # 1 waiting, A001
        screen.save_png(1, tmp_path / "led.png")
        assert (tmp_path / "led.png").stat().st_size > 0


async def test_a_press_repeated_for_a_lost_echo_calls_once(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, keypads, screen, _, pins):
        await take(server, pins, 3)
        await gateway.devices["caller-w01"].send("key", key="login", staff="101")
        keypads.lose_echoes = 1                   # the keypad hears no echo and presses again
        assert await keypads.press(1, 0x0C)
        assert keypads.sent == 2
        await wait_for(lambda: calls(server, "01", "A001"), what="window 01 to call A001")
        await asyncio.sleep(0.3)                  # negative check: the repeat calls nothing more
        assert await called_at(server, "01") == "A001" and await waiting(server) == ["A002", "A003"]


async def test_line_noise_between_frames_changes_nothing(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, keypads, screen, own_bus, pins):
        await take(server, pins, 2)
        await gateway.devices["caller-w01"].send("key", key="login", staff="101")
        noise = bytes([0x00, 0x68, 0xFF, 0x13, 0x16, 0x55, 0xAA, 0x42]) * 8
        keypads.noise(noise + ff68.Frame(1, 0x01, b"\x0c").encode()[:-2] + b"\x00\x00")
        own_bus.noise(noise)
        bus = gateway.buses[0]
        await wait_for(lambda: bus.bad_frames >= 1, what="the keypad bus to reject the noise")
        await asyncio.sleep(0.3)                  # negative check: the noise calls nothing
        assert await called_at(server, "01") is None and await waiting(server) == ["A001", "A002"]
        assert await keypads.press(1, 0x0C)                        # and the line still works
        await wait_for(lambda: calls(server, "01", "A001"), what="window 01 to call A001")
        assert await waiting(server) == ["A002"]


async def test_own_bus_keypad_calls_once_goes_offline_and_comes_back(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, _, __, own_bus, pins):
        registry = server.bus.registry
        await wait_for(lambda: registry.get("caller-w02") is not None and registry["caller-w02"].online,
                       what="caller-w02 on the own bus to come online")
        await take(server, pins, 2)
        own_bus.press(3, "login", "102")
        own_bus.press(3, "next")
        await wait_for(lambda: calls(server, "02", "A001"), what="window 02 to call A001")
        await own_bus.wait_until(lambda: own_bus.devices[3].shown.startswith("A001"))
        led_w02 = gateway.devices["led-w02"]                      # a panel that takes pixels
        await led_w02.wait_until(lambda: "A001" in (led_w02.shown or {}).get("ticket", ""))
        expected = led.render(led_w02.shown["lines"], 96, 16).tobytes()
        await own_bus.wait_until(lambda: own_bus.image(5) is not None
                                 and own_bus.image(5).tobytes() == expected)
        own_bus.silent.add(3)                                      # unplugged
        await wait_for(lambda: not registry["caller-w02"].online,
                       what="the unplugged caller-w02 to go offline")
        assert registry["eval-w02"].online                         # the rest of the bus is fine
        own_bus.silent.clear()
        await wait_for(lambda: registry["caller-w02"].online,
                       what="caller-w02 to come back online once plugged in")
        assert await waiting(server) == ["A002"]


async def test_evaluator_rates_the_session_it_was_asked_for(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, keypads, _, __, pins):
        await take(server, pins, 1)
        await gateway.devices["caller-w01"].send("key", key="login", staff="101")
        assert await keypads.press(1, 0x0C)
        await wait_for(lambda: calls(server, "01", "A001"), what="window 01 to call A001")
        evaluator = gateway.devices["eval-w01"]
        assert await keypads.rate(2, 1)                            # nothing asked yet: a beep
        await wait_for(lambda: keypads.beeps[2] == 1, what="the idle evaluator (addr 2) to beep")
        await server.bus.link.publish(server.bus.topics.device("caller-w01", "cmd"),
                                      b'{"cmd_id":"c1","op":"beep"}')      # protocol v1 beep
        await wait_for(lambda: keypads.beeps[1] == 1, what="the caller keypad (addr 1) to beep")
        assert await keypads.press(1, 0x0B)                        # the clerk asks for a rating
        await evaluator.wait_until(lambda: (evaluator.shown or {}).get("op") == "prompt")
        await asyncio.sleep(REPEAT_S)              # the same frame sooner would be a resend
        assert await keypads.rate(2, 1)                            # key 1: very satisfied
        await wait_for(lambda: any(r.get("ok") for r in evaluator.replies),
                       what="the rating to be acknowledged")
        assert evaluator.replies[-1]["evaluation"]["level"] == "very_satisfied"


async def test_gpio_buttons_debounce_and_long_press(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, _, __, ___, pins):
        for _ in range(4):                         # contact bounce: edges a millisecond apart
            pins.pin(17).drive_low()
            pins.pin(17).drive_high()
        await push(pins, 17)                       # then it stays down, and is let go
        await wait_for(lambda: issued(server, 1),
                       what="the bouncing button to issue a ticket")
        await asyncio.sleep(0.2)                   # negative check: the bounces issue no more
        assert len(await tickets(server)) == 1, "one press, however much it bounced"
        assert gateway.buttons[0].bounces >= 8
        await take(server, pins, 2)
        # a caller made of one button: a short press calls the next, a long one recalls
        caller = gateway.devices["caller-w03"]
        await caller.send("key", key="login", staff="103")
        await push(pins, 22)
        await wait_for(lambda: calls(server, "03", "A001"),
                       what="a short press of the one-button caller to call A001")
        await push(pins, 22, hold_s=0.5)           # longer than hold_ms: a recall
        await wait_for(lambda: len(caller.replies) >= 2, what="the long press to be answered")
        assert caller.replies[-1]["ok"] and await called_at(server, "03") == "A001"
        hall = await server.engine.settled()
        ticket = hall.queue.all[hall.desk.windows["03"].current]
        assert ticket.recalls == 1 and await waiting(server) == ["A002", "A003"]


async def test_serve_runs_the_gateway_on_its_own_broker(tmp_path):
    """``yimen serve --gateway FILE``: a keypad on a pty acts on the hall; a bus whose port
    cannot be opened leaves its devices offline and the server running."""
    import json
    import signal
    import urllib.request

    from controller.config import load_config
    from tests.helpers import bearer
    from tests.test_kill import start_server, write_config

    keypads = serialsim.Ff68Keypads([1])
    await keypads.start()
    gw = tmp_path / "gateway.toml"
    gw.write_text(f'''hall = "demo"
[[bus]]
port = "{keypads.path}"
protocol = "ff68"
devices = [{{ id = "caller-w01", kind = "caller", addr = 1 }}]
[[bus]]
port = "{tmp_path / 'no-such-port'}"
protocol = "ybus"
devices = [{{ id = "caller-w02", kind = "caller", addr = 1 }}]
''', encoding="utf-8")
    hall_file = write_config(tmp_path)
    proc, url = await start_server(hall_file, tmp_path / "data", "127.0.0.1:0", "--gateway", str(gw))
    try:
        headers = await bearer(load_config(hall_file), tmp_path / "data")

        def devices() -> dict:
            request = urllib.request.Request(url + "/api/devices", headers=headers)
            with urllib.request.urlopen(request, timeout=5) as r:
                return {d["id"]: d for d in json.loads(r.read())["devices"]}

        async def both_listed() -> dict | None:
            seen = await asyncio.to_thread(devices)
            return seen if "caller-w01" in seen and "caller-w02" in seen else None

        seen = await wait_for(both_listed, 10, "the server to list caller-w01 and caller-w02",
                              interval=0.1)
        assert seen["caller-w01"]["online"] and not seen["caller-w02"]["online"]
        assert await keypads.press(1, 0x0C)              # next, but nobody is logged in: beep
        await keypads.wait_until(lambda: keypads.beeps[1] == 1, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        await keypads.stop()


async def test_kiosk_with_id_reader_and_printer(tmp_path):
    """A card on the reader goes with the next ticket (a 60+ card: green channel), its number
    sealed to the hall server, which alone opens it, turns it into a token and stores it
    nowhere; each ticket is printed once; an empty roll stops taking."""
    async with hall_with_gateway(tmp_path) as (server, gateway, _, __, ___, pins):
        reader, printer = gateway.sims["reader"], gateway.sims["printer"]
        kiosk = gateway.devices["kiosk-1"]
        reader.put("王老五", date(1950, 5, 1), "110101195005011234")
        await wait_for(lambda: kiosk.card is not None, what="the kiosk to read the card")
        await take(server, pins, 1)
        [first] = (await tickets(server)).values()
        assert first.priority.value == "green"
        assert first.id_token == id_token(id_token_key(tmp_path / "data"), "110101195005011234")
        await printer.wait_until(lambda: len(printer.images) == 1)
        assert printer.images[0].width == 384 and printer.cuts == 1
        await take(server, pins, 1)                  # the card was used: a plain ticket
        second = [t for t in (await tickets(server)).values() if t.id != first.id][0]
        assert second.priority.value != "green" and second.id_token is None
        await printer.wait_until(lambda: len(printer.images) == 2)
        printer.paper = "out"
        await take(server, pins, 1)                  # printed, and the sensor now says out
        await wait_for(lambda: kiosk.printer.paper == "out", what="the kiosk to see the paper out")
        await push(pins, 17)
        await asyncio.sleep(0.3)                     # negative check: no ticket without paper
        assert len(await tickets(server)) == 3 and len(printer.images) == 3

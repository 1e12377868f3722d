"""The serial/GPIO gateway over real pseudo-terminals and the hall server's own broker: keypads,
evaluators and LED screens on their byte protocols act on the hall as protocol v1 devices."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import date

import pytest
from gpiozero.pins.mock import MockFactory

from devices import serialsim
from devices.codecs import ff68
from devices.gateway import REPEAT_S, Gateway
from devices.gateway_config import parse
from display import led
from tests.bushelp import SECRET, big_hall, hall_server

pytestmark = pytest.mark.slow


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
            "secret": SECRET,
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


async def until(predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    assert predicate()


async def push(pins: MockFactory, pin: int, hold_s: float = 0.1) -> None:
    """A press of a button wired to ground (pull-up): low for ``hold_s``, then high again."""
    pins.pin(pin).drive_low()
    await asyncio.sleep(hold_s)
    pins.pin(pin).drive_high()
    await asyncio.sleep(0.08)                     # settles past the debounce


def waiting(server) -> list[str]:  # noqa: ANN001
    return sorted(t.number for t in server.engine.hall.tickets.values() if t.state.value == "waiting")


def called_at(server, window: str) -> str | None:  # noqa: ANN001
    current = server.engine.hall.windows[window].current
    return server.engine.hall.tickets[current].number if current else None


async def take(server, pins: MockFactory, n: int) -> None:  # noqa: ANN001
    before = len(server.engine.hall.tickets)
    for _ in range(n):
        await push(pins, 17)
    await until(lambda: len(server.engine.hall.tickets) == before + n)


async def test_a_keypad_press_calls_the_next_ticket_and_the_led_screen_shows_it(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, keypads, screen, _, pins):
        await take(server, pins, 2)                               # GPIO kiosk button
        await gateway.devices["caller-w01"].send("key", key="login", staff="101")
        assert await keypads.press(1, 0x0C)                       # next, echoed
        await until(lambda: called_at(server, "01") == "A001")
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
        await until(lambda: called_at(server, "01") == "A001")
        await asyncio.sleep(0.3)
        assert called_at(server, "01") == "A001" and waiting(server) == ["A002", "A003"]


async def test_line_noise_between_frames_changes_nothing(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, keypads, screen, own_bus, pins):
        await take(server, pins, 2)
        await gateway.devices["caller-w01"].send("key", key="login", staff="101")
        noise = bytes([0x00, 0x68, 0xFF, 0x13, 0x16, 0x55, 0xAA, 0x42]) * 8
        keypads.noise(noise + ff68.Frame(1, 0x01, b"\x0c").encode()[:-2] + b"\x00\x00")
        own_bus.noise(noise)
        await asyncio.sleep(0.3)
        assert called_at(server, "01") is None and waiting(server) == ["A001", "A002"]
        bus = gateway.buses[0]
        assert bus.bad_frames >= 1
        assert await keypads.press(1, 0x0C)                        # and the line still works
        await until(lambda: called_at(server, "01") == "A001")
        assert waiting(server) == ["A002"]


async def test_own_bus_keypad_calls_once_goes_offline_and_comes_back(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, _, __, own_bus, pins):
        registry = server.bus.registry
        await until(lambda: registry.get("caller-w02") is not None and registry["caller-w02"].online)
        await take(server, pins, 2)
        own_bus.press(3, "login", "102")
        own_bus.press(3, "next")
        await until(lambda: called_at(server, "02") == "A001")
        await own_bus.wait_until(lambda: own_bus.devices[3].shown.startswith("A001"))
        led_w02 = gateway.devices["led-w02"]                      # a panel that takes pixels
        await led_w02.wait_until(lambda: "A001" in (led_w02.shown or {}).get("ticket", ""))
        expected = led.render(led_w02.shown["lines"], 96, 16).tobytes()
        await own_bus.wait_until(lambda: own_bus.image(5) is not None
                                 and own_bus.image(5).tobytes() == expected)
        own_bus.silent.add(3)                                      # unplugged
        await until(lambda: not registry["caller-w02"].online)
        assert registry["eval-w02"].online                         # the rest of the bus is fine
        own_bus.silent.clear()
        await until(lambda: registry["caller-w02"].online)
        assert waiting(server) == ["A002"]


async def test_evaluator_rates_the_session_it_was_asked_for(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, keypads, _, __, pins):
        await take(server, pins, 1)
        await gateway.devices["caller-w01"].send("key", key="login", staff="101")
        assert await keypads.press(1, 0x0C)
        await until(lambda: called_at(server, "01") == "A001")
        evaluator = gateway.devices["eval-w01"]
        assert await keypads.rate(2, 1)                            # nothing asked yet: a beep
        await until(lambda: keypads.beeps[2] == 1)
        await server.bus.link.publish(server.bus.topics.device("caller-w01", "cmd"),
                                      b'{"cmd_id":"c1","op":"beep"}')      # protocol v1 beep
        await until(lambda: keypads.beeps[1] == 1)
        assert await keypads.press(1, 0x0B)                        # the clerk asks for a rating
        await evaluator.wait_until(lambda: (evaluator.shown or {}).get("op") == "prompt")
        await asyncio.sleep(REPEAT_S)              # the same frame sooner would be a resend
        assert await keypads.rate(2, 1)                            # key 1: very satisfied
        await until(lambda: any(r.get("ok") for r in evaluator.replies))
        assert evaluator.replies[-1]["evaluation"]["level"] == "very_satisfied"


async def test_gpio_buttons_debounce_and_long_press(tmp_path):
    async with hall_with_gateway(tmp_path) as (server, gateway, _, __, ___, pins):
        for _ in range(4):                         # contact bounce: edges a millisecond apart
            pins.pin(17).drive_low()
            pins.pin(17).drive_high()
        await push(pins, 17)                       # then it stays down, and is let go
        await until(lambda: len(server.engine.hall.tickets) == 1)
        await asyncio.sleep(0.2)
        assert len(server.engine.hall.tickets) == 1, "one press, however much it bounced"
        assert gateway.buttons[0].bounces >= 8
        await take(server, pins, 2)
        # a caller made of one button: a short press calls the next, a long one recalls
        caller = gateway.devices["caller-w03"]
        await caller.send("key", key="login", staff="103")
        await push(pins, 22)
        await until(lambda: called_at(server, "03") == "A001")
        await push(pins, 22, hold_s=0.5)
        await until(lambda: len(caller.replies) >= 2)
        assert caller.replies[-1]["ok"] and called_at(server, "03") == "A001"
        ticket = server.engine.hall.tickets[server.engine.hall.windows["03"].current]
        assert ticket.recalls == 1 and waiting(server) == ["A002", "A003"]


async def test_serve_runs_the_gateway_on_its_own_broker(tmp_path):
    """``yimen serve --gateway FILE``: a keypad on a pty acts on the hall; a bus whose port
    cannot be opened leaves its devices offline and the server running."""
    import json
    import signal
    import urllib.request

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
    proc, url = await start_server(write_config(tmp_path), tmp_path / "data", "127.0.0.1:0",
                                   "--gateway", str(gw))
    try:

        def devices() -> dict:
            with urllib.request.urlopen(url + "/api/devices", timeout=5) as r:
                return {d["id"]: d for d in json.loads(r.read())["devices"]}

        for _ in range(100):
            seen = await asyncio.to_thread(devices)
            if "caller-w01" in seen and "caller-w02" in seen:
                break
            await asyncio.sleep(0.1)
        assert seen["caller-w01"]["online"] and not seen["caller-w02"]["online"]
        assert await keypads.press(1, 0x0C)              # next, but nobody is logged in: beep
        await keypads.wait_until(lambda: keypads.beeps[1] == 1, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        await keypads.stop()


async def test_kiosk_with_id_reader_and_printer(tmp_path):
    """A card on the reader goes with the next ticket as a token (a 60+ card: green channel),
    never as the number; each ticket is printed once; an empty roll stops taking."""
    async with hall_with_gateway(tmp_path) as (server, gateway, _, __, ___, pins):
        reader, printer = gateway.sims["reader"], gateway.sims["printer"]
        kiosk = gateway.devices["kiosk-1"]
        reader.put("王老五", date(1950, 5, 1), "110101195005011234")
        await until(lambda: kiosk.card is not None)
        await take(server, pins, 1)
        [first] = server.engine.hall.tickets.values()
        assert first.priority.value == "green"
        assert first.id_token and "110101195005011234" not in first.id_token
        await printer.wait_until(lambda: len(printer.images) == 1)
        assert printer.images[0].width == 384 and printer.cuts == 1
        await take(server, pins, 1)                  # the card was used: a plain ticket
        second = [t for t in server.engine.hall.tickets.values() if t.id != first.id][0]
        assert second.priority.value != "green" and second.id_token is None
        await printer.wait_until(lambda: len(printer.images) == 2)
        printer.paper = "out"
        await take(server, pins, 1)                  # printed, and the sensor now says out
        await until(lambda: kiosk.printer.paper == "out")
        await push(pins, 17)
        await asyncio.sleep(0.3)
        assert len(server.engine.hall.tickets) == 3 and len(printer.images) == 3

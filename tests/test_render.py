"""Golden images: LED panel bitmaps and the printed ticket, compared dot for dot with the PNGs
under docs/images (so a reader can see them). ``YIMEN_UPDATE_GOLDEN=1`` rewrites them."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path

import pytest
from escpos.printer import Serial
from PIL import Image

from devices.printer import TicketPrinter
from devices.serialsim import EscposPrinter, OnbonScreen
from display import led, ticket

GOLDEN = Path(__file__).resolve().parent.parent / "docs" / "images"
TICKET = ticket.TicketContent("一门政务服务中心", "A012", "社保医保", 5, 12,
                              datetime(2026, 11, 22, 9, 30), "http://hall.local/t/8f2c41")


def same_as_golden(image: Image.Image, name: str, tmp_path: Path) -> None:
    path = GOLDEN / name
    if os.environ.get("YIMEN_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        image.convert("1").save(path)
    golden = Image.open(path).convert("1")
    got = image.convert("1")
    if golden.size != got.size or golden.tobytes() != got.tobytes():
        got.save(tmp_path / name)
        pytest.fail(f"{name} differs from docs/images/{name}; this rendering: {tmp_path / name}")


def test_led_16px_panel_two_lines(tmp_path):
    image = led.render(["A012", "请到3号窗口"], 96, 16)
    assert image.size == (96, 32)
    same_as_golden(image, "led-16px.png", tmp_path)


def test_led_32px_panel_one_line(tmp_path):
    image = led.render(["A012 请到3号窗口"], 192, 32)
    same_as_golden(image, "led-32px.png", tmp_path)


def test_led_line_too_long_keeps_its_beginning():
    font = led.pixel_font(16)
    assert led.fit("A012 请到12号窗口办理业务", 64, font) == "A012 请"
    lit = led.render(["A012 请到12号窗口办理业务"], 64, 16)
    assert lit.getbbox() is not None and lit.size == (64, 16)


def test_ticket_80mm(tmp_path):
    image = ticket.render(TICKET)
    assert image.width == ticket.WIDTH_80MM
    same_as_golden(image, "ticket-80mm.png", tmp_path)


def test_ticket_58mm_fits_its_paper(tmp_path):
    image = ticket.render(TICKET, ticket.WIDTH_58MM)
    assert image.width == ticket.WIDTH_58MM
    same_as_golden(image, "ticket-58mm.png", tmp_path)


@pytest.mark.slow                               # a printer on a pseudo-terminal: ~3 s
async def test_printer_on_a_serial_line_prints_the_ticket_once_and_reports_paper():
    sim = EscposPrinter()
    await sim.start()
    port = Serial(devfile=sim.path, baudrate=115200, timeout=1, dsrdtr=False)
    try:
        printer = TicketPrinter(port)
        await asyncio.to_thread(printer.print_ticket, TICKET)
        await sim.wait_until(lambda: sim.cuts == 1)
        assert len(sim.images) == 1
        assert sim.images[0].tobytes() == ticket.render(TICKET).tobytes()
        for paper in ("low", "out", "ok"):
            sim.paper = paper
            assert await asyncio.to_thread(printer.paper) == paper
    finally:
        port.close()
        await sim.stop()


async def test_simulated_led_screen_saves_what_it_shows(tmp_path):
    from devices.codecs import onbon
    from devices.serialport import open_port

    screen = OnbonScreen(96, 16)
    await screen.start()
    _, writer = await open_port(screen.path, 9600)
    try:
        writer.write(onbon.area_text(1, "A012 3号窗口").encode())
        await screen.wait_until(lambda: screen.text.get(1) == "A012 3号窗口")
        screen.save_png(1, tmp_path / "screen.png")
        shown = Image.open(tmp_path / "screen.png").convert("1")
        assert shown.tobytes() == led.render(["A012 3号窗口"], 96, 16).tobytes()
    finally:
        writer.close()
        await screen.stop()

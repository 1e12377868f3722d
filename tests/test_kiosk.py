"""``yimen kiosk``: the kiosk box takes tickets for its page as a protocol v1 kiosk (logging in
with its own password, and no secret of the hall's), prints each once, sends the card on its
reader with the ticket — the number sealed to the hall server's public key, which only that
server opens and turns into a token, and which is stored nowhere — and stops taking when paper
is out. Without the hall server's public key the box says so at start and reads no cards."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from controller.bus.credentials import id_token_key
from controller.bus.idcards import id_token
from controller.config import ConfigError
from devices import serialsim
from kiosk.program import KioskApp, KioskConfig
from tests.bushelp import PASSWORDS, unique
from tests.helpers import demo_config
from tests.test_pages import served
from tests.waiting import wait_for


@asynccontextmanager
async def kiosk_box(tmp_path, clock):  # noqa: ANN001
    config = unique(demo_config())
    reader = serialsim.SamReader()
    await reader.start()
    async with served(config, tmp_path, clock) as (server, server_url):
        broker = server.bus.link.broker
        box = KioskApp(KioskConfig(config.hall.id, "kiosk-1", server_url,
                                   f"mqtt://{broker.host}:{broker.port}",
                                   PASSWORDS[config.hall.id]["kiosk-1"], "127.0.0.1:0",
                                   {"folder": str(tmp_path / "tickets")},
                                   {"port": reader.path}, config.hall.name,
                                   server.bus.id_public_key or ""))
        runner = web.AppRunner(box.app())
        await runner.setup()
        box_site = web.TCPSite(runner, "127.0.0.1", 0)
        await box_site.start()
        url = f"http://127.0.0.1:{box_site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
        await asyncio.wait_for(box.device.link.connected.wait(), 10)
        try:
            async with aiohttp.ClientSession() as http:
                yield server, box, reader, http, url
        finally:
            await runner.cleanup()
            await reader.stop()


async def post(http, url: str, key: str, **body):  # noqa: ANN001, ANN003, ANN201
    async with http.post(url + "/api/tickets", json=body, headers={"Idempotency-Key": key}) as r:
        return r.status, await r.json()


@pytest.mark.slow                               # a hall server with its broker process
async def test_a_ticket_is_printed_once_even_when_the_page_retries(tmp_path, clock):
    async with kiosk_box(tmp_path, clock) as (server, box, _, http, url):
        status, first = await post(http, url, "k1", service="A")
        assert status == 201 and first["ticket"]["number"] == "A001"
        status, again = await post(http, url, "k1", service="A")       # a retry after a drop
        assert again["ticket"]["number"] == "A001"
        assert sorted(p.name for p in (tmp_path / "tickets").iterdir()) == ["0001.bin", "0001.png"]
        assert len((await server.engine.settled()).queue.all) == 1
        async with http.get(url + "/api/kiosk/services") as r:          # passed through
            assert r.status == 200 and (await r.json())["services"][0]["waiting"] == 1
        async with http.get(url + "/") as r:
            assert r.status == 200 and "取号" in await r.text()
        status, refused = await post(http, url, "k2", service="ZZ")
        assert status == 409 and refused["error"]["code"] == "unknown_service"


@pytest.mark.slow
async def test_the_card_on_the_reader_goes_with_the_ticket(tmp_path, clock, caplog):
    caplog.set_level(logging.DEBUG)
    async with kiosk_box(tmp_path, clock) as (server, box, reader, http, url):
        seen: list[bytes] = []                  # every message as the hall server receives it
        heard = server.bus.link.on_message
        assert heard is not None
        server.bus.link.on_message = lambda topic, payload: (seen.append(payload), heard(topic, payload))[1]
        reader.put("王老五", date(1950, 5, 1), "110101195005011234")

        async def card() -> dict | None:
            async with http.get(url + "/api/kiosk/state") as r:
                return (await r.json())["card"]

        read = await wait_for(card, what="the box's page state to show the card on the reader")
        assert read == {"masked_name": "王*五", "green": True}
        status, reply = await post(http, url, "k1", service="A")
        ticket = (await server.engine.settled()).ticket(reply["ticket"]["number"])
        assert ticket.priority.value == "green"
        # the token is the hall server's, made with the key only it has
        assert ticket.id_token == id_token(id_token_key(tmp_path / "data"), "110101195005011234")
        assert "110101195005011234" not in str(reply)
        [take] = [p for p in seen if b'"type":"take"' in p]
        assert b'"id_sealed":"v1.' in take                            # it crossed MQTT sealed
        assert not any(b"11010119500501123" in p for p in seen)       # and never in clear
        status, plain = await post(http, url, "k2", service="A")        # the card was used
        assert (await server.engine.settled()).ticket(plain["ticket"]["number"]).id_token is None
    # the number is stored nowhere (the database, its log, the broker's files) and logged nowhere
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert b"110101195005011234" not in path.read_bytes(), path
    assert "110101195005011234" not in caplog.text


@pytest.mark.slow
async def test_out_of_paper_takes_no_ticket_and_says_so(tmp_path, clock):
    async with kiosk_box(tmp_path, clock) as (server, box, _, http, url):
        printer = box.device.printer._open()                           # the folder printer
        printer.paper = "out"                                           # runs out on this job
        status, _ = await post(http, url, "k1", service="A")
        assert status == 201
        status, refused = await post(http, url, "k2", service="A")
        assert status == 503 and refused["error"]["code"] == "paper_out"
        assert "打印纸已用完" in refused["error"]["message"]
        assert len((await server.engine.settled()).queue.all) == 1
        async with http.get(url + "/api/kiosk/state") as r:
            assert (await r.json())["paper"] == "out"
        registry = server.bus.registry
        await wait_for(lambda: ((registry.get("kiosk-1") and registry["kiosk-1"].state) or {})
                       .get("paper") == "out", what="kiosk-1 to report paper out to the hall server")
        assert registry["kiosk-1"].state == {"paper": "out"}          # reported on its state


def test_the_example_kiosk_file_loads():
    from kiosk.program import load

    config = load(Path(__file__).resolve().parent.parent / "controller" / "halls" / "kiosk-example.toml")
    assert (config.id, config.printer["width"], config.reader["port"]) == ("kiosk-2", 576, "/dev/ttyUSB1")
    assert config.id_public_key.startswith("x25519:")


def test_a_box_without_the_halls_public_key_says_so_and_reads_no_cards(tmp_path, caplog):
    from kiosk.program import load

    example = (Path(__file__).resolve().parent.parent / "controller" / "halls" / "kiosk-example.toml")
    text = example.read_text(encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace("paste-the-hall-servers-id-public-key-here-A", "oops"), encoding="utf-8")
    with pytest.raises(ConfigError, match="id_public_key"):
        load(broken)
    keyless = tmp_path / "keyless.toml"
    keyless.write_text("\n".join(line for line in text.splitlines() if not line.startswith("id_public_key")),
                       encoding="utf-8")
    config = load(keyless)
    assert config.id_public_key == "" and config.reader["port"]
    caplog.set_level(logging.WARNING)
    box = KioskApp(config)
    assert box.reader is None                                          # it reads no cards
    assert "id_public_key" in caplog.text and "不读卡" in caplog.text and "reads no cards" in caplog.text


@pytest.mark.slow
async def test_the_box_page_shows_the_card_and_an_empty_roll(tmp_path, clock):
    from tests.test_pages import CHROMIUM, browser_or_skip

    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    async with kiosk_box(tmp_path, clock) as (server, box, reader, http, url), \
            async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(url + "/")
            reader.put("王老五", date(1950, 5, 1), "110101195005011234")
            await page.locator(".svc[data-service=A]").click()
            await expect(page.locator("#card")).to_have_text("已读取身份证：王*五 · 绿色通道")
            box.device.printer._open().paper = "out"           # this job empties the roll
            await page.locator("#a-plain").click()
            await expect(page.locator("#r-number")).to_have_text("A001")
            assert (await server.engine.settled()).ticket("A001").priority.value == "green"
            await page.locator("#r-done").click()
            await expect(page.locator("#paper")).to_be_visible()
            await page.locator(".svc[data-service=A]").click()
            await page.locator("#a-plain").click()
            await expect(page.locator("#error")).to_contain_text("打印纸已用完")
            assert len((await server.engine.settled()).queue.all) == 1
        finally:
            await browser.close()

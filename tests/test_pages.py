"""The hall's pages in a real headless Chromium (Debian's, driven by Playwright): a citizen
takes a ticket on the kiosk page and follows it on the status page; the clerk's keypad calls
it; the hall screen flashes the call and the status page says which window."""

from __future__ import annotations

import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from tests.bushelp import REQUIRED, devices, hall_server, unique
from tests.helpers import demo_config
from tests.pagehelp import enrol, token_headers

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "images"


def shots(tmp_path: Path) -> Path:
    """Where a page test saves its screenshots: docs/images with YIMEN_UPDATE_SCREENSHOTS=1,
    else the test's own folder (taken and thrown away)."""
    return SHOTS if os.environ.get("YIMEN_UPDATE_SCREENSHOTS") else tmp_path


PORTRAIT, LANDSCAPE = {"width": 1080, "height": 1920}, {"width": 1920, "height": 1080}   # kiosk, hall screen


@asynccontextmanager
async def served(config, tmp_path, clock):  # noqa: ANN001, ANN201
    """The hall server with its HTTP listener on a free port: (server, base URL)."""
    async with hall_server(config, tmp_path / "data", clock) as server:
        site = web.TCPSite(server.runner, "127.0.0.1", 0)
        await site.start()
        yield server, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001


def browser_or_skip() -> None:
    if Path(CHROMIUM).exists():
        try:
            import playwright  # noqa: F401
            return
        except ImportError:
            pass
    if REQUIRED:
        pytest.fail("chromium and playwright are required here (YIMEN_REQUIRE_SERVICES)")
    pytest.skip("chromium or playwright is not installed (scripts/test installs them)")


async def test_kiosk_status_page_and_hall_screen_in_a_browser(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (server, base):
        async with devices(config, server.bus.link.broker, ["caller-w01"]) as dev, \
                async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                kiosk = await (await browser.new_context(viewport=PORTRAIT)).new_page()
                await kiosk.goto(base + await enrol(kiosk.context, base, server, "kiosk-1"))
                service = kiosk.locator(".svc[data-service=A]")
                await expect(service).to_contain_text("综合受理")
                await service.focus()                          # keyboard only
                await kiosk.keyboard.press("Enter")
                await expect(kiosk.locator("#ask")).to_be_visible()
                await kiosk.keyboard.press("Enter")            # 直接取号 has the focus
                await expect(kiosk.locator("#r-number")).to_have_text("A001")
                await expect(kiosk.locator("#r-ahead")).to_contain_text("前面还有 0 人")
                assert await kiosk.locator("#r-qr").evaluate("img => img.complete && img.naturalWidth > 0")

                status = await browser.new_page(viewport={"width": 420, "height": 800})
                hall = await server.engine.settled()
                ticket = hall.ticket("A001")
                await status.goto(f"{base}/t/{ticket.id}")            # the old address: nothing
                await expect(status.locator("#unknown")).to_be_visible()
                await expect(status.locator("#unknown")).to_contain_text("没有这张票")
                await status.goto(base + hall.status_link(ticket)["status_path"])   # the QR's
                await expect(status.locator("#number")).to_have_text("A001")
                await expect(status.locator("#state")).to_have_text("等候中")
                await expect(status.locator("#called")).to_be_hidden()

                screen = await (await browser.new_context(viewport=LANDSCAPE)).new_page()
                await screen.goto(base + await enrol(screen.context, base, server, "hall-screen-1"))
                await expect(screen.locator(".win").first).to_be_visible()

                caller = dev["caller-w01"]
                await caller.press("login", staff="1001")
                await caller.press("next")                     # the clerk's keypad calls it

                await expect(screen.locator("#call-text")).to_have_text("请A001号到1号窗口办理")
                await expect(screen.locator("#call")).to_have_class("panel flash")
                await expect(screen.locator(".win[data-window='1'] .t")).to_have_text("A001")
                await expect(status.locator("#called")).to_contain_text("请到 1号窗口 办理")
                await expect(status.locator("#state")).to_have_text("已叫号")

                if os.environ.get("YIMEN_UPDATE_SCREENSHOTS"):
                    # (the kiosk's and the hall screen's: tests/test_kiosk_layout.py, test_screen_faces.py)
                    await status.screenshot(path=SHOTS / "page-status.png")
            finally:
                await browser.close()


async def test_kiosk_page_recovers_by_itself_after_a_network_drop(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (server, base):
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                context = await browser.new_context()
                kiosk = await context.new_page()
                await kiosk.goto(base + await enrol(context, base, server, "kiosk-1"))
                await expect(kiosk.locator(".svc[data-service=A]")).to_contain_text("等候 0 人")
                await context.set_offline(True)               # the kiosk's network drops
                await kiosk.locator(".svc[data-service=A]").click()
                await kiosk.locator("#a-plain").click()
                await expect(kiosk.locator("#error")).to_contain_text("网络不通", timeout=10000)
                await expect(kiosk.locator("#offline")).to_be_visible(timeout=10000)
                assert len((await server.engine.settled()).queue.all) == 0
                await context.set_offline(False)              # and comes back
                await expect(kiosk.locator("#offline")).to_be_hidden(timeout=10000)
                await kiosk.locator("#a-plain").click()        # the same screen works again
                await expect(kiosk.locator("#r-number")).to_have_text("A001")
                await kiosk.locator("#r-done").click()
                await expect(kiosk.locator(".svc[data-service=A]")).to_contain_text("等候 1 人")
            finally:
                await browser.close()


async def test_status_page_of_an_unknown_ticket_says_there_is_no_such_ticket(tmp_path, clock):
    """A QR code from yesterday or a mistyped link: the page says 没有这张票, not "reconnecting"."""
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (_, base):
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                phone = await browser.new_page(viewport={"width": 390, "height": 844})
                await phone.goto(f"{base}/t/20991231-Z999")
                notice = phone.locator("#unknown")
                await expect(notice).to_be_visible()
                await expect(notice).to_contain_text("没有这张票")
                await expect(notice).to_contain_text("No such ticket")
                await expect(phone.locator("#offline")).to_be_hidden()   # not "reconnecting"
                await expect(phone.locator("#number")).to_be_hidden()
                await expect(phone).to_have_title("没有这张票 · No such ticket")
                await phone.wait_for_timeout(1000)                        # and it stays so
                await expect(phone.locator("#offline")).to_be_hidden()
                shot = shots(tmp_path)
                await phone.screenshot(path=shot / "page-status-unknown.png")
            finally:
                await browser.close()


async def test_pages_and_their_json_without_a_browser(tmp_path, clock):
    """A status page for a ticket that does not exist says so; greyed services say why."""
    import aiohttp

    from tests.helpers import small_config

    config = unique(small_config(hours=["08:30-17:30"]))
    capped = config.services[0].model_copy(update={"daily_cap": 1})
    config = config.model_copy(update={"services": (capped, *config.services[1:])})
    async with served(config, tmp_path, clock) as (server, base):
        async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
            for path in ("/kiosk", "/screen", "/window/1", "/", "/login"):
                async with http.get(base + path) as r:
                    assert r.status == 200 and "<html" in await r.text()
            async with http.get(base + "/api/status/20991231-Z999") as r:
                assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_ticket"
            async with http.post(base + "/api/tickets", json={"service": "A"}) as r:
                assert r.status == 201
            async with http.get(base + "/api/kiosk/services") as r:
                a, b = (await r.json())["services"]
            assert (a["available"], a["reason"]) == (False, "综合今日号已取完")
            assert (b["available"], b["reason"], b["waiting"]) == (True, "", 0)
            clock.advance(hours=12)                           # 21:00: the hall has closed
            async with http.get(base + "/api/kiosk/services") as r:
                services = (await r.json())["services"]
            assert not any(s["available"] for s in services)
            assert all("现在不办理" in s["reason"] for s in services)


def test_bench_screens_measures_a_call_reaching_every_screen():
    from tests.test_cli import yimen

    r = yimen("bench", "screens", "--clients", "5", "--calls", "3", "--interval", "0.01")
    assert r.returncode == 0, r.stderr
    assert "5 hall-screen clients" in r.stdout and "3 calls" in r.stdout
    assert "not received by every client within 10 s: 0" in r.stdout


async def test_the_server_stops_at_once_with_screens_connected(tmp_path, clock):
    """Open hall-screen streams end when the server stops; it does not wait for them."""
    import time

    import aiohttp

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (server, base):
        async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
            async with http.get(base + "/api/stream") as stream:
                assert (await stream.content.readline()).startswith(b"event: board")
                t0 = time.monotonic()
                await server.stop()
                assert time.monotonic() - t0 < 5
                assert await stream.content.read() is not None       # the stream has ended

"""The hall screen (综合屏, 1920×1080 from 5 m) and a window screen (窗口屏) in Chromium: the
hall's own time whatever the screen's clock says, every service's next numbers, the missed
numbers (过号), the notices scrolling, no text under 32 px; a window's clerk and services, a
called ticket told apart from one being served, and a paused window in large type."""

from __future__ import annotations

import aiohttp
import pytest

from tests.bushelp import unique
from tests.helpers import demo_config
from tests.pagehelp import enrol, token_headers
from tests.test_pages import CHROMIUM, LANDSCAPE, browser_or_skip, served, shots

pytestmark = pytest.mark.slow
WINDOW_SCREEN = {"width": 1280, "height": 720}


async def post(http, base: str, path: str, body: dict | None = None) -> None:  # noqa: ANN001
    async with http.post(base + path, json=body or {}) as r:
        assert r.status < 300, await r.text()


async def test_the_hall_screen_and_the_window_screens_show_the_hall(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    folder = shots(tmp_path)
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
                await post(http, base, "/api/config/notices", {
                    "id": "pm", "text": "今天下午四点后不动产登记只收件不出证",
                    "text_en": "Real estate: after 16:00 applications only"})
                for service in "AAAAAB":
                    await post(http, base, "/api/tickets", {"service": service})
                await post(http, base, "/api/windows/1/login", {"staff": "1001"})
                await post(http, base, "/api/windows/1/next")                     # A001
                await post(http, base, "/api/windows/1/no_show")                  # 过号
                await post(http, base, "/api/windows/1/next")                     # A002
                await post(http, base, "/api/windows/1/start")                    # 办理中
                await post(http, base, "/api/windows/4/login", {"staff": "1004"})
                await post(http, base, "/api/windows/4/next")                     # B001, called
                await post(http, base, "/api/windows/2/login", {"staff": "1002"})
                await post(http, base, "/api/windows/2/pause")

            # the screen's own clock is on UTC; the hall is in Asia/Shanghai (09:00 there)
            context = await browser.new_context(viewport=LANDSCAPE, timezone_id="UTC")
            screen = await context.new_page()
            violations: list[str] = []
            screen.on("console", lambda m: violations.append(m.text)
                      if "Content Security Policy" in m.text else None)
            await screen.goto(base + await enrol(context, base, server, "hall-screen-1"))
            await expect(screen.locator("#time")).to_contain_text("09:0")
            await expect(screen.locator("#date")).to_contain_text("11月23日")
            await expect(screen.locator("tr[data-service=A] td.next")).to_have_text("A003A004A005")
            await expect(screen.locator("tr[data-service=B] td.n")).to_have_text("0")
            await expect(screen.locator("#missed")).to_have_text("A001")
            await expect(screen.locator("#notices")).to_contain_text("今天下午四点后不动产登记只收件不出证")
            assert await screen.locator("#notices").evaluate(
                "e => getComputedStyle(e).animationName") == "ticker"          # it scrolls
            await expect(screen.locator(".win[data-window='1']")).to_have_class("win serving")
            await expect(screen.locator(".win[data-window='4']")).to_have_class("win called")
            await expect(screen.locator(".win[data-window='4'] .s")).to_have_text("已叫号")
            await expect(screen.locator(".win[data-window='2'] .s")).to_have_text("暂停服务")
            # from 5 m: no text under 32 px, and the lower quarter is used
            smallest = await screen.evaluate("""() => Math.min(...[...document.querySelectorAll(
                'body *')].filter(e => e.offsetParent !== null && [...e.childNodes].some(
                n => n.nodeType === 3 && n.textContent.trim())).map(e =>
                parseFloat(getComputedStyle(e).fontSize)))""")
            assert smallest >= 32, smallest
            footer = await screen.locator("footer").bounding_box()
            assert footer is not None and footer["y"] <= 1080 * 0.75 + 1
            assert footer["y"] + footer["height"] <= 1080 + 0.5
            for box in ("#missed-box", "#notice-box", "#recent-box"):
                b = await screen.locator(box).bounding_box()
                assert b is not None and b["y"] + b["height"] <= 1080 + 0.5, box
            await screen.screenshot(path=folder / "page-hall-screen.png")

            # a call flashes: black on yellow, nothing grey or yellow left on the yellow
            async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
                await post(http, base, "/api/windows/4/recall")
            await expect(screen.locator("#call")).to_have_class("panel flash")
            await expect(screen.locator(".win[data-window='4']")).to_have_class("win called flash")
            await screen.wait_for_timeout(500)                              # mid-flash
            colours = await screen.evaluate("""() => [...document.querySelectorAll(
                '#call *, .win.flash *')].map(e => getComputedStyle(e).color.match(/\\d+/g).map(Number))""")
            assert colours and all(max(c[:3]) < 60 for c in colours), colours   # near black
            await screen.screenshot(path=tmp_path / "page-hall-screen-flash.png")

            windows = {}
            for device, window in (("led-w01", "1"), ("led-w04", "4"), ("led-w02", "2"), ("led-w03", "3")):
                ctx = await browser.new_context(viewport=WINDOW_SCREEN)
                page = await ctx.new_page()
                assert await enrol(ctx, base, server, device) == f"/window/{window}"
                await page.goto(f"{base}/window/{window}")
                windows[window] = page
            one, four, two, three = windows["1"], windows["4"], windows["2"], windows["3"]
            await expect(one.locator("#name")).to_have_text("1号窗口")
            await expect(one.locator("#ticket")).to_have_text("A002")
            await expect(one.locator("#state")).to_have_text("办理中 · Serving")
            await expect(one.locator("#clerk-name")).to_have_text("王芳")
            await expect(one.locator("#staff")).to_have_text("1001")
            await expect(one.locator("#services")).to_have_text("综合受理")
            await expect(four.locator("#ticket")).to_have_text("B001")
            await expect(four.locator("#state")).to_have_text("请 B001 到 4号窗口 · Called")
            await expect(two.locator("#paused")).to_be_visible()
            await expect(two.locator("#paused")).to_contain_text("暂停服务")
            await expect(two.locator("#ticket")).to_be_hidden()
            paused_px = float((await two.locator("#paused").evaluate(
                "e => getComputedStyle(e).fontSize")).removesuffix("px"))
            assert paused_px >= 120, paused_px                             # large type
            await expect(three.locator("#state")).to_have_text("未开放 · Closed")
            await one.screenshot(path=folder / "page-window.png")
            await four.screenshot(path=tmp_path / "page-window-called.png")
            await two.screenshot(path=tmp_path / "page-window-paused.png")
            assert violations == []
        finally:
            await browser.close()


async def test_an_unattended_screen_chimes_when_started_as_the_readme_says(tmp_path, clock):
    """Started with the README's kiosk-mode flag the hall screen's sound runs with nobody
    touching it; started without, it says the sound is off, and one touch turns it on."""
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        for flags, unattended in ((["--autoplay-policy=no-user-gesture-required"], True), ([], False)):
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *flags])
            try:
                context = await browser.new_context(viewport=LANDSCAPE)
                screen = await context.new_page()
                await screen.goto(base + await enrol(context, base, server, "hall-screen-1"))
                await expect(screen.locator("#time")).not_to_be_empty()
                hint = screen.locator(".sound-off")
                if unattended:
                    assert await screen.evaluate("audio.state") == "running"
                    await expect(hint).to_have_count(0)
                else:
                    await expect(hint).to_contain_text("声音未开启")
                    assert await screen.evaluate("audio.state") == "suspended"
                    await screen.mouse.click(960, 540)
                    await expect(hint).to_have_count(0)
                    assert await screen.evaluate("audio.state") == "running"
            finally:
                await browser.close()

"""The sign-in page (/login) and enrolled pages, in a real headless Chromium under the hall
server's Content-Security-Policy: an administrator signs in on a screen, enrols it as one of
the hall's kiosks or screens and it opens that page and works; a page that is not enrolled
says so full-screen; a wrong password is said in place."""

from __future__ import annotations

import os
import re
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.bushelp import unique
from tests.helpers import demo_config
from tests.pagehelp import ADMIN, PASSWORD, add_person, enrol, token_headers
from tests.test_pages import CHROMIUM, LANDSCAPE, PORTRAIT, browser_or_skip, served, shots

PAGES = Path(__file__).resolve().parent.parent / "display" / "pages"
KIOSK_PAGE = Path(__file__).resolve().parent.parent / "kiosk" / "pages" / "kiosk.html"
PHONE = {"width": 390, "height": 844}


@asynccontextmanager
async def hall_and_browser(tmp_path, clock):  # noqa: ANN001, ANN201
    """(the hall server, its base URL, a headless Chromium)."""
    browser_or_skip()
    from playwright.async_api import async_playwright

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield server, base, browser
        finally:
            await browser.close()


async def open_page(browser, viewport: dict, violations: list[str]):  # noqa: ANN001, ANN201
    """A new context's page that records what the Content-Security-Policy refused."""
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    return context, page


def test_no_page_has_inline_script_or_style():
    """The server's CSP allows script and style files only: nothing inline may be left."""
    for path in [*PAGES.glob("*.html"), KIOSK_PAGE]:
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path            # no onclick="…" either


@pytest.mark.slow                      # a hall server and a browser
async def test_an_unenrolled_kiosk_and_screens_say_so_full_screen(tmp_path, clock):
    async with hall_and_browser(tmp_path, clock) as (server, base, browser):
        violations: list[str] = []
        _, kiosk = await open_page(browser, PORTRAIT, violations)
        await kiosk.goto(f"{base}/kiosk")
        from playwright.async_api import expect

        notice = kiosk.locator("#unenrolled")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("本机尚未登记为取号机")
        await expect(notice).to_contain_text("This screen is not enrolled as a kiosk")
        await expect(notice).to_contain_text("请管理员在本机打开 /login 登记")
        await expect(kiosk.locator(".svc")).to_have_count(0)
        await expect(kiosk.locator("#offline")).to_be_hidden()        # not "reconnecting"
        await kiosk.screenshot(path=shots(tmp_path) / "page-kiosk-unenrolled.png")

        for path, viewport in (("/screen", LANDSCAPE), ("/window/1", LANDSCAPE)):
            _, screen = await open_page(browser, viewport, violations)
            await screen.goto(base + path)
            notice = screen.locator("#unenrolled")
            await expect(notice).to_be_visible()
            await expect(notice).to_contain_text("本屏尚未登记")
            await expect(notice).to_contain_text("This screen is not enrolled")
            await expect(screen.locator("#offline")).to_be_hidden()
            await expect(screen).to_have_title("本屏尚未登记 · Not enrolled")
        await screen.screenshot(path=shots(tmp_path) / "page-window-unenrolled.png")

        await notice.get_by_role("link", name="/login").click()       # the way to enrol it
        await expect(screen).to_have_url(f"{base}/login")
        await expect(screen.locator("#user")).to_be_focused()
        assert violations == []


@pytest.mark.slow
async def test_an_administrator_enrols_a_kiosk_at_login_and_it_takes_tickets(tmp_path, clock):
    from playwright.async_api import expect

    async with hall_and_browser(tmp_path, clock) as (server, base, browser):
        await add_person(server)
        violations: list[str] = []
        context, page = await open_page(browser, PORTRAIT, violations)
        await page.goto(f"{base}/login")
        await expect(page.locator("#hall")).to_have_text(server.engine.config.hall.name)
        await page.locator("#user").fill(ADMIN)
        await page.locator("#password").fill(PASSWORD)
        await page.locator("#password").press("Enter")

        step = page.locator("#enrol")
        await expect(step).to_be_visible()
        await expect(step).to_contain_text("登记本屏")
        await expect(step).to_contain_text("测试管理员")
        go = page.get_by_role("button", name=re.compile("登记"))
        await expect(go).to_be_disabled()                        # nothing is chosen for you
        choices = step.locator("input[name=device]")
        offered = {await c.get_attribute("value") for c in await choices.all()}
        assert offered == {d.id for d in server.engine.config.devices
                           if d.kind in ("kiosk", "hall_display", "window_display", "evaluator")}
        await expect(step.locator(".group h2")).to_have_text(
            ["取号机 · Kiosks", "综合屏 · Hall screens", "窗口屏 · Window screens", "评价器 · Evaluators"])
        await step.locator("label.device", has_text="kiosk-1").click()
        await expect(go).to_have_text("登记为 kiosk-1 · Enrol as kiosk-1")
        await page.screenshot(path=shots(tmp_path) / "page-login-enrol.png")
        await go.click()

        await expect(page).to_have_url(f"{base}/kiosk")
        service = page.locator(".svc[data-service=A]")
        await expect(service).to_contain_text("综合受理")
        session = await (await context.request.get(f"{base}/api/auth/session")).json()
        assert session["principal"]["kind"] == "device" and session["principal"]["name"] == "kiosk-1"

        await service.click()
        await page.locator("#a-plain").click()                    # a POST with the CSRF token
        await expect(page.locator("#r-number")).to_have_text("A001")
        assert (await server.engine.settled()).ticket("A001") is not None
        await expect(page.locator("#r-qr")).to_have_js_property("complete", True)
        await page.screenshot(path=shots(tmp_path) / "page-kiosk-ticket.png")
        await page.locator("#r-done").click()
        await expect(service).to_contain_text("等候 1 人")
        await page.screenshot(path=tmp_path / "page-kiosk.png")
        await page.set_viewport_size(LANDSCAPE)                   # the kiosk turned on its side
        await page.screenshot(path=tmp_path / "page-kiosk-landscape.png")
        assert violations == []

        # The kiosk is disabled in the hall's configuration: its next request is refused and
        # it says it is not enrolled instead of failing.
        async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
            async with http.patch(f"{base}/api/config/devices/kiosk-1", json={"enabled": False}) as r:
                assert r.status == 200, await r.text()
        await service.click()
        await page.locator("#a-plain").click()
        await expect(page.locator("#unenrolled")).to_be_visible()
        await expect(page.locator("#unenrolled")).to_contain_text("本机尚未登记为取号机")
        assert len((await server.engine.settled()).queue.all) == 1


@pytest.mark.slow
async def test_an_administrator_enrols_the_hall_screen_and_it_shows_the_calls(tmp_path, clock):
    from playwright.async_api import expect

    async with hall_and_browser(tmp_path, clock) as (server, base, browser):
        await add_person(server)
        violations: list[str] = []
        _, page = await open_page(browser, LANDSCAPE, violations)
        await page.goto(f"{base}/login")
        await page.locator("#user").fill(ADMIN)
        await page.locator("#password").fill(PASSWORD)
        await page.screenshot(path=shots(tmp_path) / "page-login-landscape.png")
        await page.get_by_role("button", name="登录 · Sign in").click()
        await page.locator("label.device", has_text="hall-screen-1").click()
        await page.get_by_role("button", name="登记为 hall-screen-1 · Enrol as hall-screen-1").click()
        await expect(page).to_have_url(f"{base}/screen")
        await expect(page.locator(".win").first).to_be_visible()
        await page.goto(f"{base}/login")                          # the screen knows what it is
        await expect(page.locator("#enrolled-note")).to_contain_text("本机已登记为 hall-screen-1")
        await expect(page.locator("#user")).to_be_visible()       # an administrator may enrol it anew
        await page.goto(f"{base}/screen")

        async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
            for path, body in (("/api/tickets", {"service": "A"}),
                               ("/api/windows/1/login", {"staff": "1001"}), ("/api/windows/1/next", {})):
                async with http.post(base + path, json=body) as r:
                    assert r.status < 300, await r.text()
        await expect(page.locator("#call-text")).to_have_text("请A001号到1号窗口办理")
        await expect(page.locator(".win[data-window='1'] .t")).to_have_text("A001")
        await expect(page.locator("#unenrolled")).to_be_hidden()
        if os.environ.get("YIMEN_UPDATE_SCREENSHOTS"):
            await page.wait_for_timeout(5500)                     # the flash is over
        await page.screenshot(path=tmp_path / "page-hall-screen.png")

        # a window screen: its own page
        _, window = await open_page(browser, {"width": 1280, "height": 720}, violations)
        assert await enrol(window.context, base, server, "led-w01") == "/window/1"
        await window.goto(f"{base}/window/1")
        await expect(window.locator("#ticket")).to_have_text("A001")
        await expect(window.locator("#name")).to_have_text("1号窗口")
        await window.screenshot(path=tmp_path / "page-window.png")
        assert violations == []


@pytest.mark.slow
async def test_a_wrong_password_is_said_in_place_and_a_burst_is_throttled(tmp_path, clock):
    from playwright.async_api import expect

    async with hall_and_browser(tmp_path, clock) as (server, base, browser):
        await add_person(server)
        violations: list[str] = []
        _, phone = await open_page(browser, PHONE, violations)
        await phone.goto(f"{base}/login")
        await expect(phone.locator("#user")).to_be_focused()
        await phone.screenshot(path=shots(tmp_path) / "page-login.png")
        await phone.get_by_role("button", name="登录 · Sign in").click()          # empty
        await expect(phone.locator("#error")).to_have_text(
            "请输入用户名和密码 · Enter your user name and password")

        await phone.locator("#user").fill(ADMIN)
        await phone.locator("#password").fill("not-the-password")
        await phone.locator("#password").press("Enter")
        error = phone.locator("#error")
        await expect(error).to_have_text("用户名或密码错误 · Wrong user name or password")
        await expect(phone).to_have_url(f"{base}/login")                 # in place
        await expect(phone.locator("#password")).to_have_value("")
        await expect(phone.locator("#password")).to_be_focused()
        await expect(phone.locator("#user")).to_have_value(ADMIN)
        await phone.screenshot(path=shots(tmp_path) / "page-login-wrong.png")

        statuses = []
        for attempt in range(8):                        # a burst of wrong passwords, then the right one
            await expect(phone.locator("#submit")).to_be_enabled(timeout=10000)
            await phone.locator("#password").fill(PASSWORD if attempt == 7 else "still-not-it")
            async with phone.expect_response(f"{base}/api/auth/login") as answer:
                await phone.locator("#password").press("Enter")
            statuses.append((await answer.value).status)
            if statuses[-1] == 401:
                await expect(error).to_have_text("用户名或密码错误 · Wrong user name or password")
        assert statuses[:5] == [401] * 5 and statuses[-1] == 429       # even the right one waits
        await expect(error).to_contain_text(re.compile(r"尝试次数过多，请 \d+ 秒后再试"))
        await expect(error).to_contain_text("Too many attempts")
        await expect(phone.locator("#submit")).to_be_disabled()
        await expect(phone.locator("#enrol")).to_be_hidden()
        await phone.screenshot(path=tmp_path / "page-login-throttled.png")
        assert violations == []


@pytest.mark.slow
async def test_a_person_who_is_not_an_administrator_sees_who_they_are_and_signs_out(tmp_path, clock):
    from playwright.async_api import expect

    async with hall_and_browser(tmp_path, clock) as (server, base, browser):
        await add_person(server, "li.clerk", ("clerk",), PASSWORD, "李四")
        violations: list[str] = []
        context, phone = await open_page(browser, PHONE, violations)
        await phone.goto(f"{base}/login")
        await phone.locator("#user").fill("li.clerk")
        await phone.locator("#password").fill(PASSWORD)
        await phone.locator("#password").press("Enter")
        me = phone.locator("#me")
        await expect(me).to_be_visible()
        await expect(me).to_contain_text("李四（li.clerk）")
        await expect(me).to_contain_text("窗口 clerk")
        await expect(me).to_contain_text("只有管理员可以登记本屏")
        await phone.screenshot(path=tmp_path / "page-login-me.png")
        await expect(phone.locator("#enrol")).to_be_hidden()
        await expect(phone.get_by_role("button", name="软呼叫器 · Soft caller")).to_be_visible()  # a clerk
        await phone.reload()                                      # still signed in
        await expect(me).to_be_visible()
        await phone.get_by_role("button", name="退出 · Sign out").click()
        await expect(phone.locator("#sign-in")).to_be_visible()
        assert (await context.request.get(f"{base}/api/auth/session")).status == 401
        assert violations == []

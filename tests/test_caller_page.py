"""The clerk's soft caller (/caller): its reads (``GET /api/windows``, ``/api/windows/{window}``
and the window's push stream) kept to the clerk's own windows; in a real headless Chromium a
clerk signs in, logs in at window 1, calls and finishes a ticket by mouse and keyboard and is
refused another clerk's window; and beside the window's hardware keypad (a simulated caller on
the hall's own Mosquitto) pressing ``next`` at the same time, no ticket is called twice and the
page ends up showing what the server says."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from controller.web.access import ACCOUNTS
from devices.simulators import Refusal
from tests.bushelp import devices, unique
from tests.helpers import demo_config
from tests.pagehelp import PASSWORD, token_headers
from tests.test_pages import CHROMIUM, browser_or_skip, served, shots
from tests.test_security_web import add_user, origin, server, sign_in  # noqa: F401 - the fixture

PC, FULL_HD = {"width": 1366, "height": 768}, {"width": 1920, "height": 1080}
CLERK = "wangfang"


async def test_a_clerk_reads_only_their_own_windows(server, tmp_path):  # noqa: F811
    await add_user(tmp_path, CLERK, "clerk", staff="1001")
    await add_user(tmp_path, "viewer1", "viewer")
    csrf = await sign_in(server, CLERK)
    h = {**origin(server), "X-CSRF-Token": csrf}
    mine = await (await server.get("/api/windows")).json()
    assert mine["staff"] == "1001" and mine["name"] == "王芳"
    assert [(w["window"], w["role"]) for w in mine["windows"]] == [("1", "A"), ("2", "B"), ("3", "B"),
                                                                   ("12", "B")]
    r = await server.get("/api/windows/1")
    assert r.status == 200, await r.text()
    view = (await r.json())["window"]
    assert view["state"] == "closed" and view["current"] is None and view["held"] == []
    assert [line["service"] for line in view["lines"]] == ["A"]

    elsewhere = await server.get("/api/windows/5")
    assert elsewhere.status == 403
    assert (await elsewhere.json())["error"]["message"] == "您不能操作 5 号窗口"
    assert (await server.get("/api/windows/5/stream")).status == 403
    assert (await server.get("/api/windows/99")).status == 404

    assert (await server.post("/api/windows/1/login", json={"staff": "1001"}, headers=h)).status == 200
    view = (await (await server.get("/api/windows/1")).json())["window"]
    assert view["state"] == "idle" and view["clerk"] == "1001" and view["clerk_name"] == "王芳"

    async with server.get("/api/windows/1/stream") as stream:          # the window's pushes
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert (await stream.content.readline()).startswith(b"event: board")

    server.session.cookie_jar.clear()
    await sign_in(server, "viewer1")                                    # reads the hall, works no window
    assert (await server.get("/api/windows")).status == 403
    assert (await server.get("/api/windows/1")).status == 403


async def _clerk(srv, name: str = CLERK, staff: str = "1001", display: str = "王芳") -> None:
    await srv.runner.app[ACCOUNTS].add_user(name, ["clerk"], PASSWORD, display, staff=staff)


async def _take(base: str, headers: dict[str, str], count: int, service: str = "A") -> None:
    async with aiohttp.ClientSession(headers=headers) as http:
        for _ in range(count):
            async with http.post(f"{base}/api/tickets", json={"service": service}) as r:
                assert r.status == 201, await r.text()


async def _signed_in_page(browser, base: str, viewport: dict, violations: list[str],  # noqa: ANN001, ANN202
                          path: str = "/caller"):
    from playwright.async_api import expect

    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    await page.goto(base + path)
    await expect(page.locator("#user")).to_be_visible()                # not signed in: the form
    await page.locator("#user").fill(CLERK)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#password").press("Enter")
    await expect(page.locator("#caller-view")).to_be_visible()
    return page


@pytest.mark.slow
async def test_a_clerk_calls_and_finishes_from_the_soft_caller(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (srv, base), async_playwright() as p:
        await _clerk(srv)
        desk = await token_headers(srv, "supervisor")
        await _take(base, desk, 6)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            violations: list[str] = []
            page = await _signed_in_page(browser, base, PC, violations)
            await expect(page.locator("#window")).to_have_value("1")
            await expect(page.locator("#state")).to_have_text("未登录 · Logged out")
            await expect(page.locator(".line[data-service=A] .count")).to_have_text("等候 6 人")
            await expect(page.locator("[data-op=next]")).to_be_disabled()

            await page.get_by_role("button", name="登录窗口 · Log in").click()
            await expect(page.locator("#clerk")).to_contain_text("王芳（工号 1001）已登录")
            await page.locator("[data-op=next]").click()
            await expect(page.locator("#ticket")).to_have_text("A001")
            await expect(page.locator("#ticket-state")).to_have_text("已呼叫 · Called")
            await expect(page.locator(".line[data-service=A] .chips")).to_have_text("A002A003A004A005A006")
            await page.locator("[data-op=start]").click()
            await expect(page.locator("#ticket-state")).to_have_text("办理中 · Serving")
            await page.locator("[data-op=done]").click()
            await expect(page.locator("#ticket")).to_have_text("—")
            assert (await srv.engine.settled()).ticket("A001").state.value == "done"

            # keyboard: Space calls the next, H holds it, the held one is called back by click
            await page.keyboard.press("Space")
            await expect(page.locator("#ticket")).to_have_text("A002")
            await page.keyboard.press("h")
            await expect(page.locator("#held .call-back")).to_have_text(["回呼 A002"])
            await page.keyboard.press("F1")
            await expect(page.locator("#ticket")).to_have_text("A003")
            await page.keyboard.press("r")                             # recall
            await expect(page.locator("#ticket-service")).to_contain_text("已重呼 1 次")
            for shot, size in (("page-caller-1920.png", FULL_HD), ("page-caller.png", PC)):
                await page.set_viewport_size(size)
                await page.screenshot(path=shots(tmp_path) / shot)
            await page.locator("#held .call-back").click()
            await expect(page.locator("#ticket")).to_have_text("A002")
            await expect(page.locator("#held")).to_have_text("无 · none")
            await page.keyboard.press("d")
            await expect(page.locator("#ticket")).to_have_text("—")
            await page.keyboard.press("p")                             # pause
            await expect(page.locator("#state")).to_have_text("暂停 · Paused")
            await page.locator("[data-op=resume]").click()
            await expect(page.locator("#state")).to_have_text("空闲 · Idle")
            await page.keyboard.press("Space")                         # A004, handed on to window 2
            await expect(page.locator("#ticket")).to_have_text("A004")
            await page.locator("#to").select_option("w:2")
            await page.get_by_role("button", name="转办 · Transfer").click()
            await expect(page.locator("#ticket")).to_have_text("—")
            assert (await srv.engine.settled()).ticket("A004").target_window == "2"

            # a refusal in place, in Chinese: recall with no ticket at the window
            await page.locator("#number").fill("A999")
            await page.locator("#number").press("Enter")
            await expect(page.locator("#error")).to_contain_text("今天没有A999号")
            await page.get_by_role("button", name="退出窗口 · Log out").click()
            await expect(page.locator("#state")).to_have_text("未登录 · Logged out")

            # another clerk's window: refused, and said so in place
            await page.goto(f"{base}/caller?window=5")
            await expect(page.locator("#error")).to_contain_text("您不能操作 5 号窗口")
            await expect(page.locator("[data-op=next]")).to_be_disabled()
            assert violations == []
        finally:
            await browser.close()



@pytest.mark.slow
async def test_the_soft_caller_and_the_keypad_never_call_a_ticket_twice(tmp_path, clock):
    """The page's clerk (through its API with the page's session) and the window's keypad
    press ``next`` at window 1 twenty times each, interleaved: every call is of another ticket,
    and the open page ends up showing the server's truth, the keypad's last call."""
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (srv, base), \
            devices(config, srv.bus.link.broker, ["caller-w01"]) as dev, async_playwright() as p:
        await _clerk(srv)
        await _take(base, await token_headers(srv, "supervisor"), 45)
        keypad = dev["caller-w01"]
        await keypad.press("login", staff="1001")
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            violations: list[str] = []
            page = await _signed_in_page(browser, base, PC, violations)
            await expect(page.locator("#clerk")).to_contain_text("王芳（工号 1001）已登录")  # by the keypad

            async def from_page() -> list[str]:      # the page's own session: its cookie and CSRF
                called = []
                for _ in range(20):
                    reply = await page.evaluate("""async () => {
                        const r = await post("/api/windows/1/next");
                        return r.data; }""")
                    assert reply["ok"], reply
                    called.append(reply["ticket"]["number"])
                    await asyncio.sleep(0)
                return called

            async def from_keypad() -> list[str]:
                called = []
                for _ in range(20):
                    try:
                        reply = await keypad.press("next")
                    except Refusal as exc:              # nothing refused is expected here
                        raise AssertionError(exc) from None
                    called.append(reply["result"]["ticket"]["number"])
                return called

            mine, theirs = await asyncio.gather(from_page(), from_keypad())
            calls = mine + theirs
            assert len(calls) == 40 and len(set(calls)) == 40, calls
            assert max(mine) > min(theirs) and max(theirs) > min(mine), calls     # interleaved

            last = (await srv.engine.settled()).window_view("1")["ticket"]
            await keypad.press("next")                    # the keypad has the last word
            now = (await srv.engine.settled()).window_view("1")["ticket"]
            assert now not in calls and now != last
            await expect(page.locator("#ticket")).to_have_text(now)
            await expect(page.locator("#ticket-state")).to_have_text("已呼叫 · Called")
            waiting = (await srv.engine.settled()).waiting("A")
            await expect(page.locator(".line[data-service=A] .count")).to_have_text(f"等候 {waiting} 人")
            hall = await srv.engine.settled()
            events = [t.number for t in hall.queue.all.values() if t.first_called_at is not None]
            assert len(events) == 41
            assert violations == []
        finally:
            await browser.close()

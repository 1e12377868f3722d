"""The hall's public and clerks' pages pass axe-core's WCAG 2 A and AA rules with no serious or
critical violation (nor any such finding axe-core leaves to review, colour contrast it cannot
measure aside), each opened in a real headless Chromium in its real states and at the size it
is used at: the kiosk (not enrolled, its services in both text sizes, the take dialog, offline,
the ticket it gave, a kiosk box out of paper), the status page of that ticket (waiting, called,
reconnecting) and of none, the sign-in page (its form, a wrong password, the enrolment step, a
clerk signed in), the soft caller (its sign-in form, a clerk logged in at a window with a ticket
called and one held, a refusal, another clerk's window, reconnecting) and the hall and window
screens (enrolled and showing a call, paused, not enrolled, reconnecting). The admin pages are
checked with them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.axe import BLOCKING, violations
from tests.bushelp import unique
from tests.helpers import demo_config
from tests.pagehelp import ADMIN, PASSWORD, add_person, enrol, token_headers
from tests.test_caller_page import CLERK, PC, _clerk, _signed_in_page, _take
from tests.test_pages import CHROMIUM, LANDSCAPE, PORTRAIT, browser_or_skip, served

pytestmark = pytest.mark.slow
PHONE, WINDOW_SCREEN = {"width": 390, "height": 844}, {"width": 1280, "height": 720}
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")                  # as tests/axe.py runs it


class Findings:
    """axe-core's serious and critical violations, by the page and state they were found in,
    asserted together at the end so that one run lists them all."""

    def __init__(self) -> None:
        self.found: dict[str, list[dict[str, Any]]] = {}

    async def check(self, page: Any, state: str) -> None:
        await settle(page)
        found = await violations(page) + await unsure(page)
        if found:
            self.found[state] = found

    def assert_none(self) -> None:
        assert not self.found, "axe-core found:\n" + "\n".join(
            f"  {state}: {v['impact']} {v['rule']}: {v['help']} at {v['nodes']}"
            for state, found in self.found.items() for v in found)


async def unsure(page: Any) -> list[dict[str, Any]]:
    """What axe-core leaves for a person to review ("incomplete") that would be serious or
    critical, but for colour contrast it cannot measure (text over a moving or overlapping
    element): an aria-label on an element without a role, say, which no screen reader reads."""
    result = await page.evaluate(f"axe.run(document, {{runOnly: {{type: 'tag', values: {list(TAGS)}}}}})")
    return [{"rule": v["id"], "impact": v["impact"], "help": v["help"] + " (to review)",
             "nodes": [n["target"] for n in v["nodes"][:5]]}
            for v in result["incomplete"] if v["impact"] in BLOCKING and v["id"] != "color-contrast"]


async def settle(page: Any) -> None:
    """Finish the page's running transitions and its call flash (a few seconds of black on
    yellow), so that colours are read as they stay; endless ones (the notices' ticker) go on."""
    await page.evaluate("""() => document.getAnimations().filter(a =>
        a.effect && a.effect.getComputedTiming().iterations !== Infinity).forEach(a => a.finish())""")


async def post(http: aiohttp.ClientSession, base: str, path: str, body: dict | None = None) -> None:
    async with http.post(base + path, json=body or {}) as r:
        assert r.status < 300, await r.text()


async def test_the_kiosk_and_the_status_page_of_its_ticket(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    findings = Findings()
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            unenrolled = await browser.new_page(viewport=PORTRAIT)
            await unenrolled.goto(f"{base}/kiosk")
            await expect(unenrolled.locator("#unenrolled")).to_be_visible()
            await findings.check(unenrolled, "kiosk: not enrolled")

            context = await browser.new_context(viewport=PORTRAIT)
            kiosk = await context.new_page()
            await kiosk.goto(base + await enrol(context, base, server, "kiosk-1"))
            service = kiosk.locator(".svc[data-service=A]")
            await expect(service).to_contain_text("综合受理")
            await findings.check(kiosk, "kiosk: services")
            await kiosk.locator("#large").click()                       # 大字 A+
            await expect(kiosk.locator("#large")).to_have_attribute("aria-pressed", "true")
            await findings.check(kiosk, "kiosk: services in large text")
            await kiosk.locator("#large").click()
            await service.click()
            await expect(kiosk.locator("#ask")).to_be_visible()
            await findings.check(kiosk, "kiosk: take a ticket")
            await kiosk.locator("#a-book").click()                       # 预约取号: its code
            await expect(kiosk.locator("#a-code")).to_be_focused()
            await findings.check(kiosk, "kiosk: an appointment's code")
            await context.set_offline(True)                              # the network drops
            await kiosk.locator("#a-plain").click()
            await expect(kiosk.locator("#error")).to_contain_text("网络不通", timeout=10000)
            await expect(kiosk.locator("#offline")).to_be_visible()
            await findings.check(kiosk, "kiosk: offline")
            await context.set_offline(False)
            await expect(kiosk.locator("#offline")).to_be_hidden(timeout=10000)
            await kiosk.locator("#a-plain").click()
            await expect(kiosk.locator("#r-number")).to_have_text("A001")
            await expect(kiosk.locator("#r-qr")).to_have_js_property("complete", True)
            await findings.check(kiosk, "kiosk: the ticket taken")

            box = await context.new_page()                  # as on a kiosk box: its printer and reader
            await box.route("**/api/kiosk/state", lambda route: route.fulfill(json={
                "paper": "out", "card": {"masked_name": "张*", "green": True}}))
            await box.goto(f"{base}/kiosk")
            await expect(box.locator("#paper")).to_be_visible()
            await box.locator(".svc[data-service=A]").click()
            await expect(box.locator("#card")).to_contain_text("已读取身份证：张*")
            await findings.check(box, "kiosk: out of paper, an ID card read")

            hall = await server.engine.settled()
            phone = await browser.new_page(viewport=PHONE)
            await phone.goto(base + hall.status_link(hall.ticket("A001"))["status_path"])
            await expect(phone.locator("#state")).to_have_text("等候中")
            await findings.check(phone, "status: waiting")
            async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
                await post(http, base, "/api/windows/1/login", {"staff": "1001"})
                await post(http, base, "/api/windows/1/next")
            await expect(phone.locator("#called")).to_contain_text("请到 1号窗口 办理")
            await findings.check(phone, "status: called")
            unknown = await browser.new_page(viewport=PHONE)
            await unknown.goto(f"{base}/t/20991231-Z999")
            await expect(unknown.locator("#unknown")).to_be_visible()
            await findings.check(unknown, "status: no such ticket")
            await server.stop()                        # the hall server is gone: reconnecting
            await expect(phone.locator("#offline")).to_be_visible(timeout=10000)
            await findings.check(phone, "status: offline")
        finally:
            await browser.close()
    findings.assert_none()


async def test_the_sign_in_page(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    findings = Findings()
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        await add_person(server)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            phone = await browser.new_page(viewport=PHONE)
            await phone.goto(f"{base}/login")
            await expect(phone.locator("#user")).to_be_focused()
            await findings.check(phone, "login: the form on a phone")
            await phone.locator("#user").fill(ADMIN)
            await phone.locator("#password").fill("not-the-password")
            await phone.locator("#password").press("Enter")
            await expect(phone.locator("#error")).to_contain_text("用户名或密码错误")
            await findings.check(phone, "login: a wrong password")

            screen = await browser.new_page(viewport=PORTRAIT)            # a kiosk to be enrolled
            await screen.goto(f"{base}/login")
            await findings.check(screen, "login: the form on a kiosk")
            await screen.locator("#user").fill(ADMIN)
            await screen.locator("#password").fill(PASSWORD)
            await screen.locator("#password").press("Enter")
            await expect(screen.locator("#enrol")).to_be_visible()
            await findings.check(screen, "login: the enrolment step")
            await screen.locator("label.device", has_text="kiosk-1").click()
            await expect(screen.locator("#enrol-go")).to_be_enabled()
            await findings.check(screen, "login: a device chosen")

            await _clerk(server)
            clerk = await browser.new_page(viewport=PHONE)
            await clerk.goto(f"{base}/login")
            await clerk.locator("#user").fill(CLERK)
            await clerk.locator("#password").fill(PASSWORD)
            await clerk.locator("#password").press("Enter")
            await expect(clerk.locator("#me")).to_be_visible()
            await findings.check(clerk, "login: a clerk signed in")
        finally:
            await browser.close()
    findings.assert_none()


async def test_the_soft_caller(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    findings = Findings()
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        await _clerk(server)
        await _take(base, await token_headers(server, "supervisor"), 6)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            form = await browser.new_page(viewport=PC)
            await form.goto(f"{base}/caller")
            await expect(form.locator("#user")).to_be_visible()
            await findings.check(form, "caller: the sign-in form")

            page = await _signed_in_page(browser, base, PC, [])
            await expect(page.locator("#state")).to_have_text("未登录 · Logged out")
            await findings.check(page, "caller: logged out of the window")
            await page.get_by_role("button", name="登录窗口 · Log in").click()
            await expect(page.locator("#clerk")).to_contain_text("王芳（工号 1001）已登录")
            await page.locator("[data-op=next]").click()
            await page.locator("[data-op=hold]").click()
            await expect(page.locator("#held .call-back")).to_have_text(["回呼 A001"])
            await page.locator("[data-op=next]").click()
            await expect(page.locator("#ticket")).to_have_text("A002")
            await expect(page.locator("#ticket-state")).to_have_text("已呼叫 · Called")
            await findings.check(page, "caller: a ticket called, one held")
            await page.locator("[data-op=start]").click()
            await expect(page.locator("#ticket-state")).to_have_text("办理中 · Serving")
            await findings.check(page, "caller: serving")
            await page.locator("#number").fill("A999")
            await page.locator("#number").press("Enter")
            await expect(page.locator("#error")).to_contain_text("今天没有A999号")
            await findings.check(page, "caller: a refusal")

            other = await page.context.new_page()
            await other.goto(f"{base}/caller?window=5")                  # another clerk's window
            await expect(other.locator("#error")).to_contain_text("您不能操作 5 号窗口")
            await findings.check(other, "caller: another clerk's window")
            await server.stop()                        # the hall server is gone: reconnecting
            await expect(page.locator("#offline")).to_be_visible(timeout=10000)
            await findings.check(page, "caller: offline")
        finally:
            await browser.close()
    findings.assert_none()


async def test_the_hall_and_window_screens_showing_a_call(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    findings = Findings()
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
                await post(http, base, "/api/config/notices", {
                    "id": "pm", "text": "今天下午四点后不动产登记只收件不出证",
                    "text_en": "Real estate: after 16:00 applications only"})
                for service in "AAAB":
                    await post(http, base, "/api/tickets", {"service": service})
                await post(http, base, "/api/windows/1/login", {"staff": "1001"})
                await post(http, base, "/api/windows/1/next")                     # A001
                await post(http, base, "/api/windows/1/no_show")                  # 过号
                await post(http, base, "/api/windows/2/login", {"staff": "1002"})
                await post(http, base, "/api/windows/2/pause")

                context = await browser.new_context(viewport=LANDSCAPE)
                screen = await context.new_page()
                await screen.goto(base + await enrol(context, base, server, "hall-screen-1"))
                await expect(screen.locator("#missed")).to_have_text("A001")
                windows = {}
                for device, window in (("led-w01", "1"), ("led-w02", "2")):
                    ctx = await browser.new_context(viewport=WINDOW_SCREEN)
                    windows[window] = await ctx.new_page()
                    assert await enrol(ctx, base, server, device) == f"/window/{window}"
                    await windows[window].goto(f"{base}/window/{window}")
                await expect(windows["2"].locator("#paused")).to_be_visible()

                await post(http, base, "/api/windows/1/next")                     # A002 called
                await expect(screen.locator("#call-text")).to_have_text("请A002号到1号窗口办理")
                await expect(screen.locator("#call")).to_have_class("panel flash")
                await findings.check(screen, "hall screen: a call")
                one = windows["1"]
                await expect(one.locator("#ticket")).to_have_text("A002")
                await findings.check(one, "window screen: a call")
                await findings.check(windows["2"], "window screen: paused")
                await post(http, base, "/api/windows/1/start")
                await expect(one.locator("#state")).to_have_text("办理中 · Serving")
                await expect(screen.locator(".win[data-window='1'] .s")).to_have_text("办理中")
                await findings.check(one, "window screen: serving")
                await findings.check(screen, "hall screen: serving")

            for path in ("/screen", "/window/1"):
                unenrolled = await browser.new_page(viewport=LANDSCAPE)
                await unenrolled.goto(base + path)
                await expect(unenrolled.locator("#unenrolled")).to_be_visible()
                await findings.check(unenrolled, f"{path}: not enrolled")
            await server.stop()                        # the hall server is gone: reconnecting
            for name, page in (("hall screen", screen), ("window screen", one)):
                await expect(page.locator("#offline")).to_be_visible(timeout=10000)
                await findings.check(page, f"{name}: offline")
        finally:
            await browser.close()
    findings.assert_none()

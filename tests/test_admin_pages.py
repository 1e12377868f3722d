"""The administrator's application (/admin) in a real headless Chromium, task by task as an
administrator does them: sign in; add a service (a wrong field first, its error in place) and
see it on an open kiosk page without reloading; rebind a keypad and call from it; disable it
and see it cut off; add a holiday; reset a device's password and read its provisioning sheet;
enrol the screen in front of you; add a person and a token; filter the audit log; the
dashboard follows the hall live and warns of a long wait; a viewer is told 没有权限 on a page
beyond their roles. axe-core finds no serious or critical problem on any admin page."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from controller.web.access import ACCOUNTS
from tests.axe import assert_accessible
from tests.bushelp import devices, unique
from tests.helpers import demo_config
from tests.pagehelp import ADMIN, PASSWORD, add_person, enrol, token_headers
from tests.test_pages import CHROMIUM, browser_or_skip, served, shots

pytestmark = pytest.mark.slow
DESK = {"width": 1366, "height": 768}          # the administrator's desk screen
WIDE = {"width": 1920, "height": 1080}



async def _take(base: str, headers: dict[str, str], count: int, service: str = "A") -> list[str]:
    numbers = []
    async with aiohttp.ClientSession(headers=headers) as http:
        for _ in range(count):
            async with http.post(f"{base}/api/tickets", json={"service": service}) as r:
                assert r.status == 201, await r.text()
                numbers.append((await r.json())["ticket"]["number"])
    return numbers


@asynccontextmanager
async def _admin_hall(tmp_path: Path, clock: Any):  # noqa: ANN202
    """The demo hall served (under an id of its own), its administrator, and a Chromium."""
    from playwright.async_api import async_playwright

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (srv, base), async_playwright() as p:
        await add_person(srv)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield config, srv, base, browser
        finally:
            await browser.close()


async def _signed_in(browser, base: str, name: str = ADMIN, path: str = "/admin",  # noqa: ANN001, ANN202
                     viewport: dict | None = None, violations: list[str] | None = None):
    """A new browser signed in as ``name`` through ``/login?next=…``, on ``path``."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport=viewport or DESK)
    page = await context.new_page()
    if violations is not None:
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: violations.append(str(e)))
    await page.goto(base + path)
    await expect(page).to_have_url(f"{base}/login?next={path}")      # not signed in: sent to sign in
    await page.locator("#user").fill(name)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#password").press("Enter")
    await expect(page).to_have_url(base + path)
    return page


async def test_an_administrator_configures_the_hall_from_the_browser(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (srv, base), \
            devices(config, srv.bus.link.broker, ["caller-w01"]) as dev, async_playwright() as p:
        await add_person(srv)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        folder = shots(tmp_path)
        try:
            kiosk_context = await browser.new_context(viewport={"width": 1080, "height": 1920})
            kiosk = await kiosk_context.new_page()
            await kiosk.goto(base + await enrol(kiosk_context, base, srv, "kiosk-1"))
            await expect(kiosk.locator("body")).to_contain_text("税务")

            violations: list[str] = []
            page = await _signed_in(browser, base, path="/admin/config/services", violations=violations)
            await expect(page.locator("h1")).to_have_text("业务")
            await assert_accessible(page)

            # a wrong field: the API's own check, in Chinese, beside the field; nothing added
            new = page.locator("section.new form")
            await new.locator("[name=code]").fill("Z")
            await new.locator("[name=daily_cap]").fill("-5")
            await new.get_by_role("button", name="新增").click()
            await expect(new.locator("[data-error-for=name]")).to_have_text("不能为空")
            await expect(new.locator("[data-error-for=daily_cap]")).to_have_text("应不小于 0")
            assert "Z" not in (await srv.engine.settled()).services
            await new.locator("[name=name]").fill("出入境")
            await new.locator("[name=daily_cap]").fill("80")
            await new.locator("[name=category]").fill("公安")
            await new.get_by_role("button", name="新增").click()
            await expect(page.locator("#toast")).to_have_text("已保存")
            await expect(page.locator("#item-Z summary")).to_contain_text("出入境")
            assert (await srv.engine.settled()).services["Z"].daily_cap == 80
            await expect(kiosk.locator("body")).to_contain_text("出入境")     # no reload there
            await expect(page.locator(".changes")).to_contain_text("user:admin 新增 Z")
            await page.screenshot(path=folder / "page-admin-services.png", full_page=False)

            # rebind the keypad of window 1 to window 3, and call from it there
            await page.goto(base + "/admin/config/devices")
            await assert_accessible(page)
            row = page.locator("#item-caller-w01")
            await row.locator("summary").click()
            await row.locator("select[name=window]").select_option("3")
            await row.get_by_role("button", name="保存修改").click()
            await expect(page.locator("#toast")).to_have_text("已保存")
            await expect(page.locator("#item-caller-w01 summary")).to_contain_text("3号窗口")
            ticket = (await _take(base, await token_headers(srv, "supervisor"), 1))[0]
            keypad = dev["caller-w01"]
            await keypad.press("login", staff="1001")      # 王芳: window 3 is one of her B windows
            called = await keypad.press("next")
            assert called["result"]["ticket"]["number"] == ticket
            assert (await srv.engine.settled()).window_view("3")["ticket"] == ticket

            # disable it: cut off from the broker at once, and listed as disabled
            row = page.locator("#item-caller-w01")
            await row.locator("summary").click()
            await row.get_by_role("button", name="停用").click()
            await expect(page.locator("#item-caller-w01 summary")).to_contain_text("已停用")
            for _ in range(50):
                if not keypad.link.connected.is_set():
                    break
                await page.wait_for_timeout(100)
            assert not keypad.link.connected.is_set(), "the disabled keypad is still connected"

            # its provisioning sheet: a new password, shown once, with a QR code of the settings
            row = page.locator("#item-led-w01")
            await row.locator("summary").click()
            page.once("dialog", lambda d: d.accept())
            await row.get_by_role("button", name="重置密码并打印配置单").click()
            sheet = page.locator("#sheet-dialog")
            await expect(sheet).to_be_visible()
            await expect(sheet).to_contain_text("设备配置单 · led-w01")
            assert await sheet.locator(".qr svg").count() == 1
            password = await sheet.locator("code.secret").inner_text()
            assert len(password) >= 16
            await page.screenshot(path=folder / "page-admin-sheet.png")
            await sheet.get_by_role("button", name="关闭").click()

            # a holiday: on the calendar, and the hall closed that day
            await page.goto(base + "/admin/calendar")
            holiday = (await srv.engine.settled()).day + timedelta(days=9)
            await page.locator("#day").fill(holiday.isoformat())
            await page.get_by_role("button", name="添加").click()
            await expect(page.locator("#toast")).to_have_text("已保存")
            await expect(page.locator("table")).to_contain_text(holiday.isoformat())
            await expect(page.locator(f"time[datetime='{holiday.isoformat()}'] ~ b")).to_have_text("休")
            assert not (await srv.engine.settled()).calendar.is_working_day(holiday)
            await assert_accessible(page)
            await page.screenshot(path=folder / "page-admin-calendar.png")

            # settings: a wrong value refused in place, a right one kept
            await page.goto(base + "/admin/settings")
            await page.locator("[name=max_recalls]").fill("99")
            await page.get_by_role("button", name="保存设置").click()
            await expect(page.locator("[data-error-for=max_recalls]")).to_have_text("应不大于 20")
            await page.locator("[name=max_recalls]").fill("3")
            await page.get_by_role("button", name="保存设置").click()
            await expect(page.locator("#toast")).to_have_text("已保存")
            assert (await srv.engine.settled()).config.hall.max_recalls == 3
            await assert_accessible(page)
            assert violations == [], violations
        finally:
            await browser.close()


async def test_people_tokens_audit_enrolment_and_roles(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import expect

    async with _admin_hall(tmp_path, clock) as (config, srv, base, browser):
        folder = shots(tmp_path)
        violations: list[str] = []
        page = await _signed_in(browser, base, path="/admin/users", violations=violations)
        new = page.locator("section.new form")
        await new.locator("[name=name]").fill("zhaoli")
        await new.locator("[name=display_name]").fill("赵丽")
        await new.locator("[name=password]").fill(PASSWORD)
        await new.get_by_role("button", name="新增").click()
        await expect(new.locator("[data-error-for=roles]")).not_to_be_empty()   # no role chosen
        await new.get_by_label("查询").check()
        await new.get_by_role("button", name="新增").click()
        await expect(page.locator("#user-zhaoli summary")).to_contain_text("赵丽")
        assert (await srv.runner.app[ACCOUNTS].user("zhaoli")).roles == ("viewer",)
        # a clerk's account gets a keypad PIN (kept hashed; the page says only that it is set)
        await srv.runner.app[ACCOUNTS].add_user("wangfang", ["clerk"], PASSWORD, "王芳", staff="1001")
        await page.reload()
        row = page.locator("#user-wangfang")
        await row.locator("summary").click()
        await row.locator("[name=pin]").fill("12")
        await row.get_by_role("button", name="设置 PIN").click()
        await expect(row.locator("form:has([name=pin]) .form-error")).to_contain_text("PIN")
        await row.locator("[name=pin]").fill("482913")
        await row.get_by_role("button", name="设置 PIN").click()
        await expect(page.locator("#toast")).to_have_text("已保存")
        await page.locator("#user-wangfang summary").click()
        pin_label = page.locator("#user-wangfang label[for=pin-wangfang]")
        await expect(pin_label).to_have_text("呼叫器 PIN （已设置）")
        assert await srv.runner.app[ACCOUNTS].check_pin("1001", "482913")
        await assert_accessible(page)
        await page.screenshot(path=folder / "page-admin-users.png")

        await page.goto(base + "/admin/tokens")
        form = page.locator("section.new form")
        await form.locator("[name=name]").fill("省平台对接")
        await form.get_by_label("查询").check()
        await form.get_by_role("button", name="新增").click()
        await expect(page.locator("#new-token")).to_be_visible()
        token = await page.locator("#new-token-text").inner_text()
        assert token.startswith("ymt_")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            assert (await http.get(f"{base}/api/board")).status == 200
            assert (await http.get(f"{base}/api/users")).status == 403     # a viewer's token
        await assert_accessible(page)

        await page.goto(base + "/admin/audit?actor=user:admin")
        await expect(page.locator("table.audit")).to_contain_text("user_added")
        await expect(page.locator("table.audit")).to_contain_text("token_added")
        assert "login_failed" not in await page.locator("table.audit").inner_text()
        await assert_accessible(page)
        await page.screenshot(path=folder / "page-admin-audit.png")

        # enrol the screen in front of you: it becomes the hall screen
        await page.goto(base + "/admin/config/devices")
        row = page.locator("#item-hall-screen-1")
        await row.locator("summary").click()
        page.once("dialog", lambda d: d.accept())
        await row.get_by_role("button", name="登记本机为此设备").click()
        await expect(page).to_have_url(base + "/screen")
        await expect(page.locator("body")).to_contain_text(config.hall.name)
        assert violations == [], violations

        # a viewer reads the dashboard but is told 没有权限 on the people's page
        viewer = await _signed_in(browser, base, "zhaoli", path="/admin")
        await expect(viewer.locator("nav")).not_to_contain_text("用户")
        r = await viewer.goto(base + "/admin/users")
        assert r is not None and r.status == 403
        await expect(viewer.locator("h1")).to_have_text("没有权限")


async def test_the_dashboard_follows_the_hall_live_and_warns_of_long_waits(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import expect

    async with _admin_hall(tmp_path, clock) as (config, srv, base, browser):
        page = await _signed_in(browser, base, path="/admin", viewport=WIDE)
        await expect(page.locator("h1")).to_have_text("值班看板")
        issued = page.locator(".figures div").first.locator("b")
        await expect(issued).to_have_text("0")
        desk = await token_headers(srv, "supervisor")
        await _take(base, desk, 12, "B")                       # nobody at window 4 (不动产登记)
        await expect(issued).to_have_text("12")                # pushed, not reloaded
        await expect(page.locator(".alert")).to_contain_text("不动产登记")
        await expect(page.locator(".alert")).to_contain_text("没有窗口在办理")
        async with aiohttp.ClientSession(headers=desk) as http:   # a clerk logs in and calls
            for op, body in (("login", {"staff": "1004"}), ("next", {})):
                r = await http.post(f"{base}/api/windows/4/{op}", json=body)
                assert r.status == 200, await r.text()
        row = page.locator("table.windows tr", has_text="4号窗口")
        await expect(row).to_contain_text("已呼叫")
        await expect(row).to_contain_text("B001")
        await assert_accessible(page)
        await page.screenshot(path=shots(tmp_path) / "page-admin-dashboard.png")
        english = page.get_by_role("button", name="English")
        await english.click()
        await expect(page.locator("h1")).to_have_text("Duty dashboard")
        await page.get_by_role("button", name="中文").click()
        await expect(page.locator("h1")).to_have_text("值班看板")


async def test_notices_clerks_windows_and_appointments_from_their_pages(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import expect

    async with _admin_hall(tmp_path, clock) as (config, srv, base, browser):
        folder = shots(tmp_path)
        screen_context = await browser.new_context(viewport=WIDE)
        screen = await screen_context.new_page()
        await screen.goto(base + await enrol(screen_context, base, srv, "hall-screen-1"))
        page = await _signed_in(browser, base, path="/admin/config/notices")

        # a notice: on the hall screen at once
        new = page.locator("section.new form")
        await new.locator("[name=id]").fill("winter")
        await new.locator("[name=text]").fill("冬季办公时间：下午 13:30 开始受理")
        await new.get_by_role("button", name="新增").click()
        await expect(page.locator("#item-winter summary")).to_contain_text("冬季办公时间")
        await expect(screen.locator("#notices")).to_contain_text("冬季办公时间")
        await assert_accessible(page)

        # a window's services (several of a list) and a clerk's windows, by ticking them
        await page.goto(base + "/admin/config/windows")
        row = page.locator("#item-4")
        await row.locator("summary").click()
        await row.get_by_label("C 社保医保").check()
        await row.locator("[name=weights]").fill("3")             # one weight for two services
        await row.get_by_role("button", name="保存修改").click()
        await expect(row.locator("[data-error-for=weights]")).to_contain_text(
            "weights 的个数应与 services 相同")
        await row.locator("[name=weights]").fill("3,1")
        await row.get_by_role("button", name="保存修改").click()
        await expect(page.locator("#item-4 summary")).to_contain_text("B 不动产登记、C 社保医保")
        assert (await srv.engine.settled()).config.window_by_id["4"].weights == (3, 1)
        await assert_accessible(page)
        await page.screenshot(path=folder / "page-admin-windows.png")

        await page.goto(base + "/admin/config/clerks")
        row = page.locator("#item-1004")
        await row.locator("summary").click()
        await row.locator("fieldset", has_text="备岗窗口").get_by_label("6号窗口").check()
        await row.get_by_role("button", name="保存修改").click()
        await expect(page.locator("#item-1004 summary")).to_contain_text("备岗：5号窗口、6号窗口")
        assert "6" in (await srv.engine.settled()).clerks["1004"].backup_windows
        await assert_accessible(page)

        # an appointment booked and cancelled
        await page.goto(base + "/admin/appointments")
        day = (await srv.engine.settled()).day
        await page.locator("#a-code").fill("YY0001")
        await page.locator("#a-service").select_option("C")
        await page.get_by_role("button", name="添加").click()
        await expect(page.locator("table")).to_contain_text("YY0001")
        await expect(page.locator("tr", has_text="YY0001")).to_contain_text("待签到")
        page.once("dialog", lambda d: d.accept())
        await page.locator("tr", has_text="YY0001").get_by_role("button", name="取消").click()
        await expect(page.locator("tr", has_text="YY0001")).to_contain_text("已取消")
        assert (await srv.engine.settled()).queue.appointments["YY0001"].cancelled
        assert day.isoformat() in await page.locator("tr", has_text="YY0001").inner_text()
        await assert_accessible(page)
        await page.screenshot(path=folder / "page-admin-appointments.png")

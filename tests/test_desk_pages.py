"""The desk and the back office in a real headless Chromium, end to end: the desk calls the
ticket, finds the matter by its pinyin initials, opens the case with its materials ticked,
prints the acceptance notice on the desk's printer (a protocol v1 printer: raster ESC/POS to
a file) and as an A4 PDF, hands the case on; the back office reviews and decides it, marks it
ready and calls the citizen (the announcer says the ticket's number), hands it over; the status
page from the notice's QR code then says 已取件."""

from __future__ import annotations

import shutil
import subprocess

import aiohttp
import pytest

from controller.core.commands import Origin, SetMatters, Source
from controller.web.access import ACCOUNTS
from tests.axe import assert_accessible
from tests.bushelp import devices, unique
from tests.helpers import demo_config
from tests.pagehelp import PASSWORD, token_headers
from tests.test_pages import CHROMIUM, browser_or_skip, served, shots

pytestmark = pytest.mark.slow
DESK_PC = {"width": 1920, "height": 1080}
ID = "110101199003074573"
MATTERS = [
    {"code": "330102-GT-01", "name": "个体工商户设立登记", "department": "市场监管局", "promised_days": 3,
     "statutory_days": 15, "materials": ["身份证", "经营场所证明", "个体工商户开业登记申请书"],
     "windows": ["1"], "service": "A"},
    {"code": "330102-BDC-02", "name": "不动产转移登记", "department": "自然资源局", "promised_days": 5,
     "statutory_days": 30, "materials": ["不动产权证书", "买卖合同"], "windows": ["4"], "service": "B"},
]



async def _page(browser, base: str, user: str, path: str):  # noqa: ANN001, ANN202
    from playwright.async_api import expect

    page = await (await browser.new_context(viewport=DESK_PC)).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(base + path)
    await page.locator("#user").fill(user)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#password").press("Enter")
    await expect(page).to_have_url(base + path)
    return page, errors


async def test_a_ticket_becomes_a_case_and_the_result_is_handed_over(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    printed = tmp_path / "printer"
    async with served(config, tmp_path, clock) as (srv, base), \
            devices(config, srv.bus.link.broker, ["printer-desk", "announcer-1"]) as dev, \
            async_playwright() as p:
        dev["printer-desk"].folder = str(printed)
        await srv.engine.execute(SetMatters(matters=MATTERS), Source("user:admin", Origin.ADMIN))
        accounts = srv.runner.app[ACCOUNTS]
        await accounts.add_user("zongtai", ["desk"], PASSWORD, "赵台", staff="1001")
        await accounts.add_user("lina", ["clerk"], PASSWORD, "李娜", staff="1002")
        async with aiohttp.ClientSession(headers=await token_headers(srv, "supervisor")) as http:
            r = await http.post(f"{base}/api/tickets", json={"service": "A"})
            ticket = (await r.json())["ticket"]["number"]
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        folder = shots(tmp_path)
        try:
            desk, errors = await _page(browser, base, "zongtai", "/desk")
            await desk.get_by_role("button", name="登录窗口").click()
            await desk.get_by_role("button", name="叫下一位").click()
            await expect(desk.locator("#desk-ticket")).to_have_text(ticket)

            await desk.locator("#matter-q").fill("gtgsh")                # 个体工商户 by pinyin initials
            await desk.get_by_role("button", name="个体工商户设立登记").click()
            form = desk.locator("#case-form")
            await expect(form.locator("#c-ticket")).to_have_value(ticket)
            for material in ("身份证", "经营场所证明", "个体工商户开业登记申请书"):
                await form.get_by_role("checkbox", name=material, exact=True).check()
            await form.locator("#c-id").fill(ID[:-1] + "0")              # a wrong check digit
            await form.get_by_role("button", name="受理").click()
            await expect(form.locator("[data-error-for=applicant], .form-error").first).not_to_be_empty()
            await form.locator("#c-applicant").fill("张三丰")
            await form.get_by_role("button", name="受理").click()
            await expect(form.locator("[data-error-for=id_number]")).to_contain_text("校验码")
            await form.locator("#c-id").fill(ID)
            await form.get_by_role("button", name="受理").click()
            card = desk.locator(".case-card")
            await expect(card).to_contain_text("已受理")
            number = (await card.locator(".case-number").inner_text()).strip()
            assert number.endswith("-0001") and "110101********4573" in await card.inner_text()
            await expect(desk.locator("#desk-cases")).to_contain_text("个体工商户设立登记")
            await assert_accessible(desk)
            await desk.screenshot(path=folder / "page-desk.png")

            await card.get_by_role("button", name="打印受理通知书").click()
            printer = dev["printer-desk"]
            await printer.wait_until(lambda: "acceptance_notice" in printer.printed.values())
            jobs = sorted(printed.glob("*.bin"))
            assert len(jobs) == 1 and b"\x1dv0" in jobs[0].read_bytes()          # a raster image
            pdf = await desk.context.request.get(f"{base}/api/cases/{number}/notice/acceptance_notice.pdf")
            body = await pdf.body()
            assert pdf.ok and body.startswith(b"%PDF")
            if shutil.which("pdftoppm"):
                (tmp_path / "notice.pdf").write_bytes(body)
                subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(tmp_path / "notice.pdf"),
                                str(folder / "case-acceptance-notice")], check=True, timeout=60)
            await desk.locator(".case-card").get_by_role("button", name="分送办理").click()
            await expect(desk.locator("#toast")).to_contain_text("已完成")
            assert (await srv.engine.settled()).cases.by_number[number].state == "handed_off"
            assert errors == [], errors

            office, errors = await _page(browser, base, "lina", "/office")
            row = office.locator(f"#case-{number}")
            await expect(row).to_contain_text("个体工商户设立登记")
            await expect(row).to_contain_text("剩 3 个工作日")
            for step in ("开始审查",):
                await row.locator("summary").click()
                await row.get_by_role("button", name=step).click()
                await expect(office.locator("#toast")).to_be_visible()
            await assert_accessible(office)
            await office.screenshot(path=folder / "page-office.png")
            row = office.locator(f"#case-{number}")
            await row.locator("summary").click()
            await row.get_by_role("button", name="办结").click()
            row = office.locator(f"#case-{number}")
            await expect(row).to_contain_text("已办结")      # redrawn (closed) before it is opened again
            await row.locator("summary").click()
            await row.get_by_role("button", name="通知取件").click()
            row = office.locator(f"#case-{number}")
            await expect(row).to_contain_text("待取件")
            await row.locator("summary").click()
            await row.get_by_role("button", name="叫号取件").click()
            await dev["announcer-1"].wait_until(
                lambda: f"请{ticket}号到1号窗口取件" in dev["announcer-1"].spoken)
            row = office.locator(f"#case-{number}")
            await row.locator("summary").click()
            await row.get_by_role("button", name="已取件").click()
            await expect(office.locator("#toast")).to_be_visible()
            case = (await srv.engine.settled()).cases.by_number[number]
            assert case.state == "handed_over" and case.decision == "approved"
            assert errors == [], errors

            citizen = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
            await citizen.goto(f"{base}/c/{case.token}")
            await expect(citizen.locator("#state")).to_contain_text("已取件")
            await expect(citizen.locator("#applicant")).to_have_text("张*丰")
            assert ID[-4:] not in await citizen.content()
            await assert_accessible(citizen)
            await citizen.screenshot(path=folder / "page-case-status.png")
        finally:
            await browser.close()

"""The monthly per-window report and the statistics page: the xlsx read back with openpyxl (its
figures and its native chart), and the page in headless Chromium with its ECharts charts,
checked by axe-core; a clerk may have neither."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime

import openpyxl
import pytest
from PIL import ImageChops

from controller.monthly import made
from controller.web.api import ENGINE
from tests.test_followups_api import _rated
from tests.test_notices import pdftoppm  # noqa: F401 - the fixture
from tests.test_security_web import add_user, server, sign_in  # noqa: F401 - the fixture


async def test_the_monthly_report_has_each_windows_figures_and_a_chart(server, tmp_path):  # noqa: F811
    for level in ("very_satisfied", "satisfied", "dissatisfied"):
        await _rated(server, "1", "1001", level)
    await _rated(server, "2", "1002", "satisfied")
    await add_user(tmp_path, "zhang", "supervisor")
    await add_user(tmp_path, "lina", "clerk", staff="1002")
    await sign_in(server, "lina")
    assert (await server.get("/api/reports/monthly.xlsx")).status == 403       # not a clerk's
    server.session.cookie_jar.clear()
    await sign_in(server, "zhang")
    r = await server.get("/api/reports/monthly.xlsx?month=2026-11")
    assert r.status == 200 and "report-2026-11.xlsx" in r.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(await r.read())).active
    assert "2026年11月" in sheet["A1"].value and sheet["B2"].value == "办结"
    rows = {row[0]: row for row in sheet.iter_rows(min_row=3, values_only=True) if row[0]}
    assert rows["1"][1] == 2            # served: the third is still at the window (its rating asked)
    assert rows["1"][6] == 3 and rows["1"][7] == pytest.approx(2 / 3, abs=1e-3)  # rated, good rate
    assert rows["1"][12] == 0           # in post since 09:00, and the clock says 09:00: no hours yet
    assert len(sheet._charts) == 1 and sheet._charts[0].title is not None    # the native chart
    assert (await server.get("/api/reports/monthly.xlsx?month=2027-01")).status == 400


@pytest.mark.slow
async def test_the_statistics_page_in_a_browser(tmp_path, clock):
    from playwright.async_api import async_playwright, expect

    from tests.axe import assert_accessible
    from tests.bushelp import unique
    from tests.helpers import demo_config
    from tests.pagehelp import add_person
    from tests.test_admin_pages import _signed_in
    from tests.test_pages import CHROMIUM, browser_or_skip, served, shots

    browser_or_skip()
    async with served(unique(demo_config()), tmp_path, clock) as (srv, base), async_playwright() as p:
        class Client:
            app = srv.runner.app
        for level in ("very_satisfied", "satisfied", "very_dissatisfied"):
            await _rated(Client, "1", "1001", level)
        await add_person(srv)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await _signed_in(browser, base, path="/admin/stats",
                                    viewport={"width": 1366, "height": 768})
            await expect(page.locator("table.stats tbody tr")).to_have_count(1)
            await expect(page.locator(".chart[data-bars] svg")).to_have_count(1)
            await expect(page.locator(".chart[data-heat] svg")).to_have_count(1)
            await expect(page.locator(".figures")).to_contain_text("66.7%")
            await assert_accessible(page)
            await page.screenshot(path=shots(tmp_path)
                                  / "page-admin-stats.png", full_page=True)
            await expect(page.locator("ul.states")).to_contain_text("1 待回访")   # the 差评's follow-up
            await page.select_option("#by", "clerk")                              # per clerk
            await page.get_by_role("button", name="查看").click()
            await expect(page.locator("table.stats tbody th")).to_have_text(["王芳（1001）"])
            await expect(page.locator("table.stats thead th").first).to_have_text("人员")
            await page.select_option("#by", "service")
            await page.get_by_role("button", name="查看").click()
            await expect(page.locator("table.stats tbody th").first).to_contain_text("A ")
            async with page.expect_download() as download:
                await page.get_by_role("link", name="月度报表 PDF").click()
            assert (await download.value).suggested_filename.endswith(".pdf")
        finally:
            await browser.close()


async def test_the_report_job_keeps_last_months_report_on_its_first_working_day(tmp_path, pdftoppm):  # noqa: F811
    """September 2026's report is made on 8 October, the first working day after the National
    Day holidays, kept as made; the PDF reads in poppler, landscape, with its bar chart."""
    from aiohttp.test_utils import TestClient, TestServer

    from controller.clock import FakeClock
    from controller.server import create_app
    from tests.helpers import CST, demo_config
    from tests.test_notices import rasterise
    from tests.test_pages import shots

    clock = FakeClock(datetime(2026, 9, 30, 9, 0, tzinfo=CST))
    await add_user(tmp_path, "zhang", "supervisor")
    config = demo_config()
    config = config.model_copy(update={"hall": config.hall.model_copy(update={
        "national_calendar": True, "days": ("mon", "tue", "wed", "thu", "fri")})})
    async with TestClient(TestServer(create_app(config, tmp_path, clock=clock, bus=False))) as c:
        for level in ("very_satisfied", "satisfied", "dissatisfied"):
            await _rated(c, "1", "1001", level)
        await _rated(c, "2", "1002", "satisfied")

        async def kept(expect: int = 0) -> list[str]:
            for _ in range(30 if expect else 5):
                await asyncio.sleep(0.1)
                periods = [r["period"] for r in await made(c.app[ENGINE].db, "demo")]
                if len(periods) > expect:
                    break
            return periods

        assert await kept() == []                       # September's first working day is past
        clock.set(datetime(2026, 10, 1, 0, 31, tzinfo=CST))
        assert await kept() == []                       # 1 October: a holiday
        clock.set(datetime(2026, 10, 7, 23, 59, tzinfo=CST))
        assert await kept() == []
        clock.set(datetime(2026, 10, 8, 0, 31, tzinfo=CST))
        assert await kept(1) == ["2026-09"]
        await sign_in(c, "zhang")
        assert (await c.get("/api/reports/kept/2026-08.pdf")).status == 404
        r = await c.get("/api/reports/kept/2026-09.xlsx")
        sheet = openpyxl.load_workbook(io.BytesIO(await r.read())).active
        rows = {row[0]: row for row in sheet.iter_rows(min_row=3, values_only=True) if row[0]}
        assert rows["1"][1] == 2 and rows["1"][6] == 3 and rows["2"][6] == 1    # served, rated
        r = await c.get("/api/reports/kept/2026-09.pdf")
        assert r.status == 200 and r.content_type == "application/pdf"
        pages = rasterise(pdftoppm, await r.read(), tmp_path / "pdf", dpi=100)
        assert len(pages) == 1 and pages[0].width > pages[0].height       # A4 landscape
        red, _, blue_ = pages[0].convert("RGB").split()
        bars = ImageChops.multiply(blue_.point(lambda v: 255 if v > 140 else 0),
                                   red.point(lambda v: 255 if v < 90 else 0))
        blue = bars.histogram()[255]
        assert blue > 2000                              # the bars are drawn
        pages[0].save(shots(tmp_path) / "report-monthly-pdf.png")
        r = await c.get("/api/reports/monthly.pdf?month=2026-09")     # and on demand
        assert r.status == 200 and (await r.read()).startswith(b"%PDF-")
        clock.set(datetime(2026, 10, 9, 0, 31, tzinfo=CST))
        assert await kept(1) == ["2026-09"]                        # made once


async def test_a_server_started_before_the_months_first_working_day_still_makes_the_report(tmp_path):
    """Restarted on 2 October, in the National Day holidays: the job waits for 8 October, the
    month's first working day, not for November."""
    from aiohttp.test_utils import TestClient, TestServer

    from controller.clock import FakeClock
    from controller.server import create_app
    from tests.helpers import CST, demo_config

    config = demo_config()
    config = config.model_copy(update={"hall": config.hall.model_copy(update={
        "national_calendar": True, "days": ("mon", "tue", "wed", "thu", "fri")})})
    clock = FakeClock(datetime(2026, 9, 30, 9, 0, tzinfo=CST))
    async with TestClient(TestServer(create_app(config, tmp_path, clock=clock, bus=False))) as c:
        await _rated(c, "1", "1001", "satisfied")
    clock = FakeClock(datetime(2026, 10, 2, 10, 0, tzinfo=CST))
    async with TestClient(TestServer(create_app(config, tmp_path, clock=clock, bus=False))) as c:
        await asyncio.sleep(0.3)
        assert await made(c.app[ENGINE].db, "demo") == []
        clock.set(datetime(2026, 10, 8, 0, 31, tzinfo=CST))
        for _ in range(50):
            await asyncio.sleep(0.1)
            if await made(c.app[ENGINE].db, "demo"):
                break
        assert [r["period"] for r in await made(c.app[ENGINE].db, "demo")] == ["2026-09"]

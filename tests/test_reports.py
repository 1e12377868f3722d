"""The monthly per-window report and the statistics page: the xlsx read back with openpyxl (its
figures and its native chart), and the page in headless Chromium with its ECharts charts,
checked by axe-core; a clerk may have neither."""

from __future__ import annotations

import io

import openpyxl
import pytest

from tests.test_followups_api import _rated
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
        finally:
            await browser.close()

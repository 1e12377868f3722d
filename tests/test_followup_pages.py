"""The 差评 follow-up page and a clerk's own ratings in headless Chromium: the supervisor records
the return visit and lodges an appeal, which another supervisor must decide; the clerk sees
their own ratings only. axe-core finds nothing serious on either page."""

from __future__ import annotations

import pytest

from controller.web.access import ACCOUNTS
from tests.axe import assert_accessible
from tests.bushelp import unique
from tests.helpers import demo_config
from tests.pagehelp import PASSWORD
from tests.test_admin_pages import _signed_in
from tests.test_followups_api import _rated
from tests.test_pages import CHROMIUM, browser_or_skip, served, shots

pytestmark = pytest.mark.slow
PC = {"width": 1366, "height": 768}



async def test_a_supervisor_follows_up_and_a_clerk_reads_their_own_ratings(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (srv, base), async_playwright() as p:
        class Client:                                          # what _rated needs of a client
            app = srv.runner.app
        await _rated(Client, "1", "1001", "dissatisfied")
        await _rated(Client, "2", "1002", "very_dissatisfied")
        accounts = srv.runner.app[ACCOUNTS]
        for name, roles, staff in (("zhang", ["supervisor"], None), ("wang", ["supervisor"], None),
                                   ("wangfang", ["clerk"], "1001")):
            await accounts.add_user(name, roles, PASSWORD, name, staff=staff)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await _signed_in(browser, base, "zhang", "/followups", PC)
            items = page.locator("li.item")
            await expect(items).to_have_count(2)
            first = items.filter(has_text="1号窗口")
            await first.locator("summary").click()
            await first.locator("form[data-api$='/visit'] input[name=note]").fill("已电话回访")
            await first.get_by_role("button", name="回访").click()
            await expect(page.locator("#toast")).to_have_text("已保存")
            first = page.locator("li.item").filter(has_text="1号窗口")
            await expect(first).to_contain_text("整改中")
            await first.locator("summary").click()
            await first.get_by_role("button", name="申诉").click()              # no reason given
            await expect(first.locator("form[data-api$='/appeal'] .form-error")).to_contain_text("理由")
            await first.locator("form[data-api$='/appeal'] input[name=note]").fill("评价人误按")
            await first.get_by_role("button", name="申诉").click()
            await expect(page.locator("li.item").filter(has_text="1号窗口")).to_contain_text("申诉中")
            await assert_accessible(page)
            await page.screenshot(path=shots(tmp_path) / "page-followups.png")

            other = await _signed_in(browser, base, "wang", "/followups", PC)
            row = other.locator("li.item").filter(has_text="1号窗口")
            await row.locator("summary").click()
            await row.locator("form[data-api$='/uphold'] input[name=note]").fill("监控核实为误评")
            await row.get_by_role("button", name="申诉成立").click()
            await expect(other.locator("li.item")).to_have_count(1)             # closed: gone from the list
            assert [f.state for f in (await srv.engine.settled()).followups.values()
                    if f.window == "1"] == ["excluded"]

            clerk = await _signed_in(browser, base, "wangfang", "/my/ratings", PC)
            await expect(clerk.locator("tbody tr")).to_have_count(1)
            await expect(clerk.locator("tbody")).to_contain_text("不满意")
            assert "非常不满意" not in await clerk.locator("tbody").inner_text()   # 1002's is not hers
            await assert_accessible(clerk)
            await clerk.screenshot(path=shots(tmp_path) / "page-my-ratings.png")
        finally:
            await browser.close()

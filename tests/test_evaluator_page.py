"""The tablet evaluator (/evaluator) in headless Chromium: enrolled as window 1's evaluator it
waits, shows the prompt the clerk asks for with five levels (none chosen), asks a 差评 for its
reasons and sends one rating, which opens the 差评's follow-up. axe-core finds nothing serious."""

from __future__ import annotations

import pytest

from controller.core.commands import CallNext, Evaluate, Login, Origin, Source, Take
from tests.axe import assert_accessible
from tests.bushelp import unique
from tests.helpers import demo_config
from tests.pagehelp import enrol
from tests.test_pages import CHROMIUM, browser_or_skip, served, shots

pytestmark = pytest.mark.slow
TABLET = {"width": 1280, "height": 800}
PAD = Source("device:caller-w01", Origin.MQTT)


async def test_a_citizen_rates_on_the_tablet_and_a_bad_rating_gives_its_reasons(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (srv, base), async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport=TABLET)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            path = await enrol(context, base, srv, "eval-w01")
            assert path == "/evaluator"
            await page.goto(base + path)
            await expect(page.locator("#idle")).to_be_visible()
            await expect(page.locator("#window")).to_contain_text("1号窗口")

            for command in (Take(service="A"), Login(window="1", staff="1001"), CallNext(window="1"),
                            Evaluate(window="1")):
                await srv.engine.execute(command, PAD)
            await expect(page.locator("#ask")).to_be_visible(timeout=8000)
            assert await page.locator("[data-level][aria-pressed=true]").count() == 0   # none chosen
            await assert_accessible(page)
            folder = shots(tmp_path)
            await page.screenshot(path=folder / "page-evaluator.png")
            await page.get_by_role("button", name="不满意 Dissatisfied", exact=True).click()
            await expect(page.locator("#why")).to_be_visible()
            await page.get_by_text("办事效率").click()
            await page.get_by_role("button", name="提交评价 · Send").click()
            await expect(page.locator("#thanks")).to_be_visible()
            hall = await srv.engine.settled()
            [f] = hall.followups.values()
            assert (f.level, f.reasons, f.window) == ("dissatisfied", ("efficiency",), "1")
            assert errors == []
        finally:
            await browser.close()

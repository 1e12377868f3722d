"""The kiosk page fills its screen either way up (1080×1920 portrait, 1920×1080 landscape):
with the demo's 5 services and with 12, every service's button lies within the viewport, in
the ordinary and the large-text mode (大字 A+), asserted from the buttons' boxes in Chromium."""

from __future__ import annotations

import aiohttp
import pytest

from tests.bushelp import unique
from tests.helpers import demo_config
from tests.pagehelp import enrol, token_headers
from tests.test_pages import CHROMIUM, LANDSCAPE, PORTRAIT, browser_or_skip, served, shots

pytestmark = pytest.mark.slow

#: seven more services: the demo's five and these make twelve
MORE = [("F", "公积金", "公积金"), ("G", "社保卡补换", "社会保障"), ("H", "医保报销", "社会保障"),
        ("J", "户籍迁移", "公安"), ("K", "出入境证件", "公安"), ("L", "婚姻登记", "民政"),
        ("M", "残疾人证办理", "民政")]


async def boxes_within(page, viewport: dict) -> list[dict]:  # noqa: ANN001
    """Each service button's box (all of them inside the viewport, none empty)."""
    buttons = page.locator(".svc")
    boxes = [await b.bounding_box() for b in await buttons.all()]
    for box in boxes:
        assert box is not None and box["width"] > 100 and box["height"] > 60, box
        assert box["x"] >= 0 and box["y"] >= 0, box
        assert box["x"] + box["width"] <= viewport["width"] + 0.5, (box, viewport)
        assert box["y"] + box["height"] <= viewport["height"] + 0.5, (box, viewport)
    # the names are not cut off inside their buttons either
    assert [] == await page.evaluate("""() => [...document.querySelectorAll(".svc")].filter(b =>
        b.scrollHeight > b.clientHeight + 1 || b.scrollWidth > b.clientWidth + 1).map(b =>
        [b.textContent, b.scrollWidth, b.clientWidth, b.scrollHeight, b.clientHeight])""")
    return boxes


async def name_px(page) -> float:  # noqa: ANN001
    return float((await page.locator(".svc .name").first.evaluate(
        "e => getComputedStyle(e).fontSize")).removesuffix("px"))


async def check(page, count: int) -> None:  # noqa: ANN001
    """Every one of ``count`` services on screen, both ways up, both text sizes."""
    from playwright.async_api import expect

    await expect(page.locator(".svc")).to_have_count(count)
    for viewport in (PORTRAIT, LANDSCAPE):
        await page.set_viewport_size(viewport)
        await page.wait_for_timeout(100)
        boxes = await boxes_within(page, viewport)
        used = max(b["y"] + b["height"] for b in boxes)
        assert used > viewport["height"] * 0.85, "the grid fills the screen"
        normal = await name_px(page)
        await page.locator("#large").click()                     # 大字 A+
        await expect(page.locator("#large")).to_have_attribute("aria-pressed", "true")
        assert await name_px(page) >= normal * 1.4, "large text is really large"
        await boxes_within(page, viewport)
        await page.locator("#large").click()
        await expect(page.locator("#large")).to_have_attribute("aria-pressed", "false")


async def test_the_kiosk_shows_5_and_12_services_on_screen_either_way_up(tmp_path, clock):
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (server, base), async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport=PORTRAIT)
            page = await context.new_page()
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text)
                    if "Content Security Policy" in m.text else None)
            await page.goto(base + await enrol(context, base, server, "kiosk-1"))
            await check(page, 5)

            await page.set_viewport_size(PORTRAIT)                 # a ticket: take it, it says
            await page.locator(".svc[data-service=A]").click()
            await page.locator("#a-plain").click()
            await expect(page.locator("#r-number")).to_have_text("A001")
            await expect(page.locator("#r-take")).to_have_text("请取走号票 Please take your ticket")
            await expect(page.locator("#r-take")).to_be_visible()
            await page.screenshot(path=tmp_path / "page-kiosk-ticket.png")
            await page.locator("#r-done").click()
            await expect(page.locator(".svc[data-service=A]")).to_contain_text("等候 1 人")
            folder = shots(tmp_path)
            await page.screenshot(path=folder / "page-kiosk.png")
            await page.set_viewport_size(LANDSCAPE)
            await page.wait_for_timeout(100)
            await page.screenshot(path=folder / "page-kiosk-landscape.png")

            async with aiohttp.ClientSession(headers=await token_headers(server)) as http:
                for code, name, category in MORE:                  # an administrator adds seven
                    async with http.post(f"{base}/api/config/services", json={
                            "code": code, "name": name, "category": category}) as r:
                        assert r.status == 201, await r.text()
            await check(page, 12)                                   # shown without a reload
            await page.set_viewport_size(PORTRAIT)
            await page.wait_for_timeout(100)
            await page.screenshot(path=tmp_path / "page-kiosk-12.png")
            await page.set_viewport_size(LANDSCAPE)
            await page.locator("#large").click()
            await page.wait_for_timeout(100)
            await page.screenshot(path=tmp_path / "page-kiosk-12-large.png")
            assert violations == []
        finally:
            await browser.close()

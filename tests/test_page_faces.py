"""The pages' icon and the page an unknown address answers with (没有这个页面), without a
browser: an unknown page is a page, an unknown API path stays JSON."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller.server import create_app
from tests.helpers import demo_config


@pytest.fixture
async def client(tmp_path, clock):
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_every_page_has_the_icon_served_without_credentials(client):
    r = await client.get("/favicon.ico")
    assert r.status == 200 and r.content_type == "image/svg+xml"
    assert (await r.text()).startswith("<svg")
    for path in ("/", "/login", "/kiosk", "/screen", "/window/1", "/t/x", "/no-such-page"):
        r = await client.get(path)
        assert '<link rel="icon" href="/favicon.ico"' in await r.text(), path


async def test_an_unknown_page_says_so_with_a_link_home(client):
    for path in ("/no-such-page", "/admin/nothing", "/window/1/more"):
        r = await client.get(path)
        assert r.status == 404 and r.content_type == "text/html", path
        text = await r.text()
        assert "没有这个页面" in text and "No such page" in text and 'href="/"' in text
        assert "<script" not in text and "style=" not in text        # CSP-clean
        assert "Content-Security-Policy" in r.headers


async def test_an_unknown_api_path_keeps_its_json_404(client):
    r = await client.get("/api/no-such-thing")
    assert r.status == 404 and r.content_type == "application/json"
    assert (await r.json())["error"]["code"] == "not_found"
    r = await client.post("/no-such-page", json={})              # not a page a browser opens
    assert r.status in (403, 404)

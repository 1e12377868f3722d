"""A ticket's status page is found only through its QR code: its address is a token that
cannot be worked out from the ticket's date and number, and the old address by id opens
nothing."""

from __future__ import annotations

import os
import re
import stat

from aiohttp.test_utils import TestClient, TestServer

from controller.core.commands import SYSTEM, CallNext, Login, Take
from controller.server import STATUS_KEY, create_app
from controller.web.api import ENGINE
from tests.helpers import small_config

NO_SUCH_TICKET = {"code": "unknown_ticket", "message": "没有这张票", "message_en": "no such ticket"}


async def take(client: TestClient, service: str = "A") -> dict:
    return (await client.server.app[ENGINE].execute(Take(service=service), SYSTEM))["ticket"]


async def test_the_status_page_is_at_a_token_and_not_at_the_tickets_id(tmp_path, clock):
    config = small_config(status_url="https://hall.example/")
    async with TestClient(TestServer(create_app(config, tmp_path / "data", clock=clock, bus=False))) as c:
        first, second = await take(c), await take(c)
        token = first["status_path"].removeprefix("/t/")
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token), first        # 128 bits, URL-safe
        assert first["status_url"] == f"https://hall.example/t/{token}"
        assert second["status_path"] != first["status_path"]
        ticket_id = c.server.app[ENGINE].hall.ticket("A001").id          # 20261123-A001
        assert "A001" not in token and ticket_id[:8] not in token

        for path in (f"/t/{token}", f"/api/status/{token}", f"/t/{token}/qr.svg"):
            r = await c.get(path)
            assert r.status == 200, path
            assert r.headers["Referrer-Policy"] == "no-referrer", path   # never sent on to a site
        assert (await (await c.get(f"/api/status/{token}")).json())["ticket"]["number"] == "A001"
        assert (await c.get(f"/t/{token}/qr.svg")).content_type == "image/svg+xml"

        # the old address by date and number: no ticket, like any unknown one
        for old in (ticket_id, "20261123-A001", "A001"):
            r = await c.get(f"/api/status/{old}")
            assert r.status == 404 and (await r.json())["error"] == NO_SUCH_TICKET
            assert r.headers["Referrer-Policy"] == "no-referrer"
            assert (await c.get(f"/t/{old}/qr.svg")).status == 404
            assert (await c.get(f"/api/status/{old}/stream")).status == 404


async def test_only_the_one_who_took_the_ticket_is_told_its_address(tmp_path, clock):
    """A clerk's keypad, the board and the ticket's own status show no address."""
    async with TestClient(TestServer(create_app(small_config(), tmp_path, clock=clock, bus=False))) as c:
        engine = c.server.app[ENGINE]
        taken = await take(c)
        await engine.execute(Login(window="1", staff="1001"), SYSTEM)
        called = await engine.execute(CallNext(window="1"), SYSTEM)
        assert called["ticket"]["number"] == "A001" and "status_path" not in called["ticket"]
        status = await (await c.get(taken["status_path"].replace("/t/", "/api/status/"))).json()
        assert status["ticket"]["state"] == "called" and "status_path" not in status["ticket"]
        assert "status_url" not in engine.hall.public(engine.hall.ticket("A001"))


async def test_the_token_key_is_the_halls_kept_in_its_data_folder(tmp_path, clock):
    """The same hall keeps its tickets' addresses across a restart; another data folder (or
    a new key) gives other addresses; the key file is its owner's alone."""
    async def address(folder) -> str:  # noqa: ANN001
        app = create_app(small_config(), folder, clock=clock, bus=False)
        async with TestClient(TestServer(app)) as c:
            engine = c.server.app[ENGINE]
            ticket = engine.hall.ticket("A001") or engine.hall.ticket((await take(c))["number"])
            return engine.hall.status_link(ticket)["status_path"]

    here = await address(tmp_path / "a")
    key = tmp_path / "a" / STATUS_KEY
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and len(key.read_bytes().strip()) == 64
    assert await address(tmp_path / "a") == here                       # after a restart
    assert await address(tmp_path / "b") != here                       # another hall's key
    key.write_bytes(b"")                                              # emptied: a new key is made
    assert await address(tmp_path / "a") != here
    assert key.read_bytes().strip()

"""The JSON API as a soft caller or a kiosk would use it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller.server import create_app
from tests.helpers import bearer, demo_config


@pytest.fixture
async def client(tmp_path, clock):
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app), headers=await bearer(demo_config(), tmp_path)) as c:
        yield c


async def test_take_call_and_see_it_on_the_board(client):
    r = await client.post("/api/tickets", json={"service": "B"})
    assert r.status == 201
    ticket = (await r.json())["ticket"]
    assert (ticket["number"], ticket["service_name"], ticket["ahead"]) == ("B001", "不动产登记", 0)
    assert (await client.post("/api/windows/4/login", json={"staff": "1004"})).status == 200
    r = await client.post("/api/windows/4/next")
    assert (await r.json())["ticket"]["number"] == "B001"
    board = await (await client.get("/api/board")).json()
    w4 = next(w for w in board["windows"] if w["window"] == "4")
    assert (w4["state"], w4["ticket"]) == ("serving", "B001")
    r = await client.get("/api/tickets/b001")
    assert (await r.json())["ticket"]["state"] == "called"


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "bad_request"),
    (b"[1, 2]", 400, "bad_request"),
    (b'{"service": "Z"}', 404, "unknown_service"),
    (b'{"service": 5}', 400, "bad_arguments"),
    (b'{"service": "A", "colour": "red"}', 400, "bad_arguments"),
    (b'{}', 400, "bad_arguments"),
])
async def test_bad_requests_get_a_clear_error_and_change_nothing(client, body, status, code):
    r = await client.post("/api/tickets", data=body, headers={"Content-Type": "application/json"})
    assert r.status == status
    err = (await r.json())["error"]
    assert err["code"] == code and err["message"]
    tickets = (await (await client.get("/api/tickets")).json())["tickets"]
    assert tickets == []


async def test_refused_window_commands(client):
    r = await client.post("/api/windows/1/next")
    assert r.status == 409 and (await r.json())["error"]["code"] == "not_logged_in"
    r = await client.post("/api/windows/1/fly")
    assert r.status == 404
    r = await client.post("/api/windows/99/login", json={"staff": "1001"})
    assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_window"
    await client.post("/api/windows/1/login", json={"staff": "1001"})
    await client.post("/api/windows/1/pause")
    await client.post("/api/tickets", json={"service": "A"})
    r = await client.post("/api/windows/1/next")
    assert r.status == 409 and (await r.json())["error"]["message"] == "窗口已暂停服务"


async def test_idempotency_key_returns_the_first_answer(client):
    headers = {"Idempotency-Key": "kiosk-2:42"}
    first = await (await client.post("/api/tickets", json={"service": "C"}, headers=headers)).json()
    again = await (await client.post("/api/tickets", json={"service": "C"}, headers=headers)).json()
    assert first == again
    assert len((await (await client.get("/api/tickets")).json())["tickets"]) == 1


async def test_transfer_and_cancel(client):
    await client.post("/api/tickets", json={"service": "A"})
    await client.post("/api/tickets", json={"service": "A"})
    await client.post("/api/windows/1/login", json={"staff": "1001"})
    await client.post("/api/windows/1/next")
    r = await client.post("/api/windows/1/transfer", json={"to_service": "D"})
    assert (await r.json())["ticket"]["service"] == "D"
    r = await client.post("/api/tickets/A002/cancel")
    assert (await r.json())["ticket"]["state"] == "cancelled"
    health = await (await client.get("/api/health")).json()
    assert health["ok"] and health["stats"]["commands"] >= 5


async def test_storage_failure_is_a_503_and_nothing_is_issued(client, monkeypatch):
    from controller.web.api import ENGINE

    engine = client.server.app[ENGINE]
    real = engine.repo.write

    def broken(*args, **kw):
        raise OSError("disk unplugged")

    monkeypatch.setattr(engine.repo, "write", broken)
    r = await client.post("/api/tickets", json={"service": "A"})
    assert r.status == 503 and (await r.json())["error"]["code"] == "unavailable"
    board = await client.get("/api/board")          # rebuilt from what was stored: no ticket
    assert board.status == 200
    assert [s["issued"] for s in (await board.json())["services"]] == [0] * len(engine.config.services)
    monkeypatch.setattr(engine.repo, "write", real)
    r = await client.post("/api/tickets", json={"service": "A"})
    assert r.status == 201 and (await r.json())["ticket"]["number"] == "A001"
    assert (await client.get("/api/board")).status == 200


async def test_window_keys_are_the_keypads_keys_and_an_unknown_one_is_refused(client):
    """The routes come from the same table as the keypad's keys: ``evaluate`` (once only on
    the keypad) works over HTTP, and a key neither knows is a clear 404."""
    await client.post("/api/tickets", json={"service": "A"})
    await client.post("/api/windows/1/login", json={"staff": "1001"})
    await client.post("/api/windows/1/next")
    r = await client.post("/api/windows/1/evaluate")
    assert r.status == 200 and (await r.json())["evaluation"]["ticket"] == "A001"
    r = await client.post("/api/windows/1/explode")
    assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_command"
    r = await client.post("/api/windows/1/next", json={"window": "2"})      # the route decides
    assert r.status == 409 and (await r.json())["error"]["code"] == "queue_empty"


async def test_an_idempotency_key_is_checked_and_belongs_to_its_command(client):
    r = await client.post("/api/tickets", json={"service": "A"},
                          headers={"Idempotency-Key": "caf\u00e9"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
    first = await client.post("/api/tickets", json={"service": "A"}, headers={"Idempotency-Key": "k1"})
    again = await client.post("/api/tickets", json={"service": "A"}, headers={"Idempotency-Key": "k1"})
    assert (await first.json())["ticket"]["number"] == (await again.json())["ticket"]["number"] == "A001"
    # the same key on another command is that command's own
    r = await client.post("/api/windows/1/login", json={"staff": "1001"}, headers={"Idempotency-Key": "k1"})
    assert r.status == 200 and (await r.json())["staff"] == "1001"


async def test_health_warns_of_a_year_with_no_published_holidays(tmp_path, clock):
    from tests.helpers import small_config

    app = create_app(small_config(), tmp_path, clock=clock, bus=False)      # 23 November 2026
    async with TestClient(TestServer(app), headers=await bearer(small_config(), tmp_path)) as c:
        health = await (await c.get("/api/health")).json()
    assert [(w["code"], w["year"]) for w in health["warnings"]] == [("calendar_unpublished", 2027)]
    assert "2027年法定节假日尚未发布" in health["warnings"][0]["message"]


async def test_every_api_error_is_json_with_a_code_and_both_messages(client, monkeypatch):
    r = await client.get("/api/tickets/A001/cancel")                # a POST route
    assert r.status == 405 and r.headers["Allow"] == "POST"
    assert await r.json() == {"ok": False, "error": {
        "code": "method_not_allowed", "message": "不支持这种请求方法",
        "message_en": "GET is not allowed here; use POST"}}
    r = await client.post("/api/board")
    assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"
    r = await client.get("/api/no-such-thing")
    assert r.status == 404 and await r.json() == {"ok": False, "error": {
        "code": "not_found", "message": "没有这个接口", "message_en": "no such API path"}}
    r = await client.get("/api/devices")                            # this server has no bus
    assert r.status == 404 and (await r.json())["error"]["code"] == "no_bus"
    r = await client.get("/api/status/20991231-Z999")
    assert r.status == 404 and (await r.json())["error"] == {
        "code": "unknown_ticket", "message": "没有这张票", "message_en": "no such ticket"}
    r = await client.get("/api/status/20991231-Z999/stream")
    assert r.status == 404 and (await r.json())["error"]["message_en"] == "no such ticket"

    from controller.web.api import ENGINE

    async def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(client.server.app[ENGINE], "settled", broken)
    r = await client.get("/api/board")                              # a bug: logged, still JSON
    assert r.status == 500 and (await r.json())["error"]["code"] == "internal_error"
    r = await client.get("/no-such-page")                           # a page's 404 is the page that
    assert r.status == 404 and r.content_type == "text/html"        # says so (没有这个页面)
    assert "没有这个页面" in await r.text()


async def test_an_idempotency_key_reused_with_another_body_is_refused(client):
    headers = {"Idempotency-Key": "kiosk-2:43"}
    assert (await client.post("/api/tickets", json={"service": "A"}, headers=headers)).status == 201
    r = await client.post("/api/tickets", json={"service": "B"}, headers=headers)
    assert r.status == 422 and (await r.json())["error"]["code"] == "idempotency_key_reused"
    assert [t["number"] for t in (await (await client.get("/api/tickets")).json())["tickets"]] == ["A001"]

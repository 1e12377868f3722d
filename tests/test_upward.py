"""Upward delivery of the evaluation records (好差评上报) to a provincial platform: sent in order,
kept while the platform is unreachable or refuses, sent when it is back, never again once it
said it has them — not after a lost answer (the same message ids, the same batch key), not
after a restart."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller import upward
from controller.server import create_app
from tests.helpers import demo_config
from tests.test_followups_api import _rated
from tests.test_security_web import add_user, server, sign_in  # noqa: F401 - the fixture


class Platform:
    """A provincial platform: applies each message id once; can be told to fail."""

    def __init__(self) -> None:
        self.applied: dict[str, dict[str, Any]] = {}   # message id → message
        self.requests: list[tuple[str, list[str]]] = []  # (batch key, message ids)
        self.fail_next = 0                               # answer 500 (after applying) this often
        self.tokens: set[str] = set()

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        ids = [m["id"] for m in body["messages"]]
        self.requests.append((request.headers["Idempotency-Key"], ids))
        self.tokens.add(request.headers.get("Authorization", ""))
        for m in body["messages"]:
            self.applied.setdefault(m["id"], m)
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=500, text="the answer was lost")
        return web.json_response({"ok": True})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within time")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(upward, "RETRY_S", (0.05, 0.2))


async def test_records_wait_for_an_unreachable_platform_and_arrive_once_in_order(tmp_path, clock):
    port = free_port()
    config = demo_config()
    config = config.model_copy(update={"hall": config.hall.model_copy(
        update={"evaluations_url": f"http://127.0.0.1:{port}/ratings"})})
    (tmp_path / "province-token").write_text("s3cret-token\n")
    await add_user(tmp_path, "zhang", "supervisor")
    platform = Platform()
    site_runner: web.AppRunner | None = None
    async with TestClient(TestServer(create_app(config, tmp_path, clock=clock, bus=False))) as hall:
        sessions = [await _rated(hall, "1", "1001", level)
                    for level in ("satisfied", "very_dissatisfied", "basic")]
        await sign_in(hall, "zhang")

        async def owed() -> dict[str, Any]:
            return await (await hall.get("/api/reports/upward")).json()

        for _ in range(40):                              # tried, failed, said so
            state = await owed()
            if state["failing_since"]:
                break
            await asyncio.sleep(0.05)
        assert state["configured"] and state["pending"] == 3 and state["delivered"] == 0
        assert state["failing_since"] and state["last_error"]

        app = web.Application()
        app.router.add_post("/ratings", platform.receive)
        site_runner = web.AppRunner(app)
        await site_runner.setup()
        await web.TCPSite(site_runner, "127.0.0.1", port).start()
        platform.fail_next = 1                           # the first answer is lost
        await until(lambda: platform.fail_next == 0 and len(platform.applied) == 3
                    and len(platform.requests) >= 2)
        (key1, ids1), (key2, ids2) = platform.requests[:2]
        assert key1 == key2 and ids1 == ids2             # the same batch again, the same ids
        assert [m["session"] for m in platform.applied.values()] == sessions      # in order
        first = platform.applied[ids1[0]]
        assert first["kind"] == "rating" and first["records"][0]["satisfaction"] == "满意"
        assert first["records"][0]["rater"] == "匿名"
        assert platform.tokens == {"Bearer s3cret-token"}
        for _ in range(40):
            state = await owed()
            if state["delivered"] == 3:
                break
            await asyncio.sleep(0.05)
        assert state["pending"] == 0 and state["delivered"] == 3 and not state["failing_since"]
        sent = len(platform.requests)      # one batch (or more, had it been formed before all three)
    try:
        async with TestClient(TestServer(create_app(config, tmp_path, clock=clock, bus=False))) as hall:
            await asyncio.sleep(0.3)
            assert len(platform.requests) == sent        # a restart sends nothing again
            fourth = await _rated(hall, "2", "1002", "very_satisfied")
            await until(lambda: len(platform.requests) == sent + 1)
            assert [platform.applied[i]["session"] for i in platform.requests[sent][1]] == [fourth]
            await asyncio.sleep(0.2)
            assert len(platform.requests) == sent + 1
    finally:
        if site_runner is not None:
            await site_runner.cleanup()


async def test_without_an_endpoint_nothing_is_kept_for_the_platform(server):  # noqa: F811
    await _rated(server, "1", "1001", "satisfied")
    await sign_in(server)
    state = await (await server.get("/api/reports/upward")).json()
    assert state == {"ok": True, "configured": False, "pending": 0, "delivered": 0, "last_ok_at": None,
                     "failing_since": None, "last_error": ""}

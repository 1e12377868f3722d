"""Who may do what over HTTP: every route classified, sessions with CSRF and expiry, login
throttling, a clerk kept to their own windows, the audit log of what people did."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.auth.accounts import Accounts
from controller.auth.roles import PERSON_ROLES, ROLES
from controller.cli_auth import open_hall_db
from controller.server import create_app
from controller.web.access import PUBLIC, SIGNED_IN, permission_of, route_of
from protocol.credentials import basic_auth
from tests.helpers import bearer, demo_config

PASSWORD = "correct horse battery"
SAMPLE = {"window": "1", "op": "call", "number": "A001", "code": "YY1", "section": "services",
          "id": "A", "day": "2026-12-01", "name": "li", "token": "x" * 22, "kind": "acceptance_notice",
          "session": "s1", "period": "2026-10", "fmt": "pdf"}


async def add_user(tmp_path, name: str, *roles: str, staff: str | None = None) -> None:
    db = await open_hall_db(tmp_path, None)
    try:
        await Accounts(db, demo_config().hall.id).add_user(name, list(roles), PASSWORD, staff=staff)
    finally:
        await db.dispose()


async def device_passwords(tmp_path, *devices: str) -> dict[str, str]:
    """New credentials for ``devices``, as an administrator makes them."""
    from controller.bus import credentials

    db = await open_hall_db(tmp_path, None)
    try:
        return await credentials.provision(db, demo_config().hall.id, list(devices))
    finally:
        await db.dispose()


@pytest.fixture
async def server(tmp_path, clock):
    await add_user(tmp_path, "admin", "admin")
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app)) as c:
        yield c


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


async def sign_in(client: TestClient, user: str = "admin", password: str = PASSWORD) -> str:
    """Sign ``user`` in on ``client`` (its cookie jar keeps the session); the CSRF token."""
    r = await client.post("/api/auth/login", json={"user": user, "password": password},
                          headers=origin(client))
    assert r.status == 200, await r.text()
    return (await r.json())["csrf"]


def routes(app: web.Application) -> list[tuple[str, str, str]]:
    out = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        concrete = "/static/hall.css" if path == "/static" else \
            re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
        out.append((route.method, path, concrete))
    return out


async def test_every_route_is_public_or_declares_a_permission(server):
    undeclared = [(m, p) for m, p, _ in routes(server.app)
                  if permission_of(m, p, next(r.handler for r in server.app.router.routes()
                                               if r.method == m and r.resource and
                                               r.resource.canonical == p))
                  is None]
    assert undeclared == []
    assert {(m, p) for m, p, _ in routes(server.app)} >= PUBLIC   # the list names real routes only


async def test_without_credentials_401_and_with_a_role_that_may_not_403(server, tmp_path):
    checked = 0
    headers_for = {role: await bearer(demo_config(), tmp_path, role) for role in PERSON_ROLES}
    for method, path, concrete in routes(server.app):
        if (method, path) in PUBLIC:
            r = await server.request(method, concrete, headers=origin(server))
            assert r.status != 401, (method, path)
            continue
        r = await server.request(method, concrete, headers=origin(server), allow_redirects=False)
        route = next(x for x in server.app.router.routes()
                     if x.method == method and x.resource and x.resource.canonical == path)
        declared = route_of(route.handler)
        if method == "GET" and declared is not None and declared.media == "text/html":
            # a page: a person's browser is sent to sign in, and comes back here after
            assert r.status == 303 and r.headers["Location"] == f"/login?next={concrete}", (path, r.status)
        else:
            assert r.status == 401, (method, path, r.status)
            assert (await r.json())["error"]["code"] == "unauthenticated"
        needed = permission_of(method, path, route.handler)
        lacking = [role for role in PERSON_ROLES if needed != SIGNED_IN and needed not in ROLES[role][2]]
        if lacking:
            r = await server.request(method, concrete, headers={**origin(server), **headers_for[lacking[0]]})
            assert r.status == 403, (method, path, lacking[0], r.status)
            checked += 1
    assert checked >= 25


async def test_health_says_only_ok_to_strangers(server, tmp_path):
    anonymous = await (await server.get("/api/health")).json()
    assert anonymous == {"ok": True}
    viewer = await bearer(demo_config(), tmp_path, "viewer")
    staff = await (await server.get("/api/health", headers=viewer)).json()
    assert staff["ok"] and "stats" in staff and staff["hall"] == demo_config().hall.id


async def test_a_cross_origin_post_with_a_valid_session_is_refused(server):
    csrf = await sign_in(server)
    take = {"service": "A"}
    foreign = await server.post("/api/tickets", json=take, headers={"Origin": "http://evil.example",
                                                                   "X-CSRF-Token": csrf})
    assert foreign.status == 403 and (await foreign.json())["error"]["code"] == "bad_origin"
    no_token = await server.post("/api/tickets", json=take, headers=origin(server))
    assert no_token.status == 403 and (await no_token.json())["error"]["code"] == "bad_csrf"
    no_origin = await server.post("/api/tickets", json=take, headers={"X-CSRF-Token": csrf})
    assert no_origin.status == 403
    plain = await server.post("/api/tickets", data='{"service": "A"}',
                              headers={**origin(server), "X-CSRF-Token": csrf, "Content-Type": "text/plain"})
    assert plain.status == 415
    assert (await (await server.get("/api/tickets")).json())["tickets"] == []       # nothing was taken
    ok = await server.post("/api/tickets", json=take, headers={**origin(server), "X-CSRF-Token": csrf})
    assert ok.status == 201


async def test_a_foreign_host_name_is_refused(server):
    r = await server.get("/api/board", headers={"Host": "rebind.evil.example"})
    assert r.status == 421
    assert (await server.get("/api/board", headers={"Host": "localhost:8080"})).status == 200


async def test_pages_carry_security_headers(server):
    r = await server.get("/kiosk")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


async def test_the_session_cookie_is_httponly_and_strict(server):
    r = await server.post("/api/auth/login", json={"user": "admin", "password": PASSWORD},
                          headers=origin(server))
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "yimen_session=" in cookie


async def test_a_thousand_wrong_passwords_get_a_handful_of_tries(server, clock):
    async def attempt(i: int) -> int:
        r = await server.post("/api/auth/login", json={"user": "admin", "password": f"guess-{i:04d}-x"},
                              headers=origin(server))
        return r.status
    statuses = await asyncio.gather(*(attempt(i) for i in range(1000)))
    tried = statuses.count(401)
    assert statuses.count(429) == 1000 - tried
    assert tried == 6, tried              # five free, the sixth starts the wait: docs/security.md
    throttled = await server.post("/api/auth/login", json={"user": "admin", "password": PASSWORD},
                                  headers=origin(server))
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) >= 1
    clock.advance(seconds=2)                                  # after the wait, the right one works
    assert (await server.post("/api/auth/login", json={"user": "admin", "password": PASSWORD},
                              headers=origin(server))).status == 200


async def test_sessions_end_when_idle_when_too_old_and_at_logout(server, clock):
    await sign_in(server)
    assert (await server.get("/api/users")).status == 200
    clock.advance(minutes=29)
    assert (await server.get("/api/users")).status == 200
    clock.advance(minutes=31)                                 # idle for more than 30 minutes
    assert (await server.get("/api/users")).status == 401
    await sign_in(server)
    for _ in range(25):                                       # busy all day: 12 hours at most
        clock.advance(minutes=29)
        await server.get("/api/users")
    assert (await server.get("/api/users")).status == 401
    csrf = await sign_in(server)
    out = await server.post("/api/auth/logout", headers={**origin(server), "X-CSRF-Token": csrf})
    assert out.status == 200
    assert (await server.get("/api/users")).status == 401


async def test_a_new_password_ends_the_other_sessions(server, tmp_path):
    other = TestClient(server.server)                          # the same person in a second browser
    await other.start_server()
    try:
        await sign_in(other)
        csrf = await sign_in(server)
        r = await server.post("/api/auth/password", json={"old": PASSWORD, "new": "another good phrase"},
                              headers={**origin(server), "X-CSRF-Token": csrf})
        assert r.status == 200
        await asyncio.sleep(0)
        assert (await server.get("/api/users")).status == 200     # the one that changed it stays
        assert (await other.get("/api/users")).status == 401
    finally:
        await other.close()


async def test_a_clerk_works_only_at_their_own_windows(server, tmp_path):
    await add_user(tmp_path, "wangfang", "clerk", staff="1001")
    csrf = await sign_in(server, "wangfang")
    h = {**origin(server), "X-CSRF-Token": csrf}
    as_other = await server.post("/api/windows/1/login", json={"staff": "1002"}, headers=h)
    assert as_other.status == 403
    elsewhere = await server.post("/api/windows/5/login", json={"staff": "1001"}, headers=h)
    assert elsewhere.status == 403
    own = await server.post("/api/windows/1/login", json={"staff": "1001"}, headers=h)
    assert own.status == 200, await own.text()
    assert (await server.get("/api/users")).status == 403


async def test_people_and_tokens_are_managed_and_every_change_is_audited(server):
    csrf = await sign_in(server)
    h = {**origin(server), "X-CSRF-Token": csrf}
    r = await server.post("/api/users", json={"name": "li", "password": PASSWORD, "roles": ["desk"]},
                          headers=h)
    assert r.status == 201
    weak = await server.post("/api/users", json={"name": "zhao", "password": "short", "roles": ["desk"]},
                             headers=h)
    assert weak.status == 409 and (await weak.json())["error"]["code"] == "weak_password"
    r = await server.patch("/api/users/li", json={"roles": ["desk", "viewer"]}, headers=h)
    assert (await r.json())["user"]["roles"] == ["desk", "viewer"]
    r = await server.post("/api/tokens", json={"name": "统计平台", "roles": ["viewer"]}, headers=h)
    made = await r.json()
    token = {"Authorization": f"Bearer {made['token']}"}
    assert (await server.get("/api/tickets", headers=token)).status == 200
    assert (await server.delete(f"/api/tokens/{made['id']}", headers=h)).status == 200
    await asyncio.sleep(0)
    assert (await server.get("/api/tickets", headers=token)).status == 401
    entries = (await (await server.get("/api/audit")).json())["entries"]
    actions = [e["action"] for e in reversed(entries)]
    assert actions == ["login", "user_added", "user_changed", "token_added", "token_revoked"]
    changed = next(e for e in entries if e["action"] == "user_changed")
    assert changed["actor"] == "user:admin" and changed["detail"]["before"]["roles"] == ["desk"]
    assert PASSWORD not in str(entries)


async def test_a_configuration_change_is_audited_with_who_before_and_after(server):
    csrf = await sign_in(server)
    h = {**origin(server), "X-CSRF-Token": csrf}
    before = (await (await server.get("/api/config/services/A")).json())["item"]["name"]
    r = await server.patch("/api/config/services/A", json={"name": "综合受理"}, headers=h)
    assert r.status == 200
    entry = (await (await server.get("/api/audit?action=config_change")).json())["entries"][0]
    assert entry["actor"] == "user:admin" and entry["target"] == "/api/config/services/A"
    assert entry["detail"]["reply"]["before"] == {"name": before}
    assert entry["detail"]["reply"]["changes"] == {"name": "综合受理"}
    refused = await server.patch("/api/config/services/A", json={"name": ""}, headers=h)
    assert refused.status == 422                              # refused changes change nothing ...
    entries = (await (await server.get("/api/audit?action=config_change")).json())["entries"]
    assert len(entries) == 1                                  # ... and are not written as done


async def test_a_kiosk_box_is_known_by_its_own_device_credential(server, tmp_path):
    passwords = await device_passwords(tmp_path, "kiosk-1", "hall-screen-1")

    def basic(device: str, password: str) -> dict[str, str]:
        return {"Authorization": basic_auth(device, password)}
    kiosk = basic("kiosk-1", passwords["kiosk-1"])
    assert (await server.get("/api/kiosk/services", headers=kiosk)).status == 200
    assert (await server.post("/api/tickets", json={"service": "A"}, headers=kiosk)).status == 201
    assert (await server.get("/api/users", headers=kiosk)).status == 403
    screen = basic("hall-screen-1", passwords["hall-screen-1"])
    assert (await server.post("/api/tickets", json={"service": "A"}, headers=screen)).status == 403
    wrong = basic("kiosk-1", passwords["hall-screen-1"])
    assert (await server.get("/api/kiosk/services", headers=wrong)).status == 401
    admin = await bearer(demo_config(), tmp_path, "admin")
    r = await server.patch("/api/config/devices/kiosk-1", json={"enabled": False}, headers=admin)
    assert r.status == 200
    assert (await server.post("/api/tickets", json={"service": "A"}, headers=kiosk)).status == 401


async def test_a_disabled_screens_open_stream_ends(server, tmp_path, monkeypatch):
    from controller.web import feed

    monkeypatch.setattr(feed, "KEEPALIVE_S", 0.2)
    password = (await device_passwords(tmp_path, "hall-screen-1"))["hall-screen-1"]
    screen = {"Authorization": basic_auth("hall-screen-1", password)}
    async with server.get("/api/stream", headers=screen) as stream:
        assert stream.status == 200
        assert (await stream.content.readline()).startswith(b"event: board")
        r = await server.patch("/api/config/devices/hall-screen-1", json={"enabled": False},
                               headers=await bearer(demo_config(), tmp_path, "admin"))
        assert r.status == 200
        await asyncio.sleep(0.1)
        feed_ended = await asyncio.wait_for(stream.content.read(), 8)   # to the end of the stream
    assert b"event: call" not in feed_ended


async def test_a_change_whose_client_hangs_up_is_finished_and_audited(tmp_path, clock, monkeypatch):
    from controller.auth.accounts import Accounts

    token = await bearer(demo_config(), tmp_path, "admin")
    release = asyncio.Event()
    made = Accounts.add_token

    async def slow_add_token(self, name, roles):  # noqa: ANN001, ANN202
        await release.wait()
        return await made(self, name, roles)
    monkeypatch.setattr(Accounts, "add_token", slow_add_token)
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app, handler_cancellation=True)) as c:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.post("/api/tokens", json={"name": "gone", "roles": ["viewer"]},
                                          headers=token), 0.3)       # the client hangs up
        release.set()

        async def audited() -> bool:
            entries = (await (await c.get("/api/audit", headers=token)).json())["entries"]
            return any(e["action"] == "token_added" for e in entries)
        for _ in range(50):
            if await audited():
                break
            await asyncio.sleep(0.05)
        assert await audited()


async def test_a_clerks_account_names_one_real_clerk_and_only_one(server):
    csrf = await sign_in(server)
    h = {**origin(server), "X-CSRF-Token": csrf}

    async def add(name: str, staff: str) -> tuple[int, dict]:
        r = await server.post("/api/users", headers=h, json={"name": name, "password": PASSWORD,
                                                             "roles": ["clerk"], "staff": staff})
        return r.status, await r.json()
    assert (await add("wangfang", "1001"))[0] == 201
    status, body = await add("impostor", "1001")
    assert status == 409 and body["error"]["code"] == "staff_taken"
    status, body = await add("nobody", "9999")
    assert status == 404 and body["error"]["code"] == "unknown_staff"

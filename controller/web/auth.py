"""The security middleware and the sign-in routes.

Each request: its ``Host`` must be this hall's (an IP address, ``localhost``, this machine's
name or the status address's host — a DNS-rebinding page cannot pass), then its principal is
found (a ``Bearer`` token for programs, HTTP ``Basic`` with a kiosk box's or screen
program's own device credential, else the session cookie of a person or an enrolled
screen), then the route's declared permission is checked: 401 without credentials, 403 with
a role that may not. A state-changing request must come from this hall's own ``Origin``; on
a session it must also carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from typing import cast
from urllib.parse import quote, urlsplit

from aiohttp import web
from pydantic import Field

from controller.auth.accounts import CACHE_S, Session, User
from controller.auth.cache import MISSING, TtlCache
from controller.auth.roles import DEVICE_ROLES, Principal
from controller.auth.secrets import digest, same
from controller.auth.throttle import Throttle
from controller.bus import credentials
from controller.config import DEVICE_ID
from controller.core.errors import Refused
from controller.web.access import (
    ACCOUNTS,
    AUDIT,
    PRINCIPAL,
    PUBLIC_ROUTE,
    SESSION,
    SIGNED_IN,
    address,
    guarded,
    permission_of,
    principal,
    route_of,
)
from controller.web.api import ENGINE, Body, error_response, json_response, parsed
from controller.web.notfound import forbidden_page

THROTTLE: web.AppKey[dict[str, Throttle]] = web.AppKey("throttle", dict)
#: Kiosk boxes' and screen programs' checked credentials: digest of the header → device or None.
DEVICE_LOGINS: web.AppKey[TtlCache[str | None]] = web.AppKey("device_logins", TtlCache)
COOKIE = "yimen_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: Failures before throttling starts: per account from one address, per address, and per
#: account from everywhere (looser: one stranger alone cannot lock a clerk out for long).
FREE_PER_ACCOUNT, FREE_PER_ADDRESS, FREE_PER_ACCOUNT_ANYWHERE = 5, 20, 50
_LOCAL_NAMES = {"localhost", socket.gethostname().lower(), f"{socket.gethostname().lower()}.local"}


def _host_ok(request: web.Request) -> bool:
    try:
        host = (urlsplit(f"//{request.host}").hostname or "").lower()
    except ValueError:                          # "[x": not a host at all
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    status_url = request.app[ENGINE].config.hall.status_url
    return bool(status_url) and host == (urlsplit(status_url).hostname or "").lower()


def _origin_ok(request: web.Request) -> bool:
    """No ``Origin`` (a program), or this hall's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        return urlsplit(origin).netloc.lower() == request.host.lower()
    except ValueError:
        return False


def _page_device(request: web.Request, device_id: str) -> Principal | None:
    """An enabled kiosk or screen of the live configuration, as a principal."""
    device = next((d for d in request.app[ENGINE].config.devices if d.id == device_id), None)
    if device is None or not device.enabled or device.kind not in DEVICE_ROLES:
        return None
    return Principal("device", device_id, (DEVICE_ROLES[device.kind],))


async def _from_basic(request: web.Request, header: str) -> Principal | None:
    """A kiosk box or screen program, by its device's own MQTT credential (HTTP Basic): the
    check (PBKDF2) is remembered for ``CACHE_S`` seconds."""
    cache = request.app[DEVICE_LOGINS]
    key = digest(header)
    device_id = cache.get(key)
    if device_id is MISSING:
        try:
            pair = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        name, _, password = pair.partition(":")
        stored = None
        if DEVICE_ID.fullmatch(name):
            stored = await credentials.stored_hash(request.app[ENGINE].db,
                                                   request.app[ENGINE].config.hall.id, name)
        ok = stored is not None and await asyncio.to_thread(credentials.matches, stored, password)
        device_id = name if ok else None
        cache.put(key, device_id)
    return _page_device(request, cast(str, device_id)) if device_id is not None else None


async def _from_session(request: web.Request, session: Session) -> Principal | None:
    if session.user.startswith("device:"):
        return _page_device(request, session.user.removeprefix("device:"))
    user = await request.app[ACCOUNTS].user(session.user)
    if user is None or user.disabled:
        return None
    return Principal("user", user.name, user.roles, user.staff)


async def _credentials(request: web.Request) -> tuple[Principal | None, Session | None]:
    """Who the request's credentials name (and its session, if by cookie); a token or device
    credential that is not valid is refused outright."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        who = await request.app[ACCOUNTS].token(header[7:].strip())
        if who is None:
            raise Refused("unauthenticated", "令牌无效或已撤销", "the API token is not valid")
        return who, None
    if header.lower().startswith("basic "):
        who = await _from_basic(request, header)
        if who is None:
            raise Refused("unauthenticated", "设备凭据无效或设备已停用",
                          "not a valid credential of an enabled kiosk or screen")
        return who, None
    cookie = request.cookies.get(COOKIE)
    session = await request.app[ACCOUNTS].session(cookie) if cookie is not None else None
    return (await _from_session(request, session) if session is not None else None), session


async def still_allowed(request: web.Request, permission: str) -> bool:
    """Whether the request's credentials still may ``permission`` (a long push stream asks
    now and then: a disabled screen, a signed-out person or a revoked token is let go)."""
    try:
        who, _ = await _credentials(request)
    except Refused:
        return False
    return who is not None and who.may(permission)


def _is_page(handler: object) -> bool:
    route = route_of(handler)
    return route is not None and route.media == "text/html"


@web.middleware
async def security(request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
    if not _host_ok(request):
        raise Refused("bad_host", "主机名不属于本厅", f"Host {request.host[:80]!r} is not this hall's")
    match = request.match_info
    if match.http_exception is not None:          # no such route or method: 404/405 as before
        return await handler(request)
    resource = match.route.resource
    path = resource.canonical if resource is not None else request.path
    needed = permission_of(request.method, path, match.handler)
    changing = request.method not in SAFE_METHODS
    if changing and not _origin_ok(request):
        raise Refused("bad_origin", "请求来源不属于本厅", "the request's Origin is not this hall")
    who, session = await _credentials(request)
    if session is not None:
        if who is not None and changing and needed != PUBLIC_ROUTE:
            if "Origin" not in request.headers:     # (a foreign one is refused above)
                raise Refused("bad_origin", "请求来源不属于本厅",
                              "a signed-in change needs this hall's Origin")
            if not same(request.headers.get("X-CSRF-Token", ""), session.csrf):
                raise Refused("bad_csrf", "页面已过期，请刷新后重试", "missing or wrong X-CSRF-Token")
        request[SESSION] = session
    if who is not None:
        request[PRINCIPAL] = who
    if needed == PUBLIC_ROUTE:
        return await handler(request)
    page = request.method == "GET" and _is_page(match.handler)
    if who is None:
        if page:                                    # a person's browser: the sign-in page
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
        raise Refused("unauthenticated", "请先登录", "sign in (or send an API token) first")
    if needed is None or (needed != SIGNED_IN and not who.may(needed)):
        if page:
            return forbidden_page()
        raise Refused("forbidden", "没有权限", f"{who.actor} may not do this")
    if changing:       # a change, once begun, is finished and audited even if the client hangs up
        return await asyncio.shield(handler(request))
    return await handler(request)


class SignIn(Body):
    user: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(Body):
    old: str = Field(min_length=1, max_length=256)
    new: str = Field(min_length=1, max_length=256)


class Enrol(Body):
    device: str = Field(min_length=1, max_length=64)


def _principal_view(who: Principal, display_name: str | None = None) -> dict[str, object]:
    return {"kind": who.kind, "name": who.name, "display_name": display_name or who.name,
            "roles": list(who.roles), "staff": who.staff}


def _set_cookie(response: web.Response, request: web.Request, cookie: str, max_age: int) -> None:
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", path="/", max_age=max_age,
                        secure=request.secure)


def _throttled(seconds: float) -> web.Response:
    wait = int(seconds) + 1
    return error_response(429, "throttled", f"尝试次数过多，请 {wait} 秒后再试",
                          f"too many attempts: try again in {wait} s", {"Retry-After": str(wait)})


async def _check_password(request: web.Request, name: str, password: str) -> User | float | None:
    """The account if ``password`` is right; the seconds to wait if throttled (the password
    is then not looked at); None if wrong. Throttled per account from this address, per
    account from everywhere (looser) and per address."""
    throttles, now = request.app[THROTTLE], request.app[ENGINE].clock.now().timestamp()
    keys = (("account", f"user:{name}@{address(request)}"), ("account_anywhere", f"user:{name}"),
            ("address", f"addr:{address(request)}"))
    wait = max(throttles[kind].wait_s(key, now) for kind, key in keys)
    if wait > 0:                               # not tried: nothing hashed
        return wait
    for kind, key in keys:
        throttles[kind].attempt(key, now)
    user = await request.app[ACCOUNTS].check(name, password)
    if user is not None:
        for kind, key in keys:
            throttles[kind].succeeded(key, forget=kind != "address")
    return user


async def login(request: web.Request) -> web.Response:
    """``{"user", "password"}`` → a session cookie and the CSRF token; 429 while throttled."""
    given: SignIn = await parsed(request)
    user = await _check_password(request, given.user, given.password)
    if isinstance(user, float):
        return _throttled(user)
    audit, accounts = request.app[AUDIT], request.app[ACCOUNTS]
    if user is None:
        await audit.record(f"user:{given.user}", address(request), "login_failed")
        raise Refused("bad_login", "用户名或密码错误", "wrong user name or password")
    old = request.cookies.get(COOKIE)
    if old:
        await accounts.end_session(old)
    cookie, session = await accounts.open_session(user.name, address(request))
    await audit.record(f"user:{user.name}", address(request), "login")
    who = Principal("user", user.name, user.roles, user.staff)
    response = json_response({"ok": True, "principal": _principal_view(who, user.display_name),
                              "csrf": session.csrf})
    _set_cookie(response, request, cookie, int(accounts.expiry.absolute.total_seconds()))
    return response


async def logout(request: web.Request) -> web.Response:
    who = principal(request)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        await request.app[ACCOUNTS].end_session(cookie)
    if who is not None:
        await request.app[AUDIT].record(who.actor, address(request), "logout")
    response = json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def whoami(request: web.Request) -> web.Response:
    who, session = principal(request), request.get(SESSION)
    if who is None:
        raise Refused("unauthenticated", "请先登录", "not signed in")
    user = await request.app[ACCOUNTS].user(who.name) if who.kind == "user" else None
    shown = user.display_name if user is not None else None
    return json_response({"ok": True, "principal": _principal_view(who, shown),
                          "csrf": session.csrf if session is not None else None})


async def change_own_password(request: web.Request) -> web.Response:
    """``{"old", "new"}``: the signed-in person's own password; their other sessions end."""
    who = principal(request)
    if who is None or who.kind != "user":
        raise Refused("forbidden", "只有人员账号可以修改密码", "only a person's account has a password")
    given: PasswordChange = await parsed(request)
    old, new = given.old, given.new
    accounts = request.app[ACCOUNTS]
    checked = await _check_password(request, who.name, old)
    if isinstance(checked, float):
        return _throttled(checked)
    if checked is None:
        await request.app[AUDIT].record(who.actor, address(request), "password_change_failed")
        raise Refused("bad_login", "原密码错误", "the old password is wrong")
    await accounts.set_password(who.name, new, keep_session=request.cookies.get(COOKIE))
    await request.app[AUDIT].record(who.actor, address(request), "password_changed", f"user:{who.name}")
    return json_response({"ok": True})


async def enrol(request: web.Request) -> web.Response:
    """``{"device"}``: this browser becomes the page device (a kiosk or a screen); the
    administrator's own session on it ends."""
    who = cast(Principal, principal(request))        # the route needs users.manage
    device_id = (await parsed(request)).device
    device = next((d for d in request.app[ENGINE].config.devices if d.id == device_id), None)
    if device is None:
        raise Refused("unknown_config_item", f"没有设备 {str(device_id)[:40]}", "no such device")
    if device.kind not in DEVICE_ROLES or not device.enabled:
        raise Refused("not_a_page_device", "只有启用的取号机、窗口屏、综合屏和评价器可以登记",
                      "only an enabled kiosk, window display, hall display or evaluator can be enrolled")
    accounts = request.app[ACCOUNTS]
    old = request.cookies.get(COOKIE)
    if old:
        await accounts.end_session(old)
    cookie, session = await accounts.open_session(f"device:{device.id}", address(request))
    await request.app[AUDIT].record(who.actor, address(request), "screen_enrolled", f"device:{device.id}")
    pages = {"kiosk": "/kiosk", "terminal": "/kiosk", "hall_display": "/screen", "evaluator": "/evaluator"}
    page = pages.get(device.kind, f"/window/{device.window}")
    device_principal = Principal("device", device.id, (DEVICE_ROLES[device.kind],))
    response = json_response({"ok": True, "principal": _principal_view(device_principal),
                              "csrf": session.csrf, "page": page})
    _set_cookie(response, request, cookie, int(accounts.expiry.device.total_seconds()))
    return response


def add_auth_routes(app: web.Application) -> None:
    app.middlewares.append(security)
    app[THROTTLE] = {"account": Throttle(FREE_PER_ACCOUNT), "address": Throttle(FREE_PER_ADDRESS),
                     "account_anywhere": Throttle(FREE_PER_ACCOUNT_ANYWHERE)}
    app[DEVICE_LOGINS] = TtlCache(CACHE_S)
    r = app.router
    r.add_post("/api/auth/login", guarded(PUBLIC_ROUTE, login, body=SignIn, errors=(401, 429),
                                          summary="登录 / sign in: a session cookie and its CSRF token"))
    r.add_get("/api/auth/session", guarded(SIGNED_IN, whoami, summary="当前身份 / who is signed in"))
    r.add_post("/api/auth/logout", guarded(SIGNED_IN, logout, summary="退出 / sign out"))
    r.add_post("/api/auth/password", guarded(
        SIGNED_IN, change_own_password, body=PasswordChange, errors=(401, 409),
        summary="修改本人密码 / change one's password"))
    r.add_post("/api/auth/enrol", guarded("users.manage", enrol, body=Enrol, errors=(404, 409),
                                          summary="登记本屏 / enrol this browser as a page device"))

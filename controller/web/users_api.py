"""People, API tokens and the audit log (用户、令牌、审计), for administrators.

``/api/users`` (list, add), ``/api/users/{name}`` (read, change roles, display name, clerk
link, keypad PIN, disable), ``/api/users/{name}/password`` (an administrator sets a new one;
the person's sessions end), ``/api/tokens`` (list, add: the token's text is shown once),
``/api/tokens/{id}`` (revoke), ``/api/audit`` (filter by person, kind, time). Every change
is written to the audit log, with the password or PIN masked. Each body's model is named in
its route's declaration, which the handler reads it from (``parsed``).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from controller.auth.accounts import AccountError
from controller.core.errors import Refused
from controller.web.access import ACCOUNTS, AUDIT, audited, declared, guarded
from controller.web.api import ENGINE, Body, json_response, parsed, query


class NewUser(Body):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    roles: list[str] = Field(min_length=1)
    display_name: str | None = Field(default=None, max_length=64)
    staff: str | None = Field(default=None, max_length=16)


class UserChange(Body):
    roles: list[str] | None = None
    display_name: str | None = Field(default=None, max_length=64)
    disabled: bool | None = None
    staff: str | None = Field(default=None, max_length=16)
    pin: str | None = Field(default=None, max_length=8)


class NewPassword(Body):
    password: str = Field(min_length=1, max_length=256)


class NewToken(Body):
    name: str = Field(min_length=1, max_length=64)
    roles: list[str] = Field(min_length=1)


class AuditQuery(BaseModel):
    """``GET /api/audit``'s filters; ``limit`` is kept within 1…1000."""

    model_config = ConfigDict(frozen=True)
    actor: str | None = Field(default=None, max_length=80)
    action: str | None = Field(default=None, max_length=80)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    before: int | None = Field(default=None, ge=0, le=2**63 - 1)
    limit: int = 200


def _refused(exc: AccountError) -> Refused:
    return Refused(exc.code, exc.message, str(exc))


async def list_users(request: web.Request) -> web.Response:
    users = await request.app[ACCOUNTS].list_users()
    return json_response({"ok": True, "users": [u.public() for u in users]})


def _known_clerk(request: web.Request, staff: str | None) -> None:
    """A clerk's account names one of the hall's clerks (工号)."""
    if staff and staff not in {c.id for c in request.app[ENGINE].config.clerks}:
        raise Refused("unknown_staff", f"没有工号 {staff[:16]}", f"the hall has no clerk {staff[:16]!r}")


async def add_user(request: web.Request) -> web.Response:
    new = await parsed(request)
    _known_clerk(request, new.staff)
    try:
        user = await request.app[ACCOUNTS].add_user(new.name, new.roles, new.password, new.display_name,
                                                     new.staff)
    except AccountError as exc:
        raise _refused(exc) from None
    await audited(request, "user_added", f"user:{user.name}", {"after": user.public()})
    return json_response({"ok": True, "user": user.public()}, declared(request).status)


async def get_user(request: web.Request) -> web.Response:
    user = await request.app[ACCOUNTS].user(request.match_info["name"])
    if user is None:
        raise Refused("unknown_user", "没有这个用户", "no such user")
    return json_response({"ok": True, "user": user.public()})


async def change_user(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    change = await parsed(request)
    given = change.model_dump(exclude_unset=True)
    _known_clerk(request, given.get("staff"))
    accounts = request.app[ACCOUNTS]
    before = await accounts.user(name)
    try:
        user = await accounts.change_user(name, given)
    except AccountError as exc:
        raise _refused(exc) from None
    await audited(request, "user_changed", f"user:{name}",
                  {"before": before.public() if before else None, "after": user.public(),
                   "changes": given})
    return json_response({"ok": True, "user": user.public()})


async def set_password(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    new = await parsed(request)
    try:
        await request.app[ACCOUNTS].set_password(name, new.password)
    except AccountError as exc:
        raise _refused(exc) from None
    await audited(request, "password_set", f"user:{name}")
    return json_response({"ok": True})


async def list_tokens(request: web.Request) -> web.Response:
    return json_response({"ok": True, "tokens": await request.app[ACCOUNTS].list_tokens()})


async def add_token(request: web.Request) -> web.Response:
    new = await parsed(request)
    try:
        token_id, text = await request.app[ACCOUNTS].add_token(new.name, new.roles)
    except AccountError as exc:
        raise _refused(exc) from None
    await audited(request, "token_added", f"token:{token_id}", {"name": new.name, "roles": new.roles})
    return json_response({"ok": True, "id": token_id, "token": text}, declared(request).status)


async def revoke_token(request: web.Request) -> web.Response:
    token_id = request.match_info["id"]
    try:
        await request.app[ACCOUNTS].revoke_token(token_id)
    except AccountError as exc:
        raise _refused(exc) from None
    await audited(request, "token_revoked", f"token:{token_id}")
    return json_response({"ok": True})


async def list_audit(request: web.Request) -> web.Response:
    """Newest first: ``?actor=user:li&action=login_failed&since=…&until=…&before=SEQ&limit=N``."""
    q = query(request)
    entries = await request.app[AUDIT].entries(q.actor, q.action, q.since, q.until,
                                               min(1000, max(1, q.limit)), q.before)
    return json_response({"ok": True, "entries": [e.public() for e in entries]})


def add_users_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/users", guarded("users.manage", list_users, summary="用户列表 / the people"))
    r.add_post("/api/users", guarded(
        "users.manage", add_user, body=NewUser, status=201, errors=(404, 409),
        summary="新增用户 / add a person"))
    r.add_get("/api/users/{name}", guarded(
        "users.manage", get_user, errors=(404,), summary="用户 / one person"))
    r.add_patch("/api/users/{name}", guarded(
        "users.manage", change_user, body=UserChange, errors=(404, 409),
        summary="修改用户 / change a person (停用: disabled true)"))
    r.add_post("/api/users/{name}/password", guarded(
        "users.manage", set_password, body=NewPassword, errors=(404, 409),
        summary="重设密码 / set a new password"))
    r.add_get("/api/tokens", guarded("users.manage", list_tokens, summary="API 令牌 / the API tokens"))
    r.add_post("/api/tokens", guarded(
        "users.manage", add_token, body=NewToken, status=201, errors=(409,),
        summary="新增令牌 / add an API token (its text shown once)"))
    r.add_delete("/api/tokens/{id}", guarded(
        "users.manage", revoke_token, errors=(404,), summary="撤销令牌 / revoke an API token"))
    r.add_get("/api/audit", guarded(
        "audit.read", list_audit, query=AuditQuery, summary="审计日志 / the audit log"))

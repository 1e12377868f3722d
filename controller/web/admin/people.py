"""The admin application's pages of people: users and their roles, API tokens, and the audit
log filtered by person, kind and time. Their forms send JSON to ``/api/users`` and
``/api/tokens`` (``controller.web.users_api``), which validate and audit the change."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from controller.auth.roles import PERSON_ROLES, ROLES
from controller.web.access import ACCOUNTS, AUDIT, guarded
from controller.web.admin.render import render
from controller.web.api import ENGINE

PAGE = 100



def _roles() -> list[tuple[str, str, str]]:
    return [(r, ROLES[r][0], ROLES[r][1]) for r in PERSON_ROLES]


async def users_page(request: web.Request) -> web.Response:
    clerks = request.app[ENGINE].config.clerks
    return render("users.html", request, {
        "users": await request.app[ACCOUNTS].list_users(), "roles": _roles(), "role_names": ROLES,
        "clerks": [(c.id, c.name) for c in clerks],
    })


async def tokens_page(request: web.Request) -> web.Response:
    tz = request.app[ENGINE].config.hall.tz
    tokens = [{**k, "created_at": f"{datetime.fromisoformat(k['created_at']).astimezone(tz):%Y-%m-%d %H:%M}"}
              for k in await request.app[ACCOUNTS].list_tokens()]
    return render("tokens.html", request, {"tokens": tokens, "roles": _roles(), "role_names": ROLES})


def _day(text: str | None) -> datetime | None:
    """A filter's day (``YYYY-MM-DD``) as the start of that day in the hall's zone, or None."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


async def audit_page(request: web.Request) -> web.Response:
    """Newest first, ``PAGE`` at a time; filters: person (``user:li``), kind, from and to (days
    in the hall's time zone, the second one included)."""
    q = request.query
    tz = request.app[ENGINE].config.hall.tz
    since, until = _day(q.get("since")), _day(q.get("until"))
    actor = (q.get("actor") or "").strip()
    if actor and ":" not in actor:            # a person's user name: their actor name
        actor = f"user:{actor}"
    before = int(q["before"]) if q.get("before", "").isdigit() else None
    entries = await request.app[AUDIT].entries(
        actor or None, q.get("action") or None,
        since.replace(tzinfo=tz) if since else None,
        (until.replace(tzinfo=tz) + timedelta(days=1)) if until else None, PAGE, before)
    bad = [k for k in ("since", "until") if q.get(k) and _day(q.get(k)) is None]
    return render("audit.html", request, {
        "entries": entries, "q": {k: q.get(k, "") for k in ("actor", "action", "since", "until")},
        "bad": bad, "tz": tz, "more": entries[-1].seq if len(entries) == PAGE else None,
    })


def add_routes(app: web.Application) -> None:
    r = app.router
    html = {"media": "text/html"}
    r.add_get("/admin/users", guarded("users.manage", users_page, summary="用户 / people", **html))
    r.add_get("/admin/tokens", guarded("users.manage", tokens_page, summary="接口令牌 / API tokens", **html))
    r.add_get("/admin/audit", guarded("audit.read", audit_page, summary="审计日志 / the audit log", **html))

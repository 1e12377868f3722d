"""Which routes are public and what every other route needs: one place for both.

A route declares its permission where it is added, one line each:
``guarded("config.write", handler)``; the few public routes are listed in ``PUBLIC`` below and
nowhere else (their declarations say ``"public"``, and a test checks that the two agree). A
route in neither is refused to everyone (it fails closed). The security middleware
(``controller.web.auth``) reads these declarations; a test walks the router.

The same declaration (``Route``) says what the API document (``controller.web.openapi``)
shows: the body and query models, which the handler reads from it (``declared``) and
validates with — so the document is the validation, never a copy of it — the success status
and the errors the route answers besides the door's own.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from controller.auth.accounts import Accounts, Session
from controller.auth.audit import Audit
from controller.auth.roles import PERMISSIONS, Principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The public routes (method, path pattern) — nothing else answers without credentials.
PUBLIC: frozenset[tuple[str, str]] = frozenset({
    # the ticket status page opened from a ticket's QR code; its id is an unguessable token
    ("GET", "/t/{id}"), ("GET", "/t/{id}/qr.svg"), ("GET", "/api/status/{id}"),
    ("GET", "/api/status/{id}/stream"),
    ("GET", "/api/board"),                         # the hall screen's public board
    # a case's status page from its notice's QR code (an unguessable token), and the terminal's
    # or a phone's query by case number and the query code printed on the notice (throttled)
    ("GET", "/c/{token}"), ("GET", "/case"), ("GET", "/api/case-status/{token}"),
    ("POST", "/api/case-status"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/health"),                        # ok or not; the details need hall.read
    ("POST", "/api/auth/login"),
    # page shells: files without data, whose data routes are guarded
    ("GET", "/"), ("GET", "/login"), ("GET", "/kiosk"), ("GET", "/screen"), ("GET", "/window/{window}"),
    ("GET", "/caller"), ("GET", "/evaluator"),
    ("GET", "/static"),                            # the pages' scripts and styles (a folder)
    ("GET", "/admin/static"),                      # the admin application's script and style
    ("GET", "/vendor/{name}"),                     # htmx, ECharts (libraries, no data)
    ("GET", "/favicon.ico"),                       # the pages' icon
})
#: Routes any signed-in principal may use (its own session).
SIGNED_IN = "signed_in"
#: What a public route declares (it is public only if ``PUBLIC`` lists it).
PUBLIC_ROUTE = "public"

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts", Accounts)
AUDIT: web.AppKey[Audit] = web.AppKey("audit", Audit)


def address(request: web.Request) -> str:
    """The address a request came from, as the audit log writes it."""
    return (request.remote or "?")[:64]


@dataclass(frozen=True, slots=True)
class Route:
    """A route's declaration. ``body``: the model of its JSON body — or, for a route whose
    path parameter ``by`` names the operation (``/api/windows/{window}/{op}``), one model per
    value; ``partial``: a change, any of the model's keys; ``path``: the model whose fields
    its path parameters are (default: the body's); ``query``: its query parameters' model."""

    permission: str
    summary: str = ""
    body: type[BaseModel] | Mapping[str, type[BaseModel]] | None = None
    by: str | None = None
    partial: bool = False
    path: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    #: the refusals it answers besides the door's (401, 403, 400 for a bad body or query …)
    errors: tuple[int, ...] = ()
    #: what a success answers with
    media: str = "application/json"

    def model(self, match: Mapping[str, str]) -> type[BaseModel] | None:
        """The body's model, for the route's path parameters ``match``."""
        if isinstance(self.body, Mapping):
            return self.body.get(match[self.by or ""])
        return self.body


def guarded(permission: str, handler: Handler, **declared: Any) -> Handler:
    """``handler``, declared to need ``permission`` (``config.read``, ``config.write``, …, or
    ``"public"`` for a route ``PUBLIC`` lists), with the rest of its ``Route`` declaration: a
    handler of its own, so one function can serve routes of different declarations."""
    if permission not in PERMISSIONS and permission not in (SIGNED_IN, PUBLIC_ROUTE):
        raise ValueError(f"unknown permission {permission!r}")
    route = Route(permission, **declared)
    if isinstance(route.body, Mapping) and route.by is None:
        raise ValueError("a body chosen by a path parameter needs by=")

    async def handle(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    functools.update_wrapper(handle, handler)
    handle.route = route  # type: ignore[attr-defined]
    return handle


def route_of(handler: object) -> Route | None:
    """``handler``'s declaration, if it has one."""
    return getattr(handler, "route", None)


def declared(request: web.Request) -> Route:
    """The declaration of the route ``request`` came by."""
    route = route_of(request.match_info.handler)
    if route is None:
        raise LookupError(f"{request.match_info.handler!r} has no declaration")
    return route


def permission_of(method: str, path: str, handler: object) -> str | None:
    """``"public"``, the declared permission, or None for an undeclared route (refused) — and
    for a route declared public that ``PUBLIC`` does not list."""
    if (method, path) in PUBLIC or (method == "HEAD" and ("GET", path) in PUBLIC):
        return PUBLIC_ROUTE
    route = route_of(handler)
    return route.permission if route is not None and route.permission != PUBLIC_ROUTE else None


def principal(request: web.Request) -> Principal | None:
    """Who sent the request (set by the security middleware), or None on a public route."""
    return request.get(PRINCIPAL)


async def audited(request: web.Request, action: str, target: str = "",
                  detail: dict[str, object] | None = None) -> None:
    """Write what the request's person (or program) did to the audit log; screens and
    kiosks are devices, whose doings the event log keeps."""
    who = principal(request)
    if who is not None and who.kind != "device":
        await request.app[AUDIT].record(who.actor, address(request), action, target, detail)

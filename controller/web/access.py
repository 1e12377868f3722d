"""Which permission each route needs, declared where the route is added (one line each):
``guarded("config.write", handler)``. The security layer checks the declarations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(permission: str, handler: Handler) -> Handler:
    """``handler``, declared to need ``permission`` (``config.read``, ``config.write``, …)."""
    handler.permission = permission  # type: ignore[attr-defined]
    return handler

"""Security headers on every answer: a Content-Security-Policy without inline scripts, no
framing, no content sniffing, and no referrer to other sites (a status page's address is its
ticket's secret and must not leak). Pages send their referrer only to the hall server itself
(``same-origin``: with ``no-referrer`` a browser may send ``Origin: null`` on their own
POSTs, which the CSRF check refuses); the status page and its data send none at all."""

from __future__ import annotations

from aiohttp import web

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


async def _add(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(("/t/", "/api/status/", "/c/", "/api/case-status/")):
        response.headers["Referrer-Policy"] = "no-referrer"
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/auth/"):
        response.headers["Cache-Control"] = "no-store"


def add_security_headers(app: web.Application) -> None:
    app.on_response_prepare.append(_add)

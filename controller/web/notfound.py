"""The pages a refusal answers a person's browser with: an unknown address (没有这个页面; under
``/api`` an unknown path keeps its JSON 404, ``controller.web.api.errors``) and a page the
person's roles do not reach (没有权限, 403)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

import display

PAGE = Path(display.__file__).parent / "pages" / "404.html"
FORBIDDEN = Path(display.__file__).parent / "pages" / "403.html"


def forbidden_page() -> web.Response:
    return web.Response(body=FORBIDDEN.read_bytes(), status=403, content_type="text/html",
                        charset="utf-8", headers={"Cache-Control": "no-store"})


@web.middleware
async def not_found_page(request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
    """A 404 outside ``/api`` becomes the page that says so, with a link home."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith("/api/") or request.method not in ("GET", "HEAD"):
            raise
        return web.Response(body=PAGE.read_bytes(), status=404, content_type="text/html",
                            charset="utf-8", headers={"Cache-Control": "no-cache"})

"""Rendering an admin page: its template, never kept by a browser or a proxy (the pages show
people's data and live state)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web


def render(template: str, request: web.Request, context: dict[str, Any]) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context)
    response.headers["Cache-Control"] = "no-store"
    return response

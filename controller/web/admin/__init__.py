"""The administrator's web application (管理后台) at ``/admin``: the duty dashboard, the
hall's configuration, the matter catalogue, appointments, people, API tokens and the audit log.

Pages are rendered on the server (``aiohttp-jinja2``) and kept live with htmx over the
screens' Server-Sent Events; changes are sent as JSON to the same API routes programs use,
so they are validated, guarded and audited once. Every page route declares the permission
it needs like any other route; a person not signed in is sent to ``/login`` and one whose
roles do not reach the page is told so on a page (``controller.web.auth``).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from controller.web.admin import county, desk, matters, people, ratings, stats_page, views

HERE = Path(__file__).parent


def add_admin_routes(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=jinja2.select_autoescape(default=True),
                               context_processors=[views.page_context],
                               undefined=jinja2.StrictUndefined)
    env.trim_blocks = env.lstrip_blocks = True
    app.router.add_static("/admin/static/", HERE / "static")
    views.add_routes(app)
    people.add_routes(app)
    matters.add_routes(app)
    desk.add_routes(app)
    ratings.add_routes(app)
    stats_page.add_routes(app)
    county.add_routes(app)

"""The matter catalogue's page (事项清单) of the admin application: search as one types (htmx,
the list rendered on the server), each matter with its form, a new one, import of an xlsx or
CSV file (every problem by row and column, or the counts) and export. Its forms are built
from the core's own model (``controller.core.matters.Matter``) and sent as JSON to the
catalogue's API (``controller.web.matters_api``), which validates them with it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.core.matters import CATEGORIES, FORMS, Matter
from controller.web.access import guarded
from controller.web.admin.forms import MATTER_LABELS, fields
from controller.web.admin.render import render
from controller.web.api import ENGINE, READS
from controller.web.matters_api import find

#: At most this many matters are listed at once; a search finds the rest.
SHOWN = 60


async def _list(request: web.Request) -> dict[str, Any]:
    hall = await request.app[ENGINE].settled()
    cat = hall.catalogue
    q = request.query.get("q", "")[:40]
    found = find(cat, q, SHOWN, None, disabled=True)
    return {
        "q": q, "total": len(cat.matters), "shown": SHOWN,
        "rows": [(m, fields(Matter, hall, m.model_dump(mode="json"), fixed=("code",), labels=MATTER_LABELS))
                 for m in found],
        "categories": CATEGORIES, "forms": FORMS,
        "windows": {w.id: w.name for w in hall.config.windows},
    }



async def matters_page(request: web.Request) -> web.Response:
    hall = await request.app[ENGINE].settled()
    return render("matters.html", request, {
        **await _list(request), "new": fields(Matter, hall, labels=MATTER_LABELS)})


async def matters_list(request: web.Request) -> web.Response:
    """The list alone, for the search box (htmx)."""
    return render("_matters_list.html", request, await _list(request))


def add_routes(app: web.Application) -> None:
    html = {"media": "text/html"}
    app.router.add_get("/admin/matters", guarded(
        "cases.read", matters_page, errors=READS, summary="事项清单 / the matter catalogue", **html))
    app.router.add_get("/admin/matters/list", guarded(
        "cases.read", matters_list, errors=READS, summary="事项查找 / matters found as one types", **html))

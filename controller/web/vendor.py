"""The pages' front-end libraries (htmx, ECharts), served
by the hall server itself from ``node_modules`` (installed by ``scripts/setup`` from the npm
registry, pinned in ``package-lock.json``): halls run on closed networks, and nothing is
loaded from the internet. ``YIMEN_ASSETS`` names another ``node_modules`` folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aiohttp import web

from controller.web.access import PUBLIC_ROUTE, guarded

log = logging.getLogger("yimen.web")
#: What the pages load (``/vendor/{name}``) → its file in ``node_modules``.
FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "echarts.min.js": "echarts/dist/echarts.min.js",
}


def modules() -> Path:
    return Path(os.environ.get("YIMEN_ASSETS") or Path(__file__).resolve().parents[2] / "node_modules")


async def vendor(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in FILES:
        raise web.HTTPNotFound()
    path = modules() / FILES[name]
    if not path.is_file():
        log.error("%s is missing: run scripts/setup (npm ci) or set YIMEN_ASSETS", path)
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400",
                                           "Content-Type": "text/javascript; charset=utf-8"})


def add_vendor_routes(app: web.Application) -> None:
    missing = [f for f in FILES.values() if not (modules() / f).is_file()]
    if missing:
        log.warning("the pages' libraries are missing from %s (%s): run scripts/setup",
                    modules(), ", ".join(missing))
    app.router.add_get("/vendor/{name}", guarded(
        PUBLIC_ROUTE, vendor, errors=(404,), media="text/javascript",
        summary="页面库 / the pages' libraries (htmx, ECharts)"))

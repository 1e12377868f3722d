"""The pages of 好差评: the supervisor's 差评 follow-ups (``/followups``), overdue first, each
with the steps its state allows; and a clerk's own ratings (``/my/ratings``) — never a
colleague's, and none says who rated."""

from __future__ import annotations

from aiohttp import web

from controller.core import followups as core
from controller.web.access import guarded
from controller.web.admin.render import render
from controller.web.followups_api import Period, open_followups, own_ratings


async def followups_page(request: web.Request) -> web.Response:
    found = await open_followups(request)
    return render("followups.html", request, {
        "followups": found, "actions": core.ACTIONS, "levels": core.LEVEL_NAMES,
        "counts": {c: sum(1 for f in found if f["colour"] == c) for c in ("red", "yellow", "green")}})


async def my_ratings_page(request: web.Request) -> web.Response:
    return render("my_ratings.html", request, {
        "r": await own_ratings(request), "levels": core.LEVEL_NAMES})


def add_routes(app: web.Application) -> None:
    html = {"media": "text/html"}
    app.router.add_get("/followups", guarded("followups.manage", followups_page,
                                             summary="差评跟进 / bad ratings followed up", **html))
    app.router.add_get("/my/ratings", guarded("ratings.own", my_ratings_page, query=Period,
                                              summary="本人评价 / my ratings", **html))

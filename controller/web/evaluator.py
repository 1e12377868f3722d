"""The tablet evaluator (评价器页面, ``/evaluator``): a browser enrolled as a window's
``evaluator`` device shows the rating prompt the clerk asked for and sends the citizen's one
rating; a 差评 asks for its reasons from the list (the protocol's evaluator that can show
them). Voluntary and never pre-selected: a prompt left alone times out as 未评价.

``GET /api/evaluator``: the device's window and its open prompt, if any; ``POST
/api/evaluator/rate``: ``{"session", "level", "reasons"}`` (``Rate``, by the device).
"""

from __future__ import annotations

from aiohttp import web

from controller.bus.views import evaluator_set
from controller.core.commands import REASON_NAMES, Rate, decode
from controller.core.errors import Refused
from controller.web.access import guarded, principal
from controller.web.api import ENGINE, READS, REFUSALS, Body, json_response, parsed, run_command


class Rating(Body):
    session: str
    level: str
    reasons: list[str] = []


def _window(request: web.Request) -> str:
    """The window of the evaluator device the request comes from."""
    who = principal(request)
    device = next((d for d in request.app[ENGINE].config.devices
                   if who is not None and d.id == who.name and d.kind == "evaluator"), None)
    if device is None or device.window is None:
        raise Refused("forbidden", "本机不是评价器", "this is not an evaluator")
    return device.window


async def prompt(request: web.Request) -> web.Response:
    window = _window(request)
    hall = await request.app[ENGINE].settled()
    return json_response({"ok": True, "window": window, "window_name": hall.window_cfg[window].name,
                          "prompt": evaluator_set(hall, window),
                          "reasons": [{"code": k, "name": v} for k, v in REASON_NAMES.items()]})


async def rate(request: web.Request) -> web.Response:
    given: Rating = await parsed(request)
    return await run_command(request, decode(Rate, {**given.model_dump(), "window": _window(request)}))


def add_evaluator_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/evaluator", guarded("ratings.give", prompt, errors=READS,
                                        summary="评价器 / the evaluator's prompt"))
    r.add_post("/api/evaluator/rate", guarded("ratings.give", rate, body=Rating, errors=REFUSALS,
                                              summary="评价 / the citizen's one rating"))

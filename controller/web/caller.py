"""The clerk's soft caller (软呼叫器, ``/caller``): what its page reads.

The page acts through ``POST /api/windows/{window}/{op}`` like any other door; here are only
its reads: the windows the signed-in person may work (``GET /api/windows``), one window's view
— its state, current ticket, its services' lines with the next numbers, the tickets held
there (``GET /api/windows/{window}``) — and the hall's pushes scoped to a window the person
may work (``GET /api/windows/{window}/stream``, the screens' ``ScreenFeed``), so the page
follows what the window's hardware keypad does and refetches the view after each change. A
clerk sees only their own windows (``own_window``: the clerk record's windows and AB
backups); a supervisor or administrator any window.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.core.errors import Refused
from controller.core.hall import HallState
from controller.core.model import TicketState
from controller.web.access import guarded, principal
from controller.web.api import ENGINE, READS, json_response, own_window
from controller.web.auth import still_allowed
from controller.web.feed import FEED

#: How many of a line's next numbers the page shows.
NEXT_SHOWN = 5


async def my_windows(request: web.Request) -> web.Response:
    """The windows the request's person may work: a clerk's own (本岗 ``A``) and backups
    (AB角 ``B``); everyone else who may operate windows, every window in service."""
    engine = request.app[ENGINE]
    hall = await engine.settled()
    who = principal(request)
    staff = who.staff if who is not None else None
    clerk = next((c for c in engine.config.clerks if c.id == staff), None)
    if who is not None and who.only_own_windows():
        mine = [(w, "A") for w in clerk.windows] + [(w, "B") for w in clerk.backup_windows] if clerk else []
    else:
        mine = [(w, "A" if clerk and w in clerk.windows else "") for w in hall.windows]
    out = [{"window": w, "name": hall.window_cfg[w].name, "role": role,
            "services": list(hall.window_cfg[w].services), "clerk": hall.desk.windows[w].clerk}
           for w, role in mine if w in hall.window_cfg and hall.window_cfg[w].enabled]
    return json_response({"ok": True, "staff": staff, "name": clerk.name if clerk else None,
                          "windows": out})


async def _known(request: web.Request) -> str:
    window = request.match_info["window"]
    if window not in (await request.app[ENGINE].settled()).window_cfg:
        raise Refused("unknown_window", f"没有 {window[:16]} 号窗口", f"no window {window[:16]!r}")
    return window


def window_detail(hall: HallState, window: str) -> dict[str, Any]:
    """What the soft caller shows of ``window``: its view, the current ticket, the lines of
    its services (and of tickets transferred to it) with their next numbers, its held tickets."""
    cfg, ws, q = hall.window_cfg[window], hall.desk.windows[window], hall.queue
    cur = q.all[ws.current] if ws.current else None
    names = {c.id: c.name for c in hall.config.clerks}

    def at(when: Any) -> str | None:
        return hall.local(when).isoformat(timespec="seconds") if when else None

    def numbers(line: Any) -> list[str]:
        return [q.all[key[2]].number for _, key in zip(range(NEXT_SHOWN), line, strict=False)]

    lines = [{"service": s, "name": hall.services[s].name, "waiting": hall.waiting(s),
              "next": numbers(q.lines[s])} for s in cfg.services if s in q.lines]
    directed = q.directed.get(window)
    held = sorted((t for t in q.all.values() if t.state is TicketState.HELD and t.window == window),
                  key=lambda t: t.order)
    return {
        **hall.window_view(window),
        "paused": ws.paused,
        "clerk_name": names.get(ws.clerk or "", None),
        "logged_in_at": at(ws.logged_in_at),
        "current": None if cur is None else {
            "number": cur.number, "service": cur.service, "service_name": hall.services[cur.service].name,
            "state": cur.state.value, "recalls": cur.recalls,
            "called_at": at(cur.called_at)},
        "lines": lines,
        "directed": {"waiting": len(directed), "next": numbers(directed)} if directed is not None else None,
        "held": [{"number": t.number, "service": t.service} for t in held],
        "evaluating": hall.open_evaluation(window) is not None,
        "services": [{"service": s.code, "name": s.name} for s in hall.config.services if s.enabled],
        "windows": [{"window": w, "name": hall.window_cfg[w].name} for w in hall.windows],
    }


async def window_state(request: web.Request) -> web.Response:
    window = await _known(request)
    await own_window(request, window)
    return json_response({"ok": True, "window": window_detail(await request.app[ENGINE].settled(), window)})


async def window_stream(request: web.Request) -> web.StreamResponse:
    """The hall's pushes (``board`` after every change, ``call``) for a soft caller at one of
    the person's windows, while they still may operate windows."""
    await own_window(request, await _known(request))
    return await request.app[FEED].handle(request, allowed=lambda: still_allowed(request, "windows.operate"))


def add_caller_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/windows", guarded("windows.operate", my_windows, errors=READS,
                                      summary="我的窗口 / the windows I may work"))
    r.add_get("/api/windows/{window}", guarded("windows.operate", window_state, errors=(404, 503),
                                               summary="窗口详情 / a window's state, lines and held tickets"))
    r.add_get("/api/windows/{window}/stream", guarded(
        "windows.operate", window_stream, errors=(404, 503), media="text/event-stream",
        summary="窗口推送 / a window's pushes for its soft caller (SSE)"))

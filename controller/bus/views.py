"""What each device should show, built from the hall's state (pure).

``set`` payloads are absolute: each replaces what the device had. Public outputs carry ticket
numbers only, never a citizen's name, ID or phone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from controller.config import HallConfig
from controller.core.events import Event, EventKind
from controller.core.hall import HallState
from controller.core.ratings import masked_name

FLASH_S = 5
_IDLE_TEXT = {"closed": "暂停服务", "paused": "暂停服务", "idle": "欢迎光临", "serving": ""}


def call_text(number: str, window: str) -> str:
    """The sentence screens and announcers use: 请A012号到3号窗口办理."""
    return f"请{number}号到{window}号窗口办理"


def caller_set(hall: HallState, window: str) -> dict[str, Any]:
    view = hall.window_view(window)
    return {"op": "show", "text": view["ticket"] or "", "waiting": view["waiting"],
            "state": view["state"]}


def window_display_set(hall: HallState, window: str, call_id: str | None = None) -> dict[str, Any]:
    """``call_id`` names the call or recall just made here: the screen flashes for it."""
    view = hall.window_view(window)
    if view["ticket"]:
        out = {"op": "show", "lines": [view["ticket"], f"请到{window}号窗口"],
               "ticket": view["ticket"], "window": window, "flash_s": FLASH_S if call_id else 0}
        if call_id:
            out["call_id"] = call_id
        return out
    return {"op": "show", "lines": [view["name"], _IDLE_TEXT[view["state"]]], "ticket": None,
            "window": window, "flash_s": 0}


def evaluator_set(hall: HallState, window: str) -> dict[str, Any]:
    ev = hall.open_evaluation(window)
    if ev is None:
        return {"op": "idle"}
    clerk = hall.clerks.get(ev.clerk or "")
    out = {"op": "prompt", "session": ev.id, "ticket": ev.number,
           "staff_name": masked_name(clerk.name) if clerk else "", "timeout_s": ev.timeout_s}
    if ev.case:                                  # additive: the case the service opened (办件编号)
        out["case"] = ev.case
    return out


def call_object(config: HallConfig, event: Event) -> dict[str, Any]:
    """One ``calls`` message for a call or recall event (from the event and the hall's
    configuration alone: it is made as soon as the event is committed)."""
    window = event.window or ""
    local_at = event.at.astimezone(config.hall.tz)
    return {"call_id": uuid.uuid4().hex, "ticket": event.number, "window": window,
            "window_name": w.name if (w := config.window_by_id.get(window)) else window,
            "service": event.service, "recall": event.kind is EventKind.RECALLED,
            "text": call_text(event.number or "", window), "at": local_at.isoformat()}


def board(hall: HallState, recent_calls: list[dict[str, Any]], local_at: datetime) -> dict[str, Any]:
    windows = []
    for w in hall.windows:
        view = hall.window_view(w)
        windows.append({"window": w, "name": view["name"], "state": view["state"],
                        "ticket": view["ticket"]})
    services = [{"service": s["service"], "name": s["name"], "waiting": s["waiting"],
                 "est_wait_min": s["est_wait_min"], "est_wait_range": s["est_wait_range"]}
                for s in hall.services_view()]
    return {"windows": windows, "services": services, "recent_calls": recent_calls[-10:],
            "notices": hall.notices(), "at": local_at.isoformat()}

"""Windows and clerks (窗口与工作人员): login with A/B roles (AB角), pause, and calling —
next by each window's services, order and weights, a given number, recall, no-show, hold and
call back, transfer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.config import Window
from controller.core.commands import (
    CallNext,
    CallNumber,
    Command,
    Done,
    Hold,
    Login,
    Logout,
    NoShow,
    Pause,
    Recall,
    Resume,
    Start,
    Transfer,
    WindowCommand,
)
from controller.core.errors import Refused
from controller.core.events import EventKind
from controller.core.model import Attendance, Ticket, TicketState, WindowState
from controller.core.queue import Key
from controller.core.tickets import finish

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.core.hall import HallState


class Windows:
    """Every window as it is now, and the clerks' open login sessions (考勤)."""

    def __init__(self) -> None:
        self.windows: dict[str, WindowState] = {}         # as configured: see ``configure``
        self.attendance: dict[str, Attendance] = {}

    def configure(self, windows: list[str]) -> None:
        """The windows there are now (a removed one had nobody at it)."""
        self.windows = {w: self.windows[w] if w in self.windows else WindowState(w) for w in windows}

    def window(self, window: str) -> WindowState:
        ws = self.windows.get(window)
        if ws is None:
            raise Refused("unknown_window", f"没有{window}号窗口", f"no window {window!r}")
        return ws

    def staffed(self, window: str) -> WindowState:
        ws = self.window(window)
        if ws.clerk is None:
            raise Refused("not_logged_in", "请先登录", "no clerk is logged in at this window")
        return ws

    def active(self, window: str) -> WindowState:
        ws = self.staffed(window)
        if ws.paused:
            raise Refused("window_paused", "窗口已暂停服务", "the window is paused")
        return ws

    def open_count(self, windows: Iterable[str]) -> int:
        return sum(1 for w in windows if self.windows[w].clerk is not None and not self.windows[w].paused)


def current(hall: HallState, ws: WindowState) -> Ticket:
    if ws.current is None:
        raise Refused("no_current_ticket", "当前没有正在办理的号", "no current ticket")
    return hall.queue.all[ws.current]


# ---------------------------------------------------------------------- clerks
def login(hall: HallState, cmd: Login, now: datetime) -> dict[str, Any]:
    """登录: a clerk opens a window as its A (本岗) or B (AB角) clerk."""
    window, staff = cmd.window, cmd.staff
    ws = hall.desk.window(window)
    clerk = hall.clerks.get(staff)
    if clerk is None:
        raise Refused("unknown_staff", f"工号{staff}不存在", f"unknown staff {staff!r}")
    if not clerk.enabled:
        raise Refused("staff_disabled", f"工号{staff}已停用", f"staff {staff!r} is disabled")
    if not hall.window_cfg[window].enabled:
        raise Refused("window_disabled", f"{window}号窗口已停用", f"window {window} is disabled")
    if window in clerk.windows:
        role = "A"
    elif window in clerk.backup_windows:
        role = "B"
    else:
        raise Refused("staff_not_allowed", f"{clerk.name}不能在{window}号窗口登录",
                      "this clerk may not work this window")
    if ws.clerk == staff:
        return {"window": window, "staff": staff, "role": role}
    if ws.clerk is not None:
        raise Refused("window_occupied", f"{window}号窗口已有人登录",
                      "another clerk is logged in at this window")
    elsewhere = next((w.id for w in hall.desk.windows.values() if w.clerk == staff), None)
    if elsewhere is not None:
        raise Refused("staff_elsewhere", f"{clerk.name}已在{elsewhere}号窗口登录",
                      f"this clerk is logged in at window {elsewhere}")
    att = Attendance(id=f"{staff}@{window}@{hall.stamp(now)}", staff=staff, window=window,
                     role=role, login_at=now)
    hall.desk.attendance[att.id] = att
    hall.changes.touch(att)
    ws.clerk, ws.attendance_id, ws.logged_in_at, ws.paused = staff, att.id, now, False
    hall.changes.touch(ws)
    hall.emit(EventKind.LOGIN, now, window=window, clerk=staff, role=role)
    return {"window": window, "staff": staff, "role": role}


def logout(hall: HallState, cmd: Logout, now: datetime) -> dict[str, Any]:
    ws = hall.desk.staffed(cmd.window)
    if ws.current is not None:
        t = hall.queue.all[ws.current]
        raise Refused("ticket_in_progress", f"请先办结或挂起{t.number}号",
                      "finish or hold the current ticket first")
    staff = ws.clerk
    att = hall.desk.attendance.pop(ws.attendance_id, None) if ws.attendance_id else None
    if att is not None:
        att.logout_at = now
        hall.changes.touch(att)
    ws.clerk, ws.attendance_id, ws.logged_in_at, ws.paused = None, None, None, False
    hall.changes.touch(ws)
    hall.emit(EventKind.LOGOUT, now, window=cmd.window, clerk=staff)
    return {"window": cmd.window}


def pause(hall: HallState, cmd: Pause, now: datetime) -> dict[str, Any]:
    return _set_paused(hall, cmd, now, True)


def resume(hall: HallState, cmd: Resume, now: datetime) -> dict[str, Any]:
    return _set_paused(hall, cmd, now, False)


def _set_paused(hall: HallState, cmd: WindowCommand, now: datetime, paused: bool) -> dict[str, Any]:
    ws = hall.desk.staffed(cmd.window)
    if ws.paused != paused:
        ws.paused = paused
        hall.changes.touch(ws)
        hall.emit(EventKind.PAUSED if paused else EventKind.RESUMED, now, window=ws.id, clerk=ws.clerk)
    return {"window": ws.id, "paused": paused}


# ---------------------------------------------------------------------- calling (叫号)
def _pick(hall: HallState, ws: WindowState, cfg: Window) -> Ticket | None:
    """Which waiting ticket this window calls next: tickets transferred to it first, then
    (``green_first``) the earliest green-channel ticket of its services, then its ``policy``."""
    lines = hall.queue.lines
    key = hall.queue.directed[ws.id].head()
    if key is None and cfg.green_first:
        heads = [h for s in cfg.services if (h := lines[s].head()) and h[0] == 0]
        key = min(heads, key=lambda h: h[1]) if heads else None
    if key is None:
        key = _pick_by_policy(hall, ws, cfg)
    return hall.queue.all[key[2]] if key else None


def _pick_by_policy(hall: HallState, ws: WindowState, cfg: Window) -> Key | None:
    lines = hall.queue.lines
    if cfg.policy == "order":
        return next((h for s in cfg.services if (h := lines[s].head()) is not None), None)
    if cfg.policy == "fifo":
        heads = [h for s in cfg.services if (h := lines[s].head()) is not None]
        return min(heads, key=lambda h: (h[0], h[1])) if heads else None
    # weighted: smooth weighted round robin over services with someone waiting
    eligible = [(s, w) for s, w in zip(cfg.services, cfg.weights, strict=True) if lines[s]]
    if not eligible:
        return None
    total = sum(w for _, w in eligible)
    best = eligible[0][0]
    for s, w in eligible:
        ws.credits[s] = ws.credits.get(s, 0) + w
        if ws.credits[s] > ws.credits[best]:
            best = s
    ws.credits[best] -= total
    return lines[best].head()


def _call(hall: HallState, t: Ticket, ws: WindowState, now: datetime, how: str) -> dict[str, Any]:
    if t.state is TicketState.WAITING:
        hall.queue.dequeue(t)
    first = t.first_called_at is None
    t.state = TicketState.CALLED
    t.window, t.target_window, t.clerk = ws.id, None, ws.clerk
    t.called_at, t.recalls = now, 0
    if first:
        t.first_called_at = now
    ws.current = t.id
    hall.changes.touch(t)
    hall.emit(EventKind.CALLED, now, t, window=ws.id, clerk=ws.clerk, how=how, first=first,
              first_called_at=t.first_called_at.isoformat() if t.first_called_at else None)
    return {"window": ws.id, "ticket": hall.public(t)}


def _complete_current(hall: HallState, ws: WindowState, now: datetime) -> None:
    if ws.current is not None:
        t = hall.queue.all[ws.current]
        finish(hall, t, TicketState.DONE, now)
        hall.emit(EventKind.DONE, now, t, window=ws.id, clerk=ws.clerk)


def call_next(hall: HallState, cmd: CallNext, now: datetime) -> dict[str, Any]:
    """下一位: finish the current ticket, if any, and call the next one."""
    ws = hall.desk.active(cmd.window)
    t = _pick(hall, ws, hall.window_cfg[cmd.window])
    if t is None:
        raise Refused("queue_empty", "当前无人等候", "nobody is waiting")
    _complete_current(hall, ws, now)
    return _call(hall, t, ws, now, "next")


def call_number(hall: HallState, cmd: CallNumber, now: datetime) -> dict[str, Any]:
    """特呼 / 挂起回呼: call a given waiting ticket, or call back a held one."""
    ws = hall.desk.active(cmd.window)
    t = hall.queue.by_number_or_refuse(cmd.number)
    cfg = hall.window_cfg[cmd.window]
    if t.id == ws.current:
        raise Refused("ticket_at_window", f"{t.number}号正在本窗口", "already at this window")
    if t.state is TicketState.WAITING:
        allowed = t.target_window == cmd.window or (t.target_window is None and t.service in cfg.services)
    elif t.state is TicketState.HELD:
        allowed = t.window == cmd.window or t.service in cfg.services
    else:
        raise Refused("ticket_not_callable", f"{t.number}号不在等候或挂起中",
                      "the ticket is neither waiting nor held")
    if not allowed:
        raise Refused("ticket_not_for_window", f"{t.number}号不在本窗口办理",
                      "this window does not serve that ticket")
    _complete_current(hall, ws, now)
    return _call(hall, t, ws, now, "held" if t.state is TicketState.HELD else "number")


def recall(hall: HallState, cmd: Recall, now: datetime) -> dict[str, Any]:
    """重呼: re-announce the current ticket; past ``max_recalls`` it becomes a no-show."""
    ws = hall.desk.staffed(cmd.window)
    t = current(hall, ws)
    if t.state is not TicketState.CALLED:
        raise Refused("ticket_serving", f"{t.number}号已在办理", "the ticket is being served")
    if t.recalls >= hall.config.hall.max_recalls:
        finish(hall, t, TicketState.NO_SHOW, now)
        hall.emit(EventKind.NO_SHOW, now, t, window=ws.id, clerk=ws.clerk, reason="recall_limit")
        return {"window": ws.id, "ticket": hall.public(t), "no_show": True}
    t.recalls += 1
    hall.changes.touch(t)
    hall.emit(EventKind.RECALLED, now, t, window=ws.id, clerk=ws.clerk, recalls=t.recalls)
    return {"window": ws.id, "ticket": hall.public(t), "recalls": t.recalls}


def no_show(hall: HallState, cmd: NoShow, now: datetime) -> dict[str, Any]:
    """过号: the called citizen did not come."""
    ws = hall.desk.staffed(cmd.window)
    t = current(hall, ws)
    finish(hall, t, TicketState.NO_SHOW, now)
    hall.emit(EventKind.NO_SHOW, now, t, window=ws.id, clerk=ws.clerk, reason="key")
    return {"window": ws.id, "ticket": hall.public(t)}


def start(hall: HallState, cmd: Start, now: datetime) -> dict[str, Any]:
    """开始办理: the called citizen has arrived."""
    ws = hall.desk.staffed(cmd.window)
    t = current(hall, ws)
    if t.state is TicketState.CALLED:
        t.state, t.served_at = TicketState.SERVING, now
        hall.changes.touch(t)
        hall.emit(EventKind.SERVING, now, t, window=ws.id, clerk=ws.clerk)
    return {"window": ws.id, "ticket": hall.public(t)}


def done(hall: HallState, cmd: Done, now: datetime) -> dict[str, Any]:
    """办结: finish the current ticket without calling another."""
    ws = hall.desk.staffed(cmd.window)
    t = current(hall, ws)
    _complete_current(hall, ws, now)
    return {"window": ws.id, "ticket": hall.public(t)}


def hold(hall: HallState, cmd: Hold, now: datetime) -> dict[str, Any]:
    """挂起: park the current ticket, to be called back by number later."""
    ws = hall.desk.staffed(cmd.window)
    t = current(hall, ws)
    t.state = TicketState.HELD
    ws.current = None
    hall.changes.touch(t)
    hall.emit(EventKind.HELD, now, t, window=ws.id, clerk=ws.clerk)
    return {"window": ws.id, "ticket": hall.public(t)}


def transfer(hall: HallState, cmd: Transfer, now: datetime) -> dict[str, Any]:
    """转移: hand the current ticket on to another service's line or to one window, keeping
    its number and its original issue time."""
    ws = hall.desk.staffed(cmd.window)
    t = current(hall, ws)
    to_service, to_window = cmd.to_service, cmd.to_window
    if bool(to_service) == bool(to_window):
        raise Refused("bad_transfer", "请选择转往的业务或窗口", "give to_service or to_window")
    if to_service:
        if to_service not in hall.services:
            raise Refused("unknown_service", "没有这项业务", f"unknown service {to_service!r}")
        if to_service == t.service:
            raise Refused("bad_transfer", "已是该业务", "the ticket is already for that service")
    elif to_window is not None:
        hall.desk.window(to_window)
        if to_window == cmd.window:
            raise Refused("bad_transfer", "不能转给本窗口", "cannot transfer to this window")
    ws.current = None
    from_service = t.service
    t.state = TicketState.WAITING
    t.recalls = 0
    t.target_window = to_window
    if to_service:
        t.service = to_service
    hall.queue.enqueue(t)
    hall.changes.touch(t)
    hall.emit(EventKind.TRANSFERRED, now, t, window=ws.id, clerk=ws.clerk, from_service=from_service,
              to_service=to_service, to_window=to_window)
    return {"window": ws.id, "ticket": hall.public(t)}


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    Login: login, Logout: logout, Pause: pause, Resume: resume, CallNext: call_next,
    CallNumber: call_number, Recall: recall, NoShow: no_show, Start: start, Done: done,
    Hold: hold, Transfer: transfer,
}

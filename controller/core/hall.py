"""The hall's queue rules (排队叫号规则), pure: every method checks first, then changes.

Each public command takes ``now`` (an aware datetime) and returns a reply dict; a command the
rules do not allow raises ``Refused`` before anything is touched. Everything that changed is
collected in ``changes`` for the engine to persist.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from controller.config import HallConfig, Window
from controller.core import calendar
from controller.core.errors import Refused
from controller.core.evaluation import BAD_LEVELS, LEVELS, REASONS, Evaluation
from controller.core.model import (
    Appointment,
    Attendance,
    Event,
    Priority,
    Ticket,
    TicketState,
    WindowState,
)
from controller.core.queue import WaitingLine


@dataclass(slots=True)
class Changes:
    """What a run of commands changed, for one transaction."""

    tickets: dict[str, Ticket] = field(default_factory=dict)
    windows: dict[str, WindowState] = field(default_factory=dict)
    attendance: dict[str, Attendance] = field(default_factory=dict)
    appointments: dict[str, Appointment] = field(default_factory=dict)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    day: date | None = None

    def __bool__(self) -> bool:
        return bool(self.tickets or self.windows or self.attendance or self.appointments
                    or self.evaluations or self.events or self.day)


class HallState:
    """One hall's live queue state for its current day."""

    def __init__(self, config: HallConfig, day: date) -> None:
        self.config = config
        self.tz = config.hall.tz
        self.day = day
        self.services = {s.code: s for s in config.services}
        self.window_cfg: dict[str, Window] = {w.id: w for w in config.windows}
        self.clerks = {c.id: c for c in config.clerks}
        self.windows_for: dict[str, list[str]] = {s: [] for s in self.services}
        for w in config.windows:
            for s in w.services:
                self.windows_for[s].append(w.id)
        self.tickets: dict[str, Ticket] = {}
        self.by_number: dict[str, str] = {}
        self.lines: dict[str, WaitingLine] = {s: WaitingLine() for s in self.services}
        self.directed: dict[str, WaitingLine] = {w: WaitingLine() for w in self.window_cfg}
        self.windows: dict[str, WindowState] = {w: WindowState(w) for w in self.window_cfg}
        self.seq: dict[str, int] = {s: 0 for s in self.services}
        self.ordinal = 0
        self.segment_counts: dict[tuple[str, int], int] = {}
        self.tokens: dict[str, set[str]] = {}
        self.appointments: dict[str, Appointment] = {}
        self.attendance: dict[str, Attendance] = {}
        self.evaluations: dict[str, Evaluation] = {}   # open sessions
        self.durations: dict[str, deque[float]] = {
            s: deque(maxlen=config.hall.recent_samples) for s in self.services}
        self.changes = Changes()

    # ------------------------------------------------------------------ bookkeeping
    def drain(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("times given to the core must be timezone-aware")
        return now.astimezone(self.tz)

    def _emit(self, kind: str, now: datetime, ticket: Ticket | None = None,
              window: str | None = None, clerk: str | None = None, **data: Any) -> None:
        self.changes.events.append(Event(
            kind=kind, at=now, window=window, clerk=clerk,
            ticket=ticket.id if ticket else None, number=ticket.number if ticket else None,
            service=ticket.service if ticket else None, data=data))

    def _touch(self, ticket: Ticket) -> None:
        self.changes.tickets[ticket.id] = ticket

    def _touch_window(self, ws: WindowState) -> None:
        """Record a change of who works a window or whether it is paused. Which ticket a
        window holds is not stored with the window: it follows from the tickets."""
        self.changes.windows[ws.id] = ws

    def roll_to(self, now: datetime) -> None:
        """Daily rollover at the hall's local midnight (日切): numbering restarts, history is
        kept, yesterday's waiting and held tickets are closed as not served. Tickets still at
        a window stay there and finish normally."""
        new_day = self.local(now).date()
        if new_day <= self.day:
            return
        old_day = self.day
        closed = 0
        for tid in list(self.tickets):
            t = self.tickets[tid]
            if t.state in (TicketState.WAITING, TicketState.HELD):
                self._finish(t, TicketState.NOT_SERVED, now)
                self._emit("closed", now, t, window=t.window, reason="rollover")
                closed += 1
            if not t.state.at_window:
                del self.tickets[tid]
        for line in (*self.lines.values(), *self.directed.values()):
            line.clear()
        self.by_number.clear()
        self.seq = {s: 0 for s in self.services}
        self.ordinal = 0
        self.segment_counts.clear()
        self.appointments = {c: a for c, a in self.appointments.items() if a.day >= new_day}
        self.day = new_day
        self.changes.day = new_day
        self._emit("rollover", now, from_day=old_day.isoformat(), to_day=new_day.isoformat(),
                   closed=closed)

    # ------------------------------------------------------------------ lookups
    def _window(self, window: str) -> tuple[WindowState, Window]:
        ws = self.windows.get(window)
        if ws is None:
            raise Refused("unknown_window", f"没有{window}号窗口", f"no window {window!r}")
        return ws, self.window_cfg[window]

    def _staffed(self, window: str) -> WindowState:
        ws, _ = self._window(window)
        if ws.clerk is None:
            raise Refused("not_logged_in", "请先登录", "no clerk is logged in at this window")
        return ws

    def _active(self, window: str) -> WindowState:
        ws = self._staffed(window)
        if ws.paused:
            raise Refused("window_paused", "窗口已暂停服务", "the window is paused")
        return ws

    def _current(self, ws: WindowState) -> Ticket:
        if ws.current is None:
            raise Refused("no_current_ticket", "当前没有正在办理的号", "no current ticket")
        return self.tickets[ws.current]

    def _ticket_by_number(self, number: str) -> Ticket:
        tid = self.by_number.get(number.upper())
        if tid is None or tid not in self.tickets:
            raise Refused("unknown_ticket", f"今天没有{number}号", f"no ticket {number} today")
        return self.tickets[tid]

    def ticket(self, number: str) -> Ticket | None:
        tid = self.by_number.get(number.upper())
        return self.tickets.get(tid) if tid else None

    # ------------------------------------------------------------------ estimates
    def open_windows(self, service: str) -> int:
        return sum(1 for w in self.windows_for[service]
                   if self.windows[w].clerk is not None and not self.windows[w].paused)

    def avg_service_min(self, service: str) -> float:
        samples = self.durations[service]
        return sum(samples) / len(samples) if samples else self.services[service].avg_service_min

    def estimate_min(self, service: str, ahead: int) -> int:
        """Estimated wait (预计等候): people ahead × recent service time ÷ open windows."""
        if ahead == 0:
            return 0
        return math.ceil(ahead * self.avg_service_min(service) / max(1, self.open_windows(service)))

    def waiting(self, service: str) -> int:
        return len(self.lines[service])

    def ahead_of(self, ticket: Ticket) -> int:
        if ticket.state is not TicketState.WAITING:
            return 0
        line = self.directed[ticket.target_window] if ticket.target_window else self.lines[ticket.service]
        return line.position(ticket.key)

    def public(self, ticket: Ticket) -> dict[str, Any]:
        """What a citizen may see of a ticket: no ID token, no phone."""
        ahead = self.ahead_of(ticket)
        svc = self.services[ticket.service]
        out = {
            "number": ticket.number, "service": ticket.service, "service_name": svc.name,
            "state": ticket.state.value, "priority": ticket.priority.value,
            "ahead": ahead, "est_wait_min": self.estimate_min(ticket.service, ahead),
            "issued_at": self.local(ticket.issued_at).isoformat(timespec="seconds"),
            "day": ticket.day.isoformat(),
            "window": (ticket.target_window if ticket.state is TicketState.WAITING
                       else ticket.window),
        }
        out["status_path"] = f"/t/{ticket.id}"     # the status page on the hall server
        base = self.config.hall.status_url
        if base:
            out["status_url"] = f"{base.rstrip('/')}/t/{ticket.id}"
        return out

    # ------------------------------------------------------------------ issuing (取号)
    def unavailable(self, service: str, now: datetime) -> Refused | None:
        """Why ``service`` issues no ticket at ``now`` (closed, today's or this segment's
        tickets gone), or None: the kiosk greys it out with this reason."""
        svc = self.services[service]
        local = self.local(now)
        if not calendar.is_open(self.config.hall, svc, local):
            hours = calendar.hours_text(self.config.hall, svc)
            return Refused("service_closed", f"{svc.name}现在不办理（办理时间 {hours}）",
                           f"{svc.name_en or svc.code} is closed now (hours {hours})")
        if self.seq[service] >= svc.daily_cap:
            return Refused("quota_exhausted", f"{svc.name}今日号已取完", "today's tickets are gone")
        segment = calendar.quota_segment(svc, local)
        if segment is not None and self.segment_counts.get((service, segment[0]), 0) >= segment[1].cap:
            return Refused("quota_exhausted", f"{svc.name}本时段号已取完（{segment[1].span}）",
                           f"this time segment's tickets are gone ({segment[1].span})")
        return None

    def take(self, now: datetime, service: str, priority: str | None = None,
             appointment: str | None = None, id_token: str | None = None,
             phone_tail: str | None = None) -> dict[str, Any]:
        """Issue a ticket: prefix + daily sequence, within hours, caps and quotas."""
        self.roll_to(now)
        svc = self.services.get(service)
        if svc is None:
            raise Refused("unknown_service", "没有这项业务", f"unknown service {service!r}")
        local = self.local(now)
        refusal = self.unavailable(service, now)
        if refusal is not None:
            raise refusal
        segment = calendar.quota_segment(svc, local)
        if priority not in (None, "", "ordinary", "green"):
            raise Refused("bad_priority", "无效的优先类别", f"unknown priority {priority!r}")
        cls = Priority.GREEN if priority == "green" else Priority.ORDINARY
        booking = None
        if appointment:
            booking = self.appointments.get(appointment)
            if (booking is None or booking.service != service or booking.day != self.day
                    or booking.ticket is not None):
                raise Refused("appointment_invalid", "预约码无效或已使用",
                              "the appointment code is not valid for this service today")
            if cls is Priority.ORDINARY:
                cls = Priority.APPOINTMENT
        if id_token:
            for tid in self.tokens.get(id_token, ()):
                if self.tickets[tid].service == service:
                    raise Refused("already_waiting", f"您已取{self.tickets[tid].number}号，请勿重复取号",
                                  "this ID already holds a ticket for this service")
        # all checks passed: change state
        self.seq[service] += 1
        self.ordinal += 1
        if segment is not None:
            key = (service, segment[0])
            self.segment_counts[key] = self.segment_counts.get(key, 0) + 1
        number = f"{svc.prefix}{self.seq[service]:03d}"
        t = Ticket(id=f"{self.day:%Y%m%d}-{number}", day=self.day, number=number,
                   seq=self.seq[service], ordinal=self.ordinal, service=service,
                   origin_service=service, priority=cls, state=TicketState.WAITING,
                   issued_at=now, id_token=id_token or None, appointment=appointment or None,
                   phone_tail=phone_tail or None)
        self.restore(t)
        if booking is not None:
            booking.ticket = t.id
            self.changes.appointments[booking.code] = booking
        self._touch(t)
        self._emit("issued", now, t, priority=cls.value)
        return {"ticket": self.public(t)}

    def restore(self, t: Ticket) -> None:
        """Index a live ticket; also how storage rebuilds the state after a restart."""
        self.tickets[t.id] = t
        if t.day == self.day:
            self.by_number[t.number] = t.id
        if t.id_token and not t.state.terminal:
            self.tokens.setdefault(t.id_token, set()).add(t.id)
        if t.state is TicketState.WAITING:
            self._enqueue(t)

    def _enqueue(self, t: Ticket) -> None:
        (self.directed[t.target_window] if t.target_window else self.lines[t.service]).add(t.key)

    def _dequeue(self, t: Ticket) -> None:
        (self.directed[t.target_window] if t.target_window else self.lines[t.service]).remove(t.key)

    def add_appointment(self, now: datetime, code: str, service: str, day: str | date) -> dict:
        """Register a booking (预约) so its code can check in at a kiosk on its day."""
        self.roll_to(now)
        if service not in self.services:
            raise Refused("unknown_service", "没有这项业务", f"unknown service {service!r}")
        d = day if isinstance(day, date) else date.fromisoformat(day)
        if not code or code in self.appointments:
            raise Refused("appointment_exists", "预约码已存在", "this appointment code exists")
        booking = Appointment(code=code, service=service, day=d)
        self.appointments[code] = booking
        self.changes.appointments[code] = booking
        self._emit("appointment_added", now, service=service, day=d.isoformat())
        return {"appointment": code}

    def cancel(self, now: datetime, number: str) -> dict:
        """A citizen gives up a waiting or held ticket (取消)."""
        self.roll_to(now)
        t = self._ticket_by_number(number)
        if t.state not in (TicketState.WAITING, TicketState.HELD):
            raise Refused("ticket_not_waiting", f"{t.number}号不在等候中", "the ticket is not waiting")
        if t.state is TicketState.WAITING:
            self._dequeue(t)
        self._finish(t, TicketState.CANCELLED, now)
        self._emit("cancelled", now, t)
        return {"ticket": self.public(t)}

    # ------------------------------------------------------------------ clerks (考勤, AB角)
    def login(self, now: datetime, window: str, staff: str) -> dict:
        self.roll_to(now)
        ws, _ = self._window(window)
        clerk = self.clerks.get(staff)
        if clerk is None:
            raise Refused("unknown_staff", f"工号{staff}不存在", f"unknown staff {staff!r}")
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
        elsewhere = next((w.id for w in self.windows.values() if w.clerk == staff), None)
        if elsewhere is not None:
            raise Refused("staff_elsewhere", f"{clerk.name}已在{elsewhere}号窗口登录",
                          f"this clerk is logged in at window {elsewhere}")
        att = Attendance(id=f"{staff}@{window}@{now.timestamp():.6f}", staff=staff, window=window,
                         role=role, login_at=now)
        self.attendance[att.id] = att
        self.changes.attendance[att.id] = att
        ws.clerk, ws.attendance_id, ws.logged_in_at, ws.paused = staff, att.id, now, False
        self._touch_window(ws)
        self._emit("login", now, window=window, clerk=staff, role=role)
        return {"window": window, "staff": staff, "role": role}

    def logout(self, now: datetime, window: str) -> dict:
        self.roll_to(now)
        ws = self._staffed(window)
        if ws.current is not None:
            t = self.tickets[ws.current]
            raise Refused("ticket_in_progress", f"请先办结或挂起{t.number}号",
                          "finish or hold the current ticket first")
        staff = ws.clerk
        att = self.attendance.pop(ws.attendance_id, None) if ws.attendance_id else None
        if att is not None:
            att.logout_at = now
            self.changes.attendance[att.id] = att
        ws.clerk, ws.attendance_id, ws.logged_in_at, ws.paused = None, None, None, False
        self._touch_window(ws)
        self._emit("logout", now, window=window, clerk=staff)
        return {"window": window}

    def pause(self, now: datetime, window: str) -> dict:
        self.roll_to(now)
        ws = self._staffed(window)
        if not ws.paused:
            ws.paused = True
            self._touch_window(ws)
            self._emit("paused", now, window=window, clerk=ws.clerk)
        return {"window": window, "paused": True}

    def resume(self, now: datetime, window: str) -> dict:
        self.roll_to(now)
        ws = self._staffed(window)
        if ws.paused:
            ws.paused = False
            self._touch_window(ws)
            self._emit("resumed", now, window=window, clerk=ws.clerk)
        return {"window": window, "paused": False}

    # ------------------------------------------------------------------ calling (叫号)
    def _pick(self, ws: WindowState, cfg: Window) -> Ticket | None:
        """Which waiting ticket this window calls next.

        Tickets transferred to this window come first, then (``green_first``) the earliest
        green-channel ticket of its services, then its ``policy``.
        """
        key = self.directed[ws.id].head()
        if key is None and cfg.green_first:
            heads = [h for s in cfg.services if (h := self.lines[s].head()) and h[0] == 0]
            key = min(heads, key=lambda h: h[1]) if heads else None
        if key is None:
            key = self._pick_by_policy(ws, cfg)
        return self.tickets[key[2]] if key else None

    def _pick_by_policy(self, ws: WindowState, cfg: Window):
        if cfg.policy == "order":
            for s in cfg.services:
                if (h := self.lines[s].head()) is not None:
                    return h
            return None
        if cfg.policy == "fifo":
            heads = [h for s in cfg.services if (h := self.lines[s].head()) is not None]
            return min(heads, key=lambda h: (h[0], h[1])) if heads else None
        # weighted: smooth weighted round robin over services with someone waiting
        eligible = [(s, w) for s, w in zip(cfg.services, cfg.weights, strict=True) if self.lines[s]]
        if not eligible:
            return None
        total = sum(w for _, w in eligible)
        best = None
        for s, w in eligible:
            ws.credits[s] = ws.credits.get(s, 0) + w
            if best is None or ws.credits[s] > ws.credits[best]:
                best = s
        ws.credits[best] -= total
        return self.lines[best].head()

    def _call(self, t: Ticket, ws: WindowState, now: datetime, how: str) -> dict:
        if t.state is TicketState.WAITING:
            self._dequeue(t)
        t.state = TicketState.CALLED
        t.window, t.target_window, t.clerk = ws.id, None, ws.clerk
        t.called_at, t.recalls = now, 0
        ws.current = t.id
        self._touch(t)
        self._emit("called", now, t, window=ws.id, clerk=ws.clerk, how=how)
        return {"window": ws.id, "ticket": self.public(t)}

    def _finish(self, t: Ticket, state: TicketState, now: datetime) -> None:
        """Move a ticket to a terminal state and free whatever held it."""
        if t.state.at_window and t.window is not None and self.windows[t.window].current == t.id:
            self.windows[t.window].current = None
        if state is TicketState.DONE and t.called_at is not None:
            self.durations[t.service].append((now - t.called_at).total_seconds() / 60)
        t.state = state
        t.finished_at = now
        if t.id_token:
            live = self.tokens.get(t.id_token)
            if live is not None:
                live.discard(t.id)
                if not live:
                    del self.tokens[t.id_token]
        self._touch(t)

    def _complete_current(self, ws: WindowState, now: datetime) -> None:
        if ws.current is not None:
            t = self.tickets[ws.current]
            self._finish(t, TicketState.DONE, now)
            self._emit("done", now, t, window=ws.id, clerk=ws.clerk)

    def call_next(self, now: datetime, window: str) -> dict:
        """Finish the current ticket, if any, and call the next one (下一位)."""
        self.roll_to(now)
        ws = self._active(window)
        t = self._pick(ws, self.window_cfg[window])
        if t is None:
            raise Refused("queue_empty", "当前无人等候", "nobody is waiting")
        self._complete_current(ws, now)
        return self._call(t, ws, now, "next")

    def call_number(self, now: datetime, window: str, number: str) -> dict:
        """Call a specific waiting ticket, or call back a held one (特呼 / 挂起回呼)."""
        self.roll_to(now)
        ws = self._active(window)
        t = self._ticket_by_number(number)
        cfg = self.window_cfg[window]
        if t.id == ws.current:
            raise Refused("ticket_at_window", f"{t.number}号正在本窗口", "already at this window")
        if t.state is TicketState.WAITING:
            allowed = t.target_window == window or (t.target_window is None and t.service in cfg.services)
        elif t.state is TicketState.HELD:
            allowed = t.window == window or t.service in cfg.services
        else:
            raise Refused("ticket_not_callable", f"{t.number}号不在等候或挂起中",
                          "the ticket is neither waiting nor held")
        if not allowed:
            raise Refused("ticket_not_for_window", f"{t.number}号不在本窗口办理",
                          "this window does not serve that ticket")
        self._complete_current(ws, now)
        return self._call(t, ws, now, "held" if t.state is TicketState.HELD else "number")

    def recall(self, now: datetime, window: str) -> dict:
        """Re-announce the current ticket (重呼); past ``max_recalls`` it becomes a no-show."""
        self.roll_to(now)
        ws = self._staffed(window)
        t = self._current(ws)
        if t.state is not TicketState.CALLED:
            raise Refused("ticket_serving", f"{t.number}号已在办理", "the ticket is being served")
        if t.recalls >= self.config.hall.max_recalls:
            self._finish(t, TicketState.NO_SHOW, now)
            self._emit("no_show", now, t, window=ws.id, clerk=ws.clerk, reason="recall_limit")
            return {"window": ws.id, "ticket": self.public(t), "no_show": True}
        t.recalls += 1
        self._touch(t)
        self._emit("recalled", now, t, window=ws.id, clerk=ws.clerk, recalls=t.recalls)
        return {"window": ws.id, "ticket": self.public(t), "recalls": t.recalls}

    def no_show(self, now: datetime, window: str) -> dict:
        """Mark the called ticket as absent (过号)."""
        self.roll_to(now)
        ws = self._staffed(window)
        t = self._current(ws)
        self._finish(t, TicketState.NO_SHOW, now)
        self._emit("no_show", now, t, window=ws.id, clerk=ws.clerk, reason="key")
        return {"window": ws.id, "ticket": self.public(t)}

    def start(self, now: datetime, window: str) -> dict:
        """The called citizen has arrived: serving (开始办理)."""
        self.roll_to(now)
        ws = self._staffed(window)
        t = self._current(ws)
        if t.state is TicketState.CALLED:
            t.state, t.served_at = TicketState.SERVING, now
            self._touch(t)
            self._emit("serving", now, t, window=ws.id, clerk=ws.clerk)
        return {"window": ws.id, "ticket": self.public(t)}

    def done(self, now: datetime, window: str) -> dict:
        """Finish the current ticket without calling another (办结)."""
        self.roll_to(now)
        ws = self._staffed(window)
        t = self._current(ws)
        self._complete_current(ws, now)
        return {"window": ws.id, "ticket": self.public(t)}

    def hold(self, now: datetime, window: str) -> dict:
        """Park the current ticket (挂起), to be called back by number later."""
        self.roll_to(now)
        ws = self._staffed(window)
        t = self._current(ws)
        t.state = TicketState.HELD
        ws.current = None
        self._touch(t)
        self._emit("held", now, t, window=ws.id, clerk=ws.clerk)
        return {"window": ws.id, "ticket": self.public(t)}

    def transfer(self, now: datetime, window: str, to_service: str | None = None,
                 to_window: str | None = None) -> dict:
        """Hand the current ticket on (转移) to another service's line or to one window,
        keeping its number and its original issue time."""
        self.roll_to(now)
        ws = self._staffed(window)
        t = self._current(ws)
        if bool(to_service) == bool(to_window):
            raise Refused("bad_transfer", "请选择转往的业务或窗口", "give to_service or to_window")
        if to_service:
            if to_service not in self.services:
                raise Refused("unknown_service", "没有这项业务", f"unknown service {to_service!r}")
            if to_service == t.service:
                raise Refused("bad_transfer", "已是该业务", "the ticket is already for that service")
        else:
            self._window(to_window)
            if to_window == window:
                raise Refused("bad_transfer", "不能转给本窗口", "cannot transfer to this window")
        ws.current = None
        from_service = t.service
        t.state = TicketState.WAITING
        t.recalls = 0
        t.target_window = to_window or None
        if to_service:
            t.service = to_service
        self._enqueue(t)
        self._touch(t)
        self._emit("transferred", now, t, window=ws.id, clerk=ws.clerk, from_service=from_service,
                   to_service=to_service, to_window=to_window)
        return {"window": ws.id, "ticket": self.public(t)}

    # ------------------------------------------------------------------ 好差评
    def evaluate(self, now: datetime, window: str) -> dict:
        """Ask the citizen at the window to rate the service of the current ticket. Asking
        again for the same ticket returns the open session; a session still open for an
        earlier citizen is closed as unrated first (one evaluator shows one prompt)."""
        self.roll_to(now)
        ws = self._staffed(window)
        t = self._current(ws)
        earlier = self.open_evaluation(window)
        if earlier is not None and earlier.ticket == t.id:
            return {"evaluation": self.evaluation_view(earlier)}
        if earlier is not None:
            self.expire_evaluation(now, earlier.id)
        ev = Evaluation(id=f"{t.id}@{window}@{now.timestamp():.3f}", window=window,
                        clerk=ws.clerk, ticket=t.id, number=t.number, service=t.service,
                        opened_at=now, timeout_s=self.config.hall.evaluation_timeout_s)
        self.evaluations[ev.id] = ev
        self.changes.evaluations[ev.id] = ev
        self._emit("evaluation_opened", now, t, window=window, clerk=ws.clerk, session=ev.id)
        return {"evaluation": self.evaluation_view(ev)}

    def rate(self, now: datetime, window: str, session: str, level: str,
             reasons: str | None = None) -> dict:
        """The citizen's one rating for an open session (一次一评)."""
        self.roll_to(now)
        ev = self.evaluations.get(session)
        if ev is None or ev.window != window:
            raise Refused("session_closed", "本次评价已结束", "no open rating session here")
        if level not in LEVELS:
            raise Refused("bad_level", "无效的评价", f"unknown level {level!r}")
        picked = [r for r in (reasons or "").split(",") if r]
        if any(r not in REASONS for r in picked) or (picked and level not in BAD_LEVELS):
            raise Refused("bad_reasons", "无效的原因", "reasons only for the two bad levels")
        ev.level, ev.reasons, ev.closed_at = level, picked, now
        del self.evaluations[session]
        self.changes.evaluations[ev.id] = ev
        self._emit("rated", now, window=window, clerk=ev.clerk, session=ev.id, level=level,
                   ticket_number=ev.number)
        return {"evaluation": self.evaluation_view(ev)}

    def expire_evaluation(self, now: datetime, session: str) -> dict:
        """Close a session nobody rated as unrated (未评价), never as a default rating."""
        self.roll_to(now)
        ev = self.evaluations.pop(session, None)
        if ev is None:
            return {"evaluation": None}
        ev.closed_at = now
        self.changes.evaluations[ev.id] = ev
        self._emit("unrated", now, window=ev.window, clerk=ev.clerk, session=ev.id)
        return {"evaluation": self.evaluation_view(ev)}

    def evaluation_view(self, ev: Evaluation) -> dict[str, Any]:
        return {"session": ev.id, "window": ev.window, "ticket": ev.number,
                "open": ev.open, "level": ev.level, "timeout_s": ev.timeout_s,
                "opened_at": ev.opened_at.isoformat()}

    def open_evaluation(self, window: str) -> Evaluation | None:
        return next((ev for ev in self.evaluations.values() if ev.window == window), None)

    # ------------------------------------------------------------------ views
    def window_view(self, window: str) -> dict[str, Any]:
        ws = self.windows[window]
        cfg = self.window_cfg[window]
        if ws.clerk is None:
            state = "closed"
        elif ws.paused:
            state = "paused"
        else:
            state = "serving" if ws.current else "idle"
        cur = self.tickets[ws.current] if ws.current else None
        waiting = len(self.directed[window]) + sum(len(self.lines[s]) for s in cfg.services)
        return {"window": window, "name": cfg.name, "state": state, "clerk": ws.clerk,
                "ticket": cur.number if cur else None,
                "ticket_state": cur.state.value if cur else None, "waiting": waiting}

    def services_view(self) -> list[dict[str, Any]]:
        return [{"service": s.code, "name": s.name, "waiting": len(self.lines[s.code]),
                 "est_wait_min": self.estimate_min(s.code, len(self.lines[s.code])),
                 "issued": self.seq[s.code], "daily_cap": s.daily_cap,
                 "open_windows": self.open_windows(s.code)}
                for s in self.config.services]

    def rollover(self, now: datetime) -> dict:
        """Roll over to the local day of ``now`` if midnight has passed."""
        self.roll_to(now)
        return {"day": self.day.isoformat()}

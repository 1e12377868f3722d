"""One hall's live state (大厅状态), composed of one part per concern, and the one entry point
for commands: ``apply`` checks, changes and records events, or raises ``Refused`` with nothing
changed. Everything that changed is collected in ``changes`` for the engine to persist.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from controller.config import HallConfig, Window
from controller.core import (
    calendar,
    cases,
    configuration,
    estimate,
    followups,
    matters,
    ratings,
    tickets,
    tiers,
    windows,
)
from controller.core.calendar import WorkCalendar
from controller.core.changes import Changes
from controller.core.commands import COMMANDS, SYSTEM, Command, ExpireEvaluation, Rollover, Source
from controller.core.configuration import StoredConfig, live_data
from controller.core.events import Event, EventKind
from controller.core.model import Ticket, TicketState
from controller.core.ratings import Evaluation, Ratings
from controller.core.status_link import StatusLinks
from controller.core.tickets import Tickets
from controller.core.windows import Windows

Handler = Callable[["HallState", Any, datetime], dict[str, Any]]


def _rollover(hall: HallState, cmd: Rollover, now: datetime) -> dict[str, Any]:
    return {"day": hall.day.isoformat()}      # ``apply`` has rolled the day over already


HANDLERS: dict[type[Command], Handler] = {
    **tickets.HANDLERS, **windows.HANDLERS, **ratings.HANDLERS, **configuration.HANDLERS,
    **matters.HANDLERS, **cases.HANDLERS, **followups.HANDLERS, **tiers.HANDLERS,
    Rollover: _rollover}
assert set(HANDLERS) == set(COMMANDS.values()), "every command needs exactly one handler"


class HallState:
    """One hall's live queue state for its current day."""

    def __init__(self, config: HallConfig, day: date, revision: int = 0) -> None:
        self.tz = config.hall.tz
        self.day = day
        self.queue = Tickets()
        self.desk = Windows()
        self.ratings = Ratings()
        self.catalogue = matters.Catalogue()
        self.cases = cases.Cases()
        #: 差评 follow-ups still open, by rating session
        self.followups: dict[str, followups.Followup] = {}
        #: the last message applied from each hall above or below (``controller.core.tiers``)
        self.inbox: dict[tuple[str, str], tiers.InboxMark] = {}
        self.changes = Changes()
        self._source = SYSTEM
        #: the status pages' addresses: a key of this state's own until the engine gives it
        #: the hall's (``Engine(status_key=…)``)
        self.links = StatusLinks(secrets.token_bytes(32))
        #: the last stamp given to a record id, in microseconds (see ``stamp``)
        self.last_stamp = 0
        #: the live configuration as stored (its revision counts the changes)
        self.stored_config = StoredConfig(revision, live_data(config))
        self._configure(config)
        self.recount()

    def _configure(self, config: HallConfig) -> None:
        self.config = config
        self.services = {s.code: s for s in config.services}
        self.window_cfg: dict[str, Window] = config.window_by_id
        self.clerks = {c.id: c for c in config.clerks}
        self.windows_for = config.windows_for
        self.calendar = WorkCalendar(config.hall)
        self.queue.configure(list(self.services), list(self.window_cfg))
        self.desk.configure(list(self.window_cfg))

    def reconfigure(self, config: HallConfig) -> None:
        """Swap in a new live configuration, checked already (``configuration.check_strands``):
        lines and windows follow it, today's numbering of each service is counted anew."""
        self._configure(config)
        self.recount()
        self.stored_config.revision += 1
        self.stored_config.data = live_data(config)
        self.changes.touch(self.stored_config)

    def recount(self) -> None:
        """Today's numbering, quota segments and recent service times, from today's tickets:
        after a restart and after the services changed."""
        q = self.queue
        q.seq, q.ordinal = dict.fromkeys(self.services, 0), 0
        q.segment_counts.clear()
        q.durations = {s: deque(maxlen=self.config.hall.recent_samples) for s in self.services}
        done: list[tuple[datetime, str, float]] = []
        for t in sorted((t for t in q.all.values() if t.day == self.day), key=lambda t: t.ordinal):
            svc = self.services.get(t.origin_service)
            segment = svc and calendar.quota_segment(svc, self.local(t.issued_at))
            q.count_issued(t, segment[0] if segment else None)
            if t.state is TicketState.DONE and t.called_at and t.finished_at and t.service in q.durations:
                done.append((t.finished_at, t.service, (t.finished_at - t.called_at).total_seconds() / 60))
        for _, service, minutes in sorted(done):
            q.durations[service].append(minutes)

    # ------------------------------------------------------------------ the one entry point
    def apply(self, command: Command, now: datetime, source: Source = SYSTEM) -> dict[str, Any]:
        """Run one command at ``now`` for ``source``; raises ``Refused`` with nothing changed.
        Every command first rolls the day over if the hall's midnight has passed."""
        handler = HANDLERS[type(command)]
        self._source = source
        self.roll_to(now)
        return handler(self, command, now)

    def stamp(self, now: datetime) -> str:
        """``now`` in microseconds, made strictly increasing within the hall: for the ids of
        records (a login session, a rating session) that two commands of one instant must not
        share. Storage restores ``last_stamp`` after a restart."""
        us = int(now.timestamp() * 1_000_000)
        self.last_stamp = max(us, self.last_stamp + 1)
        return f"{self.last_stamp // 1_000_000}.{self.last_stamp % 1_000_000:06d}"

    def drain(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        self.cases.touched.update(case.number for case in changes.of(cases.Case))
        return changes

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("times given to the core must be timezone-aware")
        return now.astimezone(self.tz)

    def emit(self, kind: EventKind, now: datetime, ticket: Ticket | None = None, *,
             ref: tuple[str, str, str] | None = None, window: str | None = None,
             clerk: str | None = None, **payload: Any) -> None:
        """Record an event of the command being applied (``ref``: a ticket's id, number and
        service when the ticket object is not at hand)."""
        if ticket is not None:
            ref = (ticket.id, ticket.number, ticket.service)
        tid, number, service = ref or (None, None, None)
        self.changes.events.append(Event(
            kind=kind, at=now, day=self.day, actor=self._source.actor, origin=self._source.origin,
            ticket=tid, number=number, service=service, window=window, clerk=clerk,
            payload=payload))

    def roll_to(self, now: datetime) -> None:
        """Daily rollover at the hall's local midnight (日切): numbering restarts, history is
        kept, yesterday's waiting and held tickets are closed as not served. Whichever command
        notices midnight first, the rollover is the system's."""
        new_day = self.local(now).date()
        if new_day <= self.day:
            return
        source, self._source = self._source, SYSTEM
        try:
            self._roll(now, new_day)
        finally:
            self._source = source

    def _roll(self, now: datetime, new_day: date) -> None:
        old_day = self.day
        left = self.queue.new_day(new_day)
        for t in left:
            tickets.finish(self, t, TicketState.NOT_SERVED, now)
            self.emit(EventKind.CLOSED, now, t, window=t.window, reason="rollover")
        self.queue.forget_finished()
        self.cases.forget_finished(new_day)
        self.followups = {k: f for k, f in self.followups.items() if f.state in followups.OPEN}
        self.day = new_day
        self.changes.day = new_day
        self.emit(EventKind.ROLLOVER, now, from_day=old_day.isoformat(), to_day=new_day.isoformat(),
                  closed=len(left))

    def deadlines(self) -> dict[str, tuple[datetime, Command]]:
        """The timers this state needs, by name: the next local midnight's rollover, each
        open rating session's time-out and each open case's next warning colour. The engine's
        scheduler follows them."""
        midnight = datetime.combine(self.day + timedelta(days=1), time(0), self.tz)
        out: dict[str, tuple[datetime, Command]] = {"rollover": (midnight, Rollover())}
        for ev in self.ratings.open.values():
            out[f"rating:{ev.id}"] = (ev.deadline, ExpireEvaluation(session=ev.id))
        out.update(cases.timers(self))
        out.update(followups.timers(self))
        return out

    @property
    def actor(self) -> str:
        """Who sends the command being applied (``user:li``, ``device:kiosk-1``, ``system``)."""
        return self._source.actor

    # ------------------------------------------------------------------ reading
    @property
    def windows(self) -> list[str]:
        """The windows in service (not disabled), in the configuration's order."""
        return [w.id for w in self.window_cfg.values() if w.enabled]

    def ticket(self, number: str) -> Ticket | None:
        return self.queue.get(number)

    def ticket_by_token(self, token: str) -> Ticket | None:
        """The live ticket whose status page is ``/t/{token}`` (see ``status_link``)."""
        found = self.links.find(token, self.queue.all)
        return self.queue.all[found] if found is not None else None

    def open_evaluation(self, window: str) -> Evaluation | None:
        return self.ratings.at(window)

    def open_windows(self, service: str) -> int:
        return self.desk.open_count(self.windows_for[service])

    def serving(self, service: str) -> list[str]:
        """The windows really serving ``service`` now: enabled, a clerk logged in, not paused."""
        return [w for w in self.windows_for[service]
                if self.window_cfg[w].enabled and (ws := self.desk.windows[w]).clerk is not None
                and not ws.paused]

    def serving_capacity(self, service: str) -> float:
        """The windows really serving ``service`` now, each counted for its share of
        ``service`` when it serves several (``estimate.window_share``)."""
        waiting = {s: len(line) for s, line in self.queue.lines.items()}
        return estimate.capacity(
            estimate.window_share(service, (cfg := self.window_cfg[w]).services, cfg.weights,
                                  cfg.policy, waiting)
            for w in self.serving(service))

    def avg_service_min(self, service: str) -> float:
        samples = self.queue.durations[service]
        return sum(samples) / len(samples) if samples else self.services[service].avg_service_min

    def wait_range(self, service: str, ahead: int) -> estimate.WaitRange | None:
        """Estimated wait (预计等候) as a stated range of minutes on the hall's clock, or None
        when no window serves ``service`` now (see ``core/estimate.py``)."""
        free = sum(1 for w in self.serving(service) if self.desk.windows[w].current is None)
        return estimate.estimate(ahead, self.queue.durations[service], self.serving_capacity(service),
                                 self.services[service].avg_service_min, free)

    def wait_fields(self, service: str, ahead: int) -> dict[str, Any]:
        """``est_wait_min`` (the range's midpoint; with no window serving, the midpoint were one
        window to serve, as devices of protocol v1 expect a number) and ``est_wait_range``
        (``[low, high]`` minutes, or None: no window serves it now)."""
        stated = self.wait_range(service, ahead)
        if stated is None:
            one = estimate.estimate(ahead, self.queue.durations[service], 1.0,
                                    self.services[service].avg_service_min)
            return {"est_wait_min": one.midpoint if one else 0, "est_wait_range": None}
        return {"est_wait_min": stated.midpoint, "est_wait_range": stated.as_list()}

    def estimate_min(self, service: str, ahead: int) -> int:
        """Estimated wait (预计等候) as one number: ``est_wait_min`` of ``wait_fields``."""
        return int(self.wait_fields(service, ahead)["est_wait_min"])

    def waiting(self, service: str) -> int:
        return len(self.queue.lines[service])

    def unavailable(self, service: str, now: datetime):  # noqa: ANN201 - Refused | None
        return tickets.unavailable(self, service, now)

    def public(self, ticket: Ticket) -> dict[str, Any]:
        """What a citizen may see of a ticket: no ID token, no phone, and not the address of
        its status page (only the one who took it is told that: ``status_link``)."""
        ahead = self.queue.ahead_of(ticket)
        return {
            "number": ticket.number, "service": ticket.service,
            "service_name": self.services[ticket.service].name,
            "state": ticket.state.value, "priority": ticket.priority.value,
            "ahead": ahead,
            **(self.wait_fields(ticket.service, ahead) if ticket.state is TicketState.WAITING
               else {"est_wait_min": 0, "est_wait_range": [0, 0]}),
            "issued_at": self.local(ticket.issued_at).isoformat(timespec="seconds"),
            "day": ticket.day.isoformat(),
            "window": (ticket.target_window if ticket.state is TicketState.WAITING
                       else ticket.window),
        }

    def status_link(self, ticket: Ticket) -> dict[str, str]:
        """The address of the ticket's status page: on the hall server (``status_path``) and,
        when the hall sets ``status_url``, in full (for the printed QR code)."""
        path = f"/t/{self.links.token(ticket.id)}"
        base = self.config.hall.status_url
        return {"status_path": path, **({"status_url": f"{base.rstrip('/')}{path}"} if base else {})}

    def notices(self) -> list[dict[str, str]]:
        """The hall's notices in force (公告), for the hall screen and the kiosks."""
        return [{"id": n.id, "text": n.text, "text_en": n.text_en}
                for n in self.config.notices if n.enabled]

    def window_view(self, window: str) -> dict[str, Any]:
        ws = self.desk.windows[window]
        cfg = self.window_cfg[window]
        if ws.clerk is None:
            state = "closed"
        elif ws.paused:
            state = "paused"
        else:
            state = "serving" if ws.current else "idle"
        cur = self.queue.all[ws.current] if ws.current else None
        q = self.queue
        waiting = len(q.directed[window]) + sum(len(q.lines[s]) for s in cfg.services)
        return {"window": window, "name": cfg.name, "state": state, "clerk": ws.clerk,
                "ticket": cur.number if cur else None,
                "ticket_state": cur.state.value if cur else None, "waiting": waiting}

    def services_view(self) -> list[dict[str, Any]]:
        return [{"service": s.code, "name": s.name, "waiting": self.waiting(s.code),
                 **self.wait_fields(s.code, self.waiting(s.code)),
                 "issued": self.queue.seq[s.code], "daily_cap": s.daily_cap,
                 "open_windows": self.open_windows(s.code)}
                for s in self.config.services if s.enabled]

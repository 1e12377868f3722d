"""Property-based tests: random command sequences from many windows and doors keep the hall
sound."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from controller.core.commands import (
    LEVELS,
    REASONS,
    SYSTEM,
    AddAppointment,
    CallNext,
    CallNumber,
    Cancel,
    Command,
    Done,
    Evaluate,
    ExpireEvaluation,
    Hold,
    Login,
    Logout,
    NoShow,
    Origin,
    Pause,
    Rate,
    Recall,
    Resume,
    Rollover,
    Source,
    Start,
    Take,
    Transfer,
)
from controller.core.errors import Refused
from controller.core.events import Event, EventKind
from controller.core.hall import HallState
from controller.core.model import Attendance, Priority, Ticket, TicketState
from controller.core.ratings import BAD_LEVELS, Evaluation
from tests.helpers import MONDAY_9, check_invariants, new_hall, snapshot, token

WINDOWS = ["1", "2", "3", "4"]
STAFF = ["1001", "1002", "1003", "1004"]
SERVICES = ["A", "B"]
CODES = ["BK1", "BK2", "BK3"]
SOURCES = [SYSTEM, Source("device:caller-1", Origin.MQTT), Source("user:alice", Origin.HTTP),
           Source("device:kiosk-1", Origin.GATEWAY), Source("staff:1001", Origin.ADMIN)]
KEYS = {"recall": Recall, "no_show": NoShow, "hold": Hold, "done": Done, "start": Start,
        "pause": Pause, "resume": Resume}
#: Each command runs a millisecond after the last (some in the same instant would be as good:
#: record ids stay unique, see test_core_evaluation and test_core_calls).
TICK = timedelta(milliseconds=1)

sources = st.sampled_from(SOURCES)
#: A window by its id, or "busy": one with a clerk (for a call) or a ticket at it (for a key).
windows = st.sampled_from([*WINDOWS, "busy", "busy"])
#: Mostly a clerk at their own window, sometimes anyone anywhere (refused, or an AB角 login).
logins = st.one_of(st.sampled_from(list(zip(WINDOWS, STAFF, strict=True))),
                   st.tuples(st.sampled_from([*WINDOWS, "9"]), st.sampled_from([*STAFF, "0000"])))
reasons = st.one_of(st.just(()), st.lists(st.sampled_from(REASONS), max_size=3).map(tuple))


def check_events(events: list[Event], source: Source, day_before: date, hall: HallState) -> None:
    """Every event of one command: the door and actor it came by (the rollover a command sets
    off is the system's), and the hall's day when it happened (yesterday's for tickets closed at
    the rollover, the new day from the rollover on)."""
    day = day_before
    for e in events:
        rolling = e.kind in (EventKind.ROLLOVER, EventKind.CLOSED) and day == day_before \
            and any(x.kind is EventKind.ROLLOVER for x in events)
        expected = SYSTEM if rolling else source
        assert (e.actor, e.origin) == (expected.actor, expected.origin), e
        if e.kind is EventKind.ROLLOVER:
            assert e.payload["from_day"] == day.isoformat()
            day = date.fromisoformat(e.payload["to_day"])
        elif e.kind is EventKind.CLOSED:
            assert day == day_before, "a ticket closed after the rollover"
        assert e.day == day, e
    assert day == hall.day


class HallMachine(RuleBasedStateMachine):
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.hall = new_hall()
        self.now = MONDAY_9
        self.known: dict[str, TicketState] = {}   # every ticket ever issued, last state seen
        self.first_calls: dict[str, datetime] = {}   # every ticket ever called: its first call
        self.issued_today = 0
        self.day = self.hall.day
        self.rated: dict[str, Evaluation] = {}    # every closed rating session
        self.records: dict[tuple[type, str], Any] = {}   # sessions and attendance, by id

    # -------------------------------------------------------------- running a command
    def pick(self, window: str, staffed: bool = False) -> str:
        """``window``, or for "busy" one with a ticket at it (``staffed``: with a clerk)."""
        if window != "busy":
            return window
        desk = self.hall.desk.windows
        busy = [w for w in WINDOWS if (desk[w].clerk if staffed else desk[w].current)]
        return busy[len(self.known) % len(busy)] if busy else WINDOWS[0]

    def run(self, command: Command, source: Source = SYSTEM) -> dict | None:
        self.now += TICK
        before = snapshot(self.hall)
        day_before = self.hall.day
        try:
            out = self.hall.apply(command, self.now, source)
        except Refused:
            assert snapshot(self.hall) == before, f"refused {command!r} changed the hall"
            return None
        self.absorb(source, day_before)
        return out

    def absorb(self, source: Source, day_before: date) -> None:
        changes = self.hall.drain()
        check_events(changes.events, source, day_before, self.hall)
        if self.hall.day != self.day:
            assert changes.day == self.hall.day
            self.day, self.issued_today = self.hall.day, 0
        for t in changes.of(Ticket):
            self.known[t.id] = t.state
        for e in changes.events:
            if e.kind is EventKind.CALLED:
                first = self.first_calls.setdefault(e.ticket, e.at)
                assert e.payload["first"] == (first == e.at)
                assert e.payload["first_called_at"] == first.isoformat()
        for kind in (Evaluation, Attendance):
            for record in changes.of(kind):
                seen = self.records.setdefault((kind, record.id), record)
                assert seen is record, f"two {kind.__name__} records share the id {record.id}"
        for ev in changes.of(Evaluation):
            if not ev.open:
                assert ev.id not in self.rated or self.rated[ev.id] is ev
                self.rated[ev.id] = ev

    # -------------------------------------------------------------- opening the hall
    @initialize(staffed=st.sets(st.sampled_from(WINDOWS)),
                services=st.lists(st.sampled_from(SERVICES), max_size=8), source=sources)
    def open_the_hall(self, staffed, services, source):
        """Some clerks at their windows and some citizens waiting, so that the rules below
        mostly act on a working hall."""
        for window in sorted(staffed):
            assert self.run(Login(window=window, staff=STAFF[WINDOWS.index(window)]), source)
        for service in services:
            self.take(service, None, None, None, None, source)

    # -------------------------------------------------------------- tickets and bookings
    @rule(service=st.sampled_from([*SERVICES, *SERVICES, "Z"]),
          priority=st.sampled_from([None, None, None, "green"]),
          person=st.sampled_from([None, None, 1, 2, 3]),
          appointment=st.sampled_from([None, None, None, *CODES]),
          phone_tail=st.sampled_from([None, "0123"]), source=sources)
    def take(self, service, priority, person, appointment, phone_tail, source):
        booking = self.hall.queue.appointments.get(appointment) if appointment else None
        usable = booking is not None and booking.service == service and \
            booking.day == self.hall.day and booking.ticket is None
        out = self.run(Take(service=service, priority=priority, appointment=appointment,
                            id_token=token(person) if person else None, phone_tail=phone_tail),
                       source)
        if out is None:
            return
        self.issued_today += 1
        t = self.hall.ticket(out["ticket"]["number"])
        assert (t.service, t.id_token, t.phone_tail) == (
            service, token(person) if person else None, phone_tail)
        if appointment:
            assert usable, "a ticket issued on a booking that was not usable"
            assert self.hall.queue.appointments[appointment].ticket == t.id
        expected = Priority.GREEN if priority == "green" else \
            Priority.APPOINTMENT if appointment else Priority.ORDINARY
        assert t.priority is expected

    @rule(code=st.sampled_from(CODES), service=st.sampled_from([*SERVICES, "Z"]),
          days=st.sampled_from([0, 0, 1, -1]), source=sources)
    def add_appointment(self, code, service, days, source):
        exists = code in self.hall.queue.appointments
        day = self.hall.day + timedelta(days=days)
        out = self.run(AddAppointment(code=code, service=service, day=day), source)
        # a booking for a day that has passed is refused (it could never be used)
        assert (out is not None) == (not exists and service in SERVICES and day >= self.hall.day)

    @rule(n=st.integers(1, 12), service=st.sampled_from(SERVICES), source=sources)
    def cancel(self, n, service, source):
        self.run(Cancel(number=f"{service}{n:03d}"), source)

    # -------------------------------------------------------------- windows
    @rule(who=logins, source=sources)
    def login(self, who, source):
        window, staff = who
        self.run(Login(window=window, staff=staff), source)

    @rule(window=st.sampled_from(WINDOWS), source=sources)
    def logout(self, window, source):
        self.run(Logout(window=window), source)

    @rule(window=windows, source=sources)
    def call_next(self, window, source):
        window = self.pick(window, staffed=True)
        hall = self.hall
        cfg = hall.window_cfg[window]
        directed = hall.queue.directed[window].head()
        heads = {s: h for s in cfg.services if (h := hall.queue.lines[s].head())}
        out = self.run(CallNext(window=window), source)
        if out is None:
            return
        t = hall.queue.all[hall.desk.windows[window].current]
        assert t.number == out["ticket"]["number"] and t.state is TicketState.CALLED
        key = t.order
        if directed is not None:
            assert key == directed, "a ticket transferred to this window waits first"
            return
        # always the head of one of its services' lines: priority, then arrival order
        assert key in heads.values(), "called out of priority or arrival order"
        if cfg.green_first and any(h[0] == 0 for h in heads.values()):
            assert key[0] == 0
        elif cfg.policy == "order":
            first = next(s for s in cfg.services if s in heads)
            assert key == heads[first]
        elif cfg.policy == "fifo":
            assert key == min(heads.values(), key=lambda h: (h[0], h[1]))

    @rule(window=windows, op=st.sampled_from(sorted(KEYS)), source=sources)
    def key(self, window, op, source):
        window = self.pick(window, staffed=op in ("pause", "resume"))
        self.run(KEYS[op](window=window), source)

    @rule(window=windows, n=st.integers(1, 12),
          service=st.sampled_from(SERVICES), source=sources)
    def call_number(self, window, n, service, source):
        window = self.pick(window, staffed=True)
        self.run(CallNumber(window=window, number=f"{service}{n:03d}"), source)

    @rule(window=windows, to_service=st.sampled_from([*SERVICES, None]),
          to_window=st.sampled_from([*WINDOWS, None]), source=sources)
    def transfer(self, window, to_service, to_window, source):
        window = self.pick(window)
        self.run(Transfer(window=window, to_service=to_service, to_window=to_window), source)

    # -------------------------------------------------------------- 好差评
    @rule(target=sessions, window=windows, source=sources)
    def evaluate(self, window, source):
        window = self.pick(window)
        ws = self.hall.desk.windows[window]
        earlier = self.hall.open_evaluation(window)
        out = self.run(Evaluate(window=window), source)
        assert (out is None) == (ws.clerk is None or ws.current is None)
        if out is None:
            return multiple()
        ev = self.hall.open_evaluation(window)
        assert ev is not None and ev.id == out["evaluation"]["session"] and ev.ticket == ws.current
        if earlier is not None and earlier.ticket != ws.current:
            assert earlier.id in self.rated and earlier.level is None   # closed as unrated
        return ev.id

    @rule(session=sessions, window=st.sampled_from([None, None, *WINDOWS]),
          level=st.sampled_from(LEVELS), reasons=reasons, source=sources)
    def rate(self, session, window, level, reasons, source):
        """Mostly from the session's own evaluator (``window`` None), sometimes another's."""
        window = window or self.records[Evaluation, session].window
        ev = self.hall.ratings.open.get(session)
        ok = ev is not None and ev.window == window and (not reasons or level in BAD_LEVELS)
        out = self.run(Rate(window=window, session=session, level=level, reasons=reasons), source)
        assert (out is not None) == ok
        if ok:
            assert (ev.level, ev.reasons) == (level, tuple(dict.fromkeys(reasons)))
            assert not ev.open and self.hall.open_evaluation(window) is None

    @rule(session=sessions, source=sources)
    def expire(self, session, source):
        ev = self.hall.ratings.open.get(session)
        out = self.run(ExpireEvaluation(session=session), source)
        if ev is None:
            assert out == {"evaluation": None}
        else:
            assert not ev.open and ev.level is None and session not in self.hall.ratings.open

    # -------------------------------------------------------------- time and the scheduler
    @rule(minutes=st.sampled_from([1, 7, 60, 600]))
    def time_passes(self, minutes):
        """The engine's scheduler runs what fell due: the rollover at midnight, rating
        time-outs."""
        self.now += timedelta(minutes=minutes)
        for when, command in sorted(self.hall.deadlines().values(), key=lambda d: d[0]):
            if when <= self.now:
                self.run(command)
        assert self.hall.day == self.now.astimezone(self.hall.tz).date()
        assert all(ev.deadline > self.now for ev in self.hall.ratings.open.values())

    # -------------------------------------------------------------- invariants
    @invariant()
    def hall_is_sound(self):
        check_invariants(self.hall)

    @invariant()
    def nothing_is_lost_or_duplicated(self):
        live = self.hall.queue.all
        today = [t for t in live.values() if t.day == self.hall.day]
        assert len(today) == self.issued_today
        for tid, last in self.known.items():
            t = live.get(tid)
            if t is None:
                assert last.terminal, f"{tid} vanished while {last.value}"
            else:
                assert t.state is last

    @invariant()
    def a_first_call_never_moves(self):
        for t in self.hall.queue.all.values():
            assert t.first_called_at == self.first_calls.get(t.id), t

    @invariant()
    def a_closed_rating_session_stays_closed(self):
        for sid, ev in self.rated.items():
            assert sid not in self.hall.ratings.open and not ev.open
            assert ev.level is None or ev.level in LEVELS
            assert not ev.reasons or ev.level in BAD_LEVELS

    @invariant()
    def counts_add_up(self):
        for s in SERVICES:
            view = next(v for v in self.hall.services_view() if v["service"] == s)
            waiting = sum(1 for t in self.hall.queue.all.values()
                          if t.service == s and t.state is TicketState.WAITING
                          and t.target_window is None)
            assert view["waiting"] == waiting
            assert view["issued"] == self.hall.queue.seq[s]


TestHallMachine = pytest.mark.slow(HallMachine.TestCase)
TestHallMachine.settings = settings(max_examples=300, stateful_step_count=50, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- who and when
def _session(hall: HallState, i: int) -> str:
    """One of the open rating sessions, or one long gone."""
    sessions = [*hall.ratings.open, "gone@1@0"]
    return sessions[i % len(sessions)]


def _rate(hall: HallState, window: str | None, i: int, level: str, why: tuple) -> Rate:
    """A rating for a session, from its own window's evaluator unless ``window`` is given."""
    session = _session(hall, i)
    ev = hall.ratings.open.get(session)
    window = window or (ev.window if ev else "1")
    return Rate(window=window, session=session, level=level, reasons=why)


def _fixed(command: Command):  # noqa: ANN202 - a command that does not depend on the hall
    return lambda hall: command


def _window(hall: HallState, window: str) -> str:
    """``window``, or for "busy" the first with a ticket at it (else with a clerk)."""
    if window != "busy":
        return window
    desk = hall.desk.windows
    busy = [w for w in WINDOWS if desk[w].current] or [w for w in WINDOWS if desk[w].clerk]
    return busy[0] if busy else WINDOWS[0]


def _at(kind: type[Command], **fields: st.SearchStrategy) -> st.SearchStrategy:
    """A window's command, at a given window or at a busy one."""
    return st.builds(lambda window, args: lambda hall: kind(window=_window(hall, window), **args),
                     windows, st.fixed_dictionaries(fields))


_numbers = st.builds("{}{:03d}".format, st.sampled_from(SERVICES), st.integers(1, 6))
#: Any command a hall might be sent, well-formed, sensible or not: a function of the hall, for
#: the ones that name a busy window, a rating session or a day.
ANY_COMMAND = st.one_of(
    *[st.builds(Take, service=st.sampled_from(SERVICES), priority=st.sampled_from([None, "green"]),
                appointment=st.sampled_from([None, *CODES]),
                id_token=st.sampled_from([None, token(1), token(2)])).map(_fixed)] * 3,
    st.builds(lambda code, service, days: lambda hall: AddAppointment(
        code=code, service=service, day=hall.day + timedelta(days=days)),
        st.sampled_from(CODES), st.sampled_from(SERVICES), st.sampled_from([0, 1])),
    st.builds(Cancel, number=_numbers).map(_fixed),
    logins.map(lambda who: _fixed(Login(window=who[0], staff=who[1]))),
    *(_at(kind) for kind in (Logout, CallNext, CallNext, Evaluate, Evaluate, *KEYS.values())),
    _at(CallNumber, number=_numbers),
    _at(Transfer, to_service=st.sampled_from([None, *SERVICES]),
        to_window=st.sampled_from([None, *WINDOWS])),
    *[st.builds(lambda window, i, level, why: lambda hall: _rate(hall, window, i, level, why),
                st.sampled_from([None, None, *WINDOWS]), st.integers(0, 3),
                st.sampled_from(LEVELS), reasons)] * 2,
    st.builds(lambda i: lambda hall: ExpireEvaluation(session=_session(hall, i)),
              st.integers(0, 3)),
    st.just(Rollover()).map(_fixed),
)
STEPS = st.lists(st.tuples(st.sampled_from([0, 0, 0, 1, 30, 400]), ANY_COMMAND, sources),
                 min_size=10, max_size=60)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_every_event_carries_the_day_and_the_source(steps):
    """Whatever the command and whoever sent it, each event it produces carries the hall's
    day when it happened and the actor and door passed to ``apply`` — also the events of a
    rollover that a command past midnight brings about, and those of a refused command."""
    hall = new_hall()
    now = MONDAY_9
    opening = [(0, _fixed(Login(window=w, staff=s)), SYSTEM)
               for w, s in zip(WINDOWS, STAFF, strict=True)]
    opening += [(0, _fixed(Take(service=s)), SYSTEM) for s in SERVICES * 2]
    for minutes, command_for, source in opening + steps:
        now += timedelta(minutes=minutes)
        day_before = hall.day
        try:
            hall.apply(command_for(hall), now, source)
        except Refused:
            pass
        check_events(hall.drain().events, source, day_before, hall)
        assert hall.day == now.astimezone(hall.tz).date()

"""Property-based tests: random command sequences from many windows keep the hall sound."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from controller.core.errors import Refused
from controller.core.model import TicketState
from tests.helpers import MONDAY_9, check_invariants, new_hall, snapshot

WINDOWS = ["1", "2", "3", "4"]
STAFF = ["1001", "1002", "1003", "1004"]
SERVICES = ["A", "B"]


class HallMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.hall = new_hall()
        self.now = MONDAY_9
        self.known: dict[str, TicketState] = {}   # every ticket ever issued, last state seen
        self.issued_today = 0
        self.day = self.hall.day

    # -------------------------------------------------------------- running a command
    def run(self, fn, *args, **kw):
        self.hall.roll_to(self.now)            # midnight passing is not the command's doing
        self.absorb()
        before = snapshot(self.hall)
        try:
            out = fn(self.now, *args, **kw)
        except Refused:
            assert snapshot(self.hall) == before, f"refused {fn.__name__} changed the hall"
            return None
        self.absorb()
        return out

    def absorb(self) -> None:
        changes = self.hall.drain()
        if self.hall.day != self.day:
            self.day, self.issued_today = self.hall.day, 0
        for t in changes.tickets.values():
            self.known[t.id] = t.state

    # -------------------------------------------------------------- rules
    @rule(service=st.sampled_from(SERVICES + ["Z"]),
          priority=st.sampled_from([None, None, None, "green"]),
          token=st.sampled_from([None, None, "p1", "p2", "p3"]))
    def take(self, service, priority, token):
        if self.run(self.hall.take, service, priority=priority, id_token=token):
            self.issued_today += 1

    @rule(window=st.sampled_from(WINDOWS + ["9"]), staff=st.sampled_from(STAFF + ["0000"]))
    def login(self, window, staff):
        self.run(self.hall.login, window, staff)

    @rule(window=st.sampled_from(WINDOWS))
    def logout(self, window):
        self.run(self.hall.logout, window)

    @rule(window=st.sampled_from(WINDOWS))
    def call_next(self, window):
        hall = self.hall
        cfg = hall.window_cfg[window]
        directed = hall.directed[window].head()
        heads = {s: hall.lines[s].head() for s in cfg.services if hall.lines[s].head()}
        out = self.run(hall.call_next, window)
        if out is None:
            return
        key = hall.ticket(out["ticket"]["number"]).key if hall.ticket(out["ticket"]["number"]) \
            else hall.tickets[hall.windows[window].current].key
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

    @rule(window=st.sampled_from(WINDOWS),
          op=st.sampled_from(["recall", "no_show", "hold", "done", "start", "pause", "resume"]))
    def key(self, window, op):
        self.run(getattr(self.hall, op), window)

    @rule(window=st.sampled_from(WINDOWS), n=st.integers(1, 12), service=st.sampled_from(SERVICES))
    def call_number(self, window, n, service):
        self.run(self.hall.call_number, window, f"{service}{n:03d}")

    @rule(window=st.sampled_from(WINDOWS), to_service=st.sampled_from(SERVICES + [None]),
          to_window=st.sampled_from(WINDOWS + [None]))
    def transfer(self, window, to_service, to_window):
        self.run(self.hall.transfer, window, to_service=to_service, to_window=to_window)

    @rule(n=st.integers(1, 12), service=st.sampled_from(SERVICES))
    def cancel(self, n, service):
        self.run(self.hall.cancel, f"{service}{n:03d}")

    @rule(minutes=st.sampled_from([1, 7, 60, 600]))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)

    # -------------------------------------------------------------- invariants
    @invariant()
    def hall_is_sound(self):
        check_invariants(self.hall)

    @invariant()
    def nothing_is_lost_or_duplicated(self):
        today = [t for t in self.hall.tickets.values() if t.day == self.hall.day]
        assert len(today) == self.issued_today
        for tid, last in self.known.items():
            live = self.hall.tickets.get(tid)
            if live is None:
                assert last.terminal, f"{tid} vanished while {last.value}"
            else:
                assert live.state is last

    @invariant()
    def counts_add_up(self):
        for s in SERVICES:
            view = next(v for v in self.hall.services_view() if v["service"] == s)
            waiting = sum(1 for t in self.hall.tickets.values()
                          if t.service == s and t.state is TicketState.WAITING
                          and t.target_window is None)
            assert view["waiting"] == waiting
            assert view["issued"] == self.hall.seq[s]


TestHallMachine = HallMachine.TestCase
TestHallMachine.settings = settings(max_examples=300, stateful_step_count=50, deadline=None,
                                    suppress_health_check=[HealthCheck.too_slow])

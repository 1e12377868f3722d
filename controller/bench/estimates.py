"""``yimen bench estimates``: how honest the estimated wait (预计等候) is over a simulated day.

A hall day runs in-process on the core (``HallState``) with a ``FakeClock``: Poisson arrivals
per service (a few green-channel tickets among them), nine windows (two of them shared by two
services), gamma service times around each service's mean (cv ≈ 0.8, exponential-ish) plus the
walk to the window, a few no-shows, clerks pausing now and then and two going to lunch. At each
ticket's issue the stated range (``est_wait_range``) is recorded; at its first call, its real
wait. The report gives the share of tickets whose real wait fell within the range, below it
and above it, per load level (the arrivals as a share of the windows' nominal capacity).
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from controller.clock import FakeClock
from controller.config import HallConfig, parse_config
from controller.core.commands import (
    CallNext,
    Command,
    Done,
    Login,
    Logout,
    NoShow,
    Pause,
    Resume,
    Start,
    Take,
)
from controller.core.errors import Refused
from controller.core.estimate import WaitRange
from controller.core.hall import HallState

#: service → (name, mean service minutes)
SERVICES = {"A": ("综合受理", 8.0), "B": ("不动产登记", 15.0), "C": ("社保查询", 4.0)}
#: window → (services, policy, weights)
WINDOWS: dict[str, tuple[tuple[str, ...], str, tuple[int, ...]]] = {
    "1": (("A",), "order", ()), "2": (("A",), "order", ()), "3": (("A",), "order", ()),
    "4": (("A",), "order", ()), "5": (("A", "C"), "fifo", ()), "6": (("B",), "order", ()),
    "7": (("B",), "order", ()), "8": (("B", "C"), "weighted", (1, 1)), "9": (("C",), "order", ()),
}
#: the windows' nominal capacity per service (a shared window counted half to each)
NOMINAL = {"A": 4.5, "B": 2.5, "C": 2.0}
SERVICE_CV = 0.8
GREEN_SHARE = 0.03
NO_SHOW_SHARE = 0.04
PAUSE_EVERY_MIN = 120.0          # a clerk pauses about this often…
PAUSE_MIN = (5.0, 20.0)          # …for this long
LUNCH = {"2": (12 * 60, 13 * 60), "6": (12 * 60 + 30, 13 * 60 + 30)}
OPEN_MIN, CLOSE_MIN = 9 * 60, 17 * 60
TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 1, tzinfo=TZ)


def hall_config() -> HallConfig:
    return parse_config({
        "hall": {"id": "estimates", "name": "预计等候模拟大厅", "national_calendar": False},
        "services": [{"code": code, "name": name, "avg_service_min": minutes}
                     for code, (name, minutes) in SERVICES.items()],
        "windows": [{"id": w, "services": list(s), "policy": p, **({"weights": list(k)} if k else {})}
                    for w, (s, p, k) in WINDOWS.items()],
        "clerks": [{"id": f"{1000 + int(w)}", "name": f"员{w}", "windows": [w]} for w in WINDOWS],
    }, "<bench estimates>")


@dataclass
class Issued:
    number: str
    service: str
    ahead: int
    stated: WaitRange | None
    point: int
    old_point: int
    wait_min: float | None = None


@dataclass
class Day:
    """One simulated day's tickets and what was said at their issue."""

    load: float
    seed: int
    tickets: list[Issued] = field(default_factory=list)

    @property
    def measured(self) -> list[Issued]:
        return [t for t in self.tickets if t.stated is not None and t.wait_min is not None]


class _Sim:
    def __init__(self, load: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.config = hall_config()
        self.clock = FakeClock(DAY + timedelta(minutes=OPEN_MIN - 10))
        self.hall = HallState(self.config, DAY.date())
        self.events: list[tuple[float, int, Callable[[], object]]] = []
        self.n = 0
        self.day = Day(load, seed)
        self.by_number: dict[str, Issued] = {}
        self.load = load
        self.idle: set[str] = set()             # windows with a clerk, nothing to do
        self.pausing: set[str] = set()          # windows to pause after the current ticket
        self.away: set[str] = set()             # paused or at lunch

    # -------------------------------------------------------------- the event loop
    def at(self, minute: float, action: Callable[[], object]) -> None:
        self.n += 1
        heapq.heappush(self.events, (minute, self.n, action))

    def apply(self, command: Command) -> dict[str, Any] | None:
        try:
            return self.hall.apply(command, self.clock.now())
        except Refused:
            return None

    def run(self) -> Day:
        for w in WINDOWS:
            self.at(OPEN_MIN - 5, partial(self.login, w))
            self.at(OPEN_MIN + self.rng.expovariate(1 / PAUSE_EVERY_MIN), partial(self.want_pause, w))
        for w, (out, back) in LUNCH.items():
            self.at(out, partial(self.want_pause, w, lunch=True))
            self.at(back, partial(self.back, w, lunch=True))
        for s, (_, minutes) in SERVICES.items():
            rate = self.load * NOMINAL[s] / minutes
            self.at(OPEN_MIN + self.rng.expovariate(rate), partial(self.arrive, s, rate))
        while self.events:
            minute, _, action = heapq.heappop(self.events)
            self.clock.set(DAY + timedelta(minutes=minute))
            action()
        for t in self.hall.queue.all.values():
            issued = self.by_number.get(t.number)
            if issued is not None and t.first_called_at is not None:
                issued.wait_min = (t.first_called_at - t.issued_at).total_seconds() / 60
        return self.day

    def minute(self) -> float:
        return (self.clock.now() - DAY).total_seconds() / 60

    # -------------------------------------------------------------- citizens
    def arrive(self, service: str, rate: float) -> None:
        now = self.minute()
        if now >= CLOSE_MIN:
            return
        hall = self.hall
        old = math.ceil(hall.waiting(service) * hall.avg_service_min(service)
                        / max(1, hall.open_windows(service))) if hall.waiting(service) else 0
        green = self.rng.random() < GREEN_SHARE
        reply = self.apply(Take(service=service, priority="green" if green else None))
        if reply is not None:
            t = reply["ticket"]
            stated = WaitRange(*t["est_wait_range"]) if t["est_wait_range"] else None
            issued = Issued(t["number"], service, t["ahead"], stated, t["est_wait_min"], old)
            self.day.tickets.append(issued)
            self.by_number[issued.number] = issued
            for w in sorted(self.idle):
                if service in WINDOWS[w][0]:
                    self.idle.discard(w)
                    self.at(now + self.rng.uniform(0.05, 0.5), partial(self.call, w))
        self.at(now + self.rng.expovariate(rate), partial(self.arrive, service, rate))

    # -------------------------------------------------------------- clerks
    def login(self, w: str) -> None:
        self.apply(Login(window=w, staff=f"{1000 + int(w)}"))
        self.idle.add(w)

    def want_pause(self, w: str, lunch: bool = False) -> None:
        if w in self.away or self.minute() >= CLOSE_MIN:
            return
        self.pausing.add(w)
        if w in self.idle:
            self.step_away(w)
        if not lunch:
            self.at(self.minute() + self.rng.expovariate(1 / PAUSE_EVERY_MIN) + PAUSE_MIN[1],
                    partial(self.want_pause, w))

    def step_away(self, w: str) -> None:
        self.pausing.discard(w)
        self.idle.discard(w)
        self.away.add(w)
        if w in LUNCH and LUNCH[w][0] <= self.minute() < LUNCH[w][1]:
            self.apply(Logout(window=w))
        else:
            self.apply(Pause(window=w))
            self.at(self.minute() + self.rng.uniform(*PAUSE_MIN), partial(self.back, w))

    def back(self, w: str, lunch: bool = False) -> None:
        if w not in self.away:
            self.pausing.discard(w)      # lunch never started: the clerk stayed at work
            return
        self.away.discard(w)
        if lunch:
            self.apply(Login(window=w, staff=f"{1000 + int(w)}"))
        else:
            self.apply(Resume(window=w))
        self.call(w)

    def call(self, w: str) -> None:
        """The clerk presses next (finishing the current ticket), or goes idle or away."""
        if w in self.pausing:
            self.apply(Done(window=w))
            self.step_away(w)
            return
        reply = self.apply(CallNext(window=w))
        if reply is None:
            self.apply(Done(window=w))
            self.idle.add(w)
            return
        service = reply["ticket"]["service"]
        now = self.minute()
        if self.rng.random() < NO_SHOW_SHARE:
            self.at(now + 2.0, partial(self.no_show, w))
            return
        walk = self.rng.uniform(0.3, 1.5)
        mean = SERVICES[service][1]
        shape = 1 / SERVICE_CV ** 2
        serve = self.rng.gammavariate(shape, mean / shape)
        self.at(now + walk, partial(self.apply, Start(window=w)))
        self.at(now + walk + serve, partial(self.call, w))

    def no_show(self, w: str) -> None:
        """The called citizen did not come: 过号, and the clerk calls the next."""
        self.apply(NoShow(window=w))
        self.call(w)


def simulate(load: float, seed: int) -> Day:
    """One hall day at ``load`` (arrivals as a share of the windows' nominal capacity)."""
    return _Sim(load, seed).run()


# ---------------------------------------------------------------------- figures
@dataclass
class Figures:
    load: float
    tickets: int
    no_estimate: int
    within: float
    below: float
    above: float
    mean_wait: float
    point_error: float           # median |est_wait_min − real wait|, minutes
    old_error: float             # the same for the former single-number estimate
    mean_width: float


def figures(days: list[Day]) -> Figures:
    measured = [t for d in days for t in d.measured]
    total = sum(len(d.tickets) for d in days)
    n = max(len(measured), 1)
    below = sum(1 for t in measured if t.stated and math.ceil(t.wait_min or 0) < t.stated.low)
    above = sum(1 for t in measured if t.stated and math.ceil(t.wait_min or 0) > t.stated.high)
    waits = [t.wait_min or 0.0 for t in measured]
    return Figures(
        load=days[0].load, tickets=len(measured),
        no_estimate=sum(1 for d in days for t in d.tickets if t.stated is None),
        within=(len(measured) - below - above) / n, below=below / n, above=above / n,
        mean_wait=statistics.fmean(waits) if waits else 0.0,
        point_error=statistics.median(abs(t.point - w) for t, w in zip(measured, waits, strict=True))
        if measured else 0.0,
        old_error=statistics.median(abs(t.old_point - w) for t, w in zip(measured, waits, strict=True))
        if measured else 0.0,
        mean_width=statistics.fmean((t.stated.high - t.stated.low) for t in measured if t.stated)
        if measured else 0.0) if total else Figures(days[0].load, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def run(loads: tuple[float, ...] = (0.6, 0.8, 0.95, 1.1), days: int = 10, seed: int = 1) -> list[Figures]:
    return [figures([simulate(load, seed + i) for i in range(days)]) for load in loads]


def report(out: list[Figures], days: int) -> str:
    lines = [f"simulated hall days per load: {days} (9 windows, 3 services, 09:00–17:00)", "",
             "| load | tickets | within range | below | above | mean wait min | mean width min "
             "| median error, midpoint | median error, former estimate |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for f in out:
        lines.append(f"| {f.load:.2f} | {f.tickets:,} | {f.within:.1%} | {f.below:.1%} | {f.above:.1%} "
                     f"| {f.mean_wait:.1f} | {f.mean_width:.1f} | {f.point_error:.1f} | {f.old_error:.1f} |")
    return "\n".join(lines)

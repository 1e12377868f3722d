"""The estimated wait (预计等候) as a stated range, from the line, the recent service times and
the windows really serving (pure: no hall, no clock).

The model. A ticket with ``ahead`` people before it in its line is called at the
``ahead + 1``-th window that comes free from now on. ``capacity`` windows serve its service now
(a clerk logged in and not paused; a window shared with other services counts for its share
of them, see ``window_share``), each taking on average ``S`` minutes a ticket: the mean of the
recent service times (call to finish, on the hall's clock), or the service's configured
``avg_service_min`` while there are none. Windows come free at ``capacity / S`` a minute, so
the wait is the time of ``ahead + 1`` completions: a gamma distribution with mean
``(ahead + 1) · S / capacity`` and, for service times whose coefficient of variation is ``cv``
(measured from the samples, 1 for exponential ones), shape ``(ahead + 1) / cv²``; serving
windows with nobody at them (``free``) call the first people at once and take that many
completions off. The stated range is the distribution's central ``COVERAGE`` interval
(Wilson–Hilferty quantiles), widened by what the model does not know: how well ``S`` is known
from few samples (``cv / √n``) and how the hall drifts meanwhile (clerks pausing, green-channel
tickets going first: ``DRIFT``). ``COVERAGE`` is set so that, rounded out as below, the range
holds at least 4 real waits in 5 over a simulated day (``yimen bench estimates``).

Minutes are counted up: the range says the wait, a started minute counting as one, lies in
``[low, high]``. A citizen with someone ahead therefore never reads 0 (``low ≥ 1``); a range
of ``[1, 1]`` reads "within a minute" (1 分钟内). Above ``FINE_MIN`` minutes the bounds go out
to multiples of 5 (约 10–15 分钟), which a citizen reads as what it is: an estimate.

With no window serving the service there is no estimate (None): the page says no window is
open (暂无窗口办理) instead of a number.

The minutes are the hall clock's, as the service times are measured on it. In the demo
(``yimen demo``) the simulated clerks serve ``simulation.speed`` times faster while the clock is
real, so the range is in the real minutes a visitor waits there (约 1–2 分钟, 1 分钟内), not
the simulated ones; only until the first tickets are done does the configured
``avg_service_min`` (simulated minutes) make it too long.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

#: the central share of the model's waits the range is cut from; with the widening and the
#: outward rounding the range holds at least 4 waits in 5 in the simulated day (measured:
#: ``yimen bench estimates``, docs/benchmarks.md)
COVERAGE = 0.7
#: relative spread (log scale) for what changes in the hall while one waits: pauses, logins
#: and logouts, green-channel tickets going first
DRIFT = 0.15
#: samples the service's configured time counts as while nothing has been measured yet, and
#: the fewest the first measured times count as (the hall's own figure is rough, not arbitrary)
PRIOR_SAMPLES = 4
#: below this many samples the service times are taken as exponential (cv = 1)
MIN_CV_SAMPLES = 5
CV_BOUNDS = (0.5, 2.0)
#: up to this many minutes the bounds are whole minutes; above, multiples of 5
FINE_MIN = 10


@dataclass(frozen=True, slots=True)
class WaitRange:
    """A stated wait: ``low``–``high`` minutes, counted up."""

    low: int
    high: int

    @property
    def midpoint(self) -> int:
        """The one number for devices that show one (``est_wait_min``): the middle, rounded up."""
        return (self.low + self.high + 1) // 2

    def contains(self, wait_min: float) -> bool:
        """Whether a real wait of ``wait_min`` minutes is what this range said."""
        return self.low <= math.ceil(wait_min - 1e-9) <= self.high

    def as_list(self) -> list[int]:
        return [self.low, self.high]


def service_time(samples: Sequence[float], default_min: float) -> tuple[float, float, float]:
    """The mean service time, its coefficient of variation and how many samples it rests on
    (at least ``PRIOR_SAMPLES``: the configured time while there are none)."""
    n = len(samples)
    if n == 0:
        return max(default_min, 1e-6), 1.0, PRIOR_SAMPLES
    mean = max(sum(samples) / n, 1e-6)
    if n < MIN_CV_SAMPLES:
        return mean, 1.0, max(n, PRIOR_SAMPLES)
    var = sum((x - mean) ** 2 for x in samples) / (n - 1)
    cv = min(max(math.sqrt(var) / mean, CV_BOUNDS[0]), CV_BOUNDS[1])
    return mean, cv, max(n, PRIOR_SAMPLES)


def _gamma_quantile(shape: float, scale: float, z: float) -> float:
    """Wilson–Hilferty: the gamma quantile at the standard normal ``z``."""
    c = 1 / (9 * shape)
    return max(0.0, shape * scale * (1 - c + z * math.sqrt(c)) ** 3)


def _round_out(low: float, high: float, ahead: int) -> WaitRange:
    lo = math.floor(low)
    hi = math.ceil(high)
    if lo > FINE_MIN:
        lo = lo // 5 * 5
    if hi > FINE_MIN:
        hi = -(-hi // 5) * 5
    if ahead > 0:
        lo = max(lo, 1)        # a started minute counts: a wait behind someone is never 0
    hi = max(hi, lo, 1 if ahead > 0 else 0)
    return WaitRange(lo, hi)


def estimate(ahead: int, samples: Sequence[float], capacity: float, default_min: float,
             free: int = 0, coverage: float = COVERAGE) -> WaitRange | None:
    """The stated wait for a ticket with ``ahead`` people before it, or None when no window
    serves (``capacity`` ≤ 0). ``samples``: recent service times in minutes; ``free``: serving
    windows with nobody at them now, which call the first ``free`` people at once."""
    if ahead < 0 or free < 0:
        raise ValueError("ahead and free must not be negative")
    if capacity <= 0:
        return None
    if ahead < free:
        return WaitRange(0 if ahead == 0 else 1, 1)
    mean_s, cv, n = service_time(samples, default_min)
    completions = ahead + 1 - free
    shape = completions / cv ** 2
    scale = cv ** 2 * mean_s / capacity
    z = NormalDist().inv_cdf(0.5 + coverage / 2)
    extra = math.exp(z * math.hypot(cv / math.sqrt(n), DRIFT))
    low = _gamma_quantile(shape, scale, -z) / extra
    high = _gamma_quantile(shape, scale, z) * extra
    if ahead == 0:
        low = 0.0              # nobody ahead: a free window may call at once
    return _round_out(low, high, ahead)


def window_share(service: str, services: Sequence[str], weights: Sequence[int], policy: str,
                 waiting: dict[str, int]) -> float:
    """How much of one serving window goes to ``service``, which it serves among ``services``:
    all of it when it serves only that; else, under ``weighted``, that service's weight among
    the services with someone waiting, and otherwise (``fifo``, ``order``) its share of the
    people waiting (the ticket being estimated counted)."""
    if len(services) == 1:
        return 1.0
    busy = {s for s in services if waiting.get(s, 0) > 0} | {service}
    if policy == "weighted":
        w = dict(zip(services, weights or (1,) * len(services), strict=True))
        return w[service] / sum(w[s] for s in busy)
    demand = {s: max(waiting.get(s, 0), 1 if s == service else 0) for s in busy}
    return demand[service] / sum(demand.values())


def capacity(shares: Iterable[float]) -> float:
    """The windows serving a service now, each counted for its share."""
    return sum(shares)

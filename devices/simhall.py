"""A whole simulated hall: every configured device, citizens arriving, clerks calling (模拟大厅).

Citizens arrive at ``arrivals_per_min`` (Poisson), pick a service by ``service_mix`` and take a
ticket at a random kiosk, ``CARD_SHARE`` of them with an ID card on its reader (a made-up
number, sent sealed to the hall server's ``id_public_key``, handed over in the process). Each
window with a caller has a clerk who logs in, presses ``next``, serves for about the service's
time (exponential around ``service_min`` or the service's ``avg_service_min``), asks for a
rating and calls again. Evaluators answer prompts by ``rating_mix`` or, now and then, not at
all. ``speed`` compresses all of it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from controller.config import HallConfig
from devices.simulators import SIMULATORS, Caller, Evaluator, Kiosk, Refusal
from protocol import idnumber, idseal
from protocol.client import DeviceClient, DeviceTimeout
from protocol.link import BrokerAddress
from protocol.tasks import cancel_all

log = logging.getLogger("yimen.sim")

IDLE_POLL_S = 2.0        # a clerk with nobody waiting presses next again after this (real s)
CARD_SHARE = 0.3         # citizens who put their ID card on the kiosk's reader


def made_up_id(rng: random.Random) -> str:
    """A made-up resident ID number with a right check digit (东城区, born 1940–2005)."""
    body = f"110101{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" \
           f"{rng.randint(0, 999):03d}"
    return body + idnumber.check_digit(body)


def simulated(config: HallConfig) -> list[str]:
    """The ids of the configured devices of a kind the simulators have."""
    return [d.id for d in config.devices if d.kind in SIMULATORS]


def build_devices(config: HallConfig, broker: BrokerAddress, passwords: Mapping[str, str],
                  only: Callable[[str], bool] = lambda _id: True,
                  **kwargs: Any) -> dict[str, DeviceClient]:
    """A simulator for every configured device of a simulated kind (whose id passes ``only``),
    each logging in with its own password from ``passwords``."""
    return {d.id: SIMULATORS[d.kind](config.hall.id, d.id, broker, passwords.get(d.id), **kwargs)
            for d in config.devices if d.kind in SIMULATORS and only(d.id)}


async def connect_all(devices: Iterable[DeviceClient], timeout: float = 15.0) -> None:
    """Start every device and wait until all are connected to the broker."""
    devices = list(devices)
    for device in devices:
        await device.start()
    await asyncio.wait_for(asyncio.gather(*[d.link.connected.wait() for d in devices]), timeout)


class SimulatedHall:
    def __init__(self, config: HallConfig, broker: BrokerAddress, passwords: Mapping[str, str],
                 seed: int | None = None, id_public_key: str | None = None) -> None:
        """``id_public_key``: the hall server's, which the kiosks seal ID numbers to; without
        it the citizens bring no ID cards (said at start)."""
        self.config = config
        self.sim = config.simulation
        self.rng = random.Random(seed)
        self.devices = build_devices(config, broker, passwords)
        seal = idseal.sealer(id_public_key, config.hall.id) if id_public_key else None
        for kiosk in self.of_kind(Kiosk):
            kiosk.seal = seal
        self.cards = seal is not None
        if seal is None:
            log.warning("模拟大厅未得到 id_public_key：市民不刷身份证 / no id_public_key: the simulated "
                        "citizens bring no ID cards")
        self.stats: Counter[str] = Counter()
        self._tasks: list[asyncio.Task] = []
        self._taking: set[asyncio.Task] = set()

    def of_kind(self, cls: type) -> list[Any]:
        return [d for d in self.devices.values() if type(d) is cls]

    def bound(self, cls: type, window: str) -> Any | None:
        ids = {d.id for d in self.config.devices if d.window == window}
        return next((d for d in self.of_kind(cls) if d.id in ids), None)

    async def start(self, citizens: bool = True, timeout: float = 15.0) -> None:
        await connect_all(self.devices.values(), timeout)
        if not citizens:
            return
        self._tasks.append(asyncio.create_task(self._arrivals(), name="sim-arrivals"))
        for window in self.config.windows:
            caller = self.bound(Caller, window.id)
            if caller is not None:
                self._tasks.append(asyncio.create_task(self._clerk(window.id, caller)))
            evaluator = self.bound(Evaluator, window.id)
            if evaluator is not None:
                self._tasks.append(asyncio.create_task(self._citizen_rates(evaluator)))

    async def stop(self) -> None:
        await cancel_all([*self._tasks, *self._taking])
        self._tasks = []
        await asyncio.gather(*[d.stop() for d in self.devices.values()])

    # ------------------------------------------------------------------ citizens
    def _pick(self, weights: dict[str, float]) -> str:
        keys = list(weights)
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    async def _arrivals(self) -> None:
        kiosks = self.of_kind(Kiosk)
        if not kiosks:
            log.warning("no kiosk configured: no citizens will arrive")
            return
        mix = self.sim.service_mix or {s.code: 1.0 for s in self.config.services}
        rate_per_s = self.sim.arrivals_per_min * self.sim.speed / 60
        while True:
            await asyncio.sleep(self.rng.expovariate(rate_per_s))
            fields = {"priority": "green"} if self.rng.random() < self.sim.green_share else {}
            if self.cards and self.rng.random() < CARD_SHARE:
                fields["id_card"] = made_up_id(self.rng)
            take = asyncio.create_task(self._take(self.rng.choice(kiosks), self._pick(mix), fields))
            self._taking.add(take)           # held until done, and cancelled on stop
            take.add_done_callback(self._taking.discard)

    async def _take(self, kiosk: Kiosk, service: str, fields: dict[str, str]) -> None:
        try:
            ticket = await kiosk.take(service, **fields)
            self.stats["tickets"] += 1
            log.info("%s: ticket %s (%d ahead)", kiosk.id, ticket["number"], ticket["ahead"])
        except Refusal as r:
            self.stats[f"refused:{r.code}"] += 1
            log.info("%s: no ticket for %s: %s", kiosk.id, service, r.message)
        except DeviceTimeout:
            self.stats["timeouts"] += 1

    def _service_seconds(self, service: str) -> float:
        cfg = self.config.service(service)
        minutes = self.sim.service_min.get(service, cfg.avg_service_min if cfg else 8)
        return self.rng.expovariate(1 / max(minutes * 60, 1)) / self.sim.speed

    async def _citizen_rates(self, evaluator: Evaluator) -> None:
        while True:
            prompt = await evaluator.prompted.get()
            await asyncio.sleep(self.rng.uniform(3, 10) / self.sim.speed)
            if self.rng.random() < self.sim.unrated_share:
                continue                     # walks away: the session times out as unrated
            level = self._pick(self.sim.rating_mix)
            reasons = ["efficiency"] if level in ("dissatisfied", "very_dissatisfied") else None
            try:
                await evaluator.rate(level, reasons, session=prompt["session"])
                self.stats[f"rated:{level}"] += 1
            except (Refusal, DeviceTimeout) as exc:
                log.info("%s: rating not taken: %s", evaluator.id, exc)

    # ------------------------------------------------------------------ clerks
    async def _clerk(self, window: str, caller: Caller) -> None:
        clerk = next((c for c in self.config.clerks if window in c.windows), None)
        if clerk is None:
            return
        while True:
            try:
                await caller.press("login", staff=clerk.id)
                break
            except (Refusal, DeviceTimeout) as exc:
                log.info("%s: login as %s failed: %s", caller.id, clerk.id, exc)
                await asyncio.sleep(IDLE_POLL_S)
        while True:
            try:
                result = (await caller.press("next"))["result"]
            except Refusal as r:
                if r.code not in ("queue_empty", "hall_closed", "window_paused"):
                    log.info("%s: next refused: %s", caller.id, r)
                await asyncio.sleep(IDLE_POLL_S)
                continue
            except DeviceTimeout:
                continue
            self.stats["calls"] += 1
            ticket = result.get("ticket") or {}
            await asyncio.sleep(self._service_seconds(ticket.get("service", "")))
            try:
                await caller.press("evaluate")
            except (Refusal, DeviceTimeout) as exc:
                log.info("%s: evaluate refused: %s", caller.id, exc)

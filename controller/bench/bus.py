"""``yimen bench bus``: the device bus under a full county hall.

With ``devices`` simulated devices connected (callers, window displays and evaluators for every
window, hall screens, the rest kiosks), every window's caller presses ``next`` at a steady
pace; measured is the time from the press's publish to the window display's ``set`` arriving.
In the same run and with the same devices connected, the broker's own two-hop baseline: a
client publishes, a relay client republishes, the first receives. Then kiosks take tickets as
fast as replies come back, with durable commits. Everything but an external broker runs in
this one process, so the controller shares the CPU with the devices it serves.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from controller.bus import security
from controller.bus.broker import EmbeddedBroker
from controller.bus.link import BrokerAddress, MqttLink
from controller.config import HallConfig, parse_config
from controller.tasks import cancel_all

SECRET = "bench"


def bus_config(windows: int, devices: int, hall: str) -> HallConfig:
    ids = [f"{w:02d}" for w in range(1, windows + 1)]
    bound = [{"id": f"{k}-w{w}", "kind": kind, "window": w} for w in ids
             for k, kind in (("caller", "caller"), ("led", "window_display"), ("eval", "evaluator"))]
    screens = [{"id": f"hall-screen-{i}", "kind": "hall_display"} for i in range(1, 5)]
    kiosks = [{"id": f"kiosk-{i}", "kind": "kiosk"}
              for i in range(1, max(1, devices - len(bound) - len(screens)) + 1)]
    return parse_config({
        "hall": {"id": hall, "name": "压测大厅", "hours": ["00:00-24:00"],
                 "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        "services": [{"code": "A", "name": "综合", "daily_cap": 99999}],
        "windows": [{"id": w, "services": ["A"]} for w in ids],
        "clerks": [{"id": f"9{w}", "name": f"员{w}", "windows": [w]} for w in ids],
        "devices": bound + screens + kiosks, "bus": {"secret": SECRET},
    }, "<bench>")


def _pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 \
        else (values[0] if values else float("nan"))


async def _paced(windows: int, presses: int, interval_s: float, one) -> list[Any]:  # noqa: ANN001
    """Each of ``windows`` loops ``presses`` times: ``await one(i)`` (a latency in ms), then
    waits about ``interval_s``; starts are spread so presses do not line up."""
    out: list[Any] = []

    async def loop(i: int) -> None:
        await asyncio.sleep(random.uniform(0, interval_s))
        for _ in range(presses):
            out.append(await one(i))
            await asyncio.sleep(random.uniform(0.5, 1.5) * interval_s)

    await asyncio.gather(*[loop(i) for i in range(windows)])
    return out


async def two_hop_baseline(broker: BrokerAddress, root: str, windows: int, presses: int,
                           interval_s: float) -> list[float]:
    """Publish → relay client → back, over the same broker, same pacing."""
    password = security.derived_password(SECRET, security.CONTROLLER_USER)
    waiters: dict[str, asyncio.Future] = {}
    relay: MqttLink

    async def bounce(topic: str, payload: bytes) -> None:
        await relay.publish(topic.replace("/ping/", "/pong/"), payload)

    def answered(topic: str, payload: bytes) -> None:
        fut = waiters.pop(payload.decode(), None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    relay = MqttLink(broker, "bench-relay", username=security.CONTROLLER_USER, password=password,
                     subscriptions=[root + "bench/ping/+"], on_message=bounce)
    pingers = [MqttLink(broker, f"bench-ping-{i}", username=security.CONTROLLER_USER,
                        password=password, subscriptions=[root + f"bench/pong/{i}"],
                        on_message=answered) for i in range(windows)]
    links = [relay, *pingers]
    tasks = [asyncio.create_task(link.run()) for link in links]
    await asyncio.gather(*[link.connected.wait() for link in links])
    seq = 0

    async def one(i: int) -> float:
        nonlocal seq
        seq += 1
        token = f"{i}:{seq}"
        fut = asyncio.get_running_loop().create_future()
        waiters[token] = fut
        t0 = time.perf_counter()
        await pingers[i].publish(root + f"bench/ping/{i}", token.encode())
        return (await asyncio.wait_for(fut, 10) - t0) * 1000

    try:
        return await _paced(windows, presses, interval_s, one)
    finally:
        for link in links:
            link.close()
        await cancel_all(tasks)


async def run(broker_url: str | None, devices: int, windows: int, presses: int,
              interval_s: float, tickets: int, db: str | None = None) -> dict[str, Any]:
    from aiohttp import web

    from controller.server import create_app
    from controller.web.api import BUS
    from devices.simhall import build_devices

    hall = f"bench-{random.randrange(16**6):06x}"
    config = bus_config(windows, devices, hall)
    folder = Path(tempfile.mkdtemp(prefix="yimen-bench-bus-"))
    embedded = None
    if broker_url:
        address = BrokerAddress.parse(broker_url)
    else:
        embedded = EmbeddedBroker(config, SECRET, folder, "127.0.0.1:0")
        address = await embedded.start()
    app = create_app(config, folder, db, broker=f"mqtt://{address.host}:{address.port}")
    runner = web.AppRunner(app)
    await runner.setup()
    out: dict[str, Any] = {"broker": broker_url or "embedded (amqtt)", "windows": windows}
    sims = build_devices(config, address, SECRET)
    try:
        await asyncio.wait_for(app[BUS].link.connected.wait(), 10)
        t0 = time.perf_counter()
        for d in sims.values():
            await d.start()
        await asyncio.wait_for(asyncio.gather(*[d.link.connected.wait() for d in sims.values()]), 120)
        out["devices"] = len(sims)
        out["connect_s"] = time.perf_counter() - t0
        await asyncio.sleep(1.0)                                  # retained sets settle
        kiosks = [d for d in sims.values() if d.kind == "kiosk"]
        callers = [sims[f"caller-w{w.id}"] for w in config.windows]
        leds = [sims[f"led-w{w.id}"] for w in config.windows]
        backlog = windows * (presses + 1)
        await asyncio.gather(*[kiosks[i % len(kiosks)].send("take", service="A")
                               for i in range(backlog)])
        await asyncio.gather(*[c.send("key", key="login", staff=f"9{c.id[-2:]}") for c in callers])

        async def press(i: int) -> float:
            led = leds[i]
            before = (led.shown or {}).get("ticket")
            t0 = time.perf_counter()
            reply_task = asyncio.create_task(callers[i].send("key", key="next"))
            try:
                await led.wait_until(lambda: (led.shown or {}).get("ticket") not in (None, before), 10)
            except TimeoutError:
                reply = await reply_task
                missed.append(reply.get("error", {}).get("code", "set not received"))
                return None
            ms = (time.perf_counter() - t0) * 1000
            await reply_task
            return ms

        missed: list[str] = []

        out["next_to_set_ms"] = [ms for ms in await _paced(windows, presses, interval_s, press)
                                 if ms is not None]
        out["missed"] = missed
        out["baseline_ms"] = await two_hop_baseline(address, f"yimen/v1/{hall}/", windows, presses,
                                                    interval_s)
        t0 = time.perf_counter()
        per_kiosk = tickets // len(kiosks)

        async def takes(k) -> None:  # noqa: ANN001
            for _ in range(per_kiosk):
                await k.send("take", service="A")

        await asyncio.gather(*[takes(k) for k in kiosks])
        out["tickets"] = per_kiosk * len(kiosks)
        out["take_per_s"] = out["tickets"] / (time.perf_counter() - t0)
        out["bus_errors"] = dict(app[BUS].errors)
    finally:
        await asyncio.gather(*[d.stop() for d in sims.values()])
        await runner.cleanup()
        if embedded is not None:
            await embedded.stop()
    return out


def report(out: dict[str, Any], target_ms: float = 5.0) -> str:
    nxt, base = out["next_to_set_ms"], out["baseline_ms"]
    added = _pct(nxt, 99) - _pct(base, 99)
    lines = [
        f"broker: {out['broker']}; {out['devices']} devices connected in {out['connect_s']:.1f} s;"
        f" {out['windows']} windows calling",
        f"caller next → window display set: p50 {_pct(nxt, 50):.2f} ms, p99 {_pct(nxt, 99):.2f} ms"
        f" ({len(nxt)} presses)",
        f"broker two-hop baseline:          p50 {_pct(base, 50):.2f} ms, p99 {_pct(base, 99):.2f} ms"
        f" ({len(base)} round trips)",
        f"controller adds at p99: {added:.2f} ms (target ≤ {target_ms:g} ms): "
        f"{'ok' if added <= target_ms else 'MISSED'}",
        f"kiosk take → ticket reply, durable: {out['take_per_s']:,.0f} tickets/s over "
        f"{out['tickets']} tickets (target ≥ 2,000): "
        f"{'ok' if out['take_per_s'] >= 2000 else 'MISSED'}",
        f"presses whose set did not arrive within 10 s: {len(out['missed'])} "
        f"{sorted(set(out['missed']))}",
        f"bus errors: {out['bus_errors'] or 'none'}",
    ]
    return "\n".join(lines)

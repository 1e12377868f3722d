"""``yimen bench bus``: the device bus under a full county hall.

With ``devices`` simulated devices connected (callers, window displays and evaluators for every
window, hall screens, the rest kiosks), every window's caller presses ``next`` at a steady
pace; measured is the time from the press's publish to the window display's ``set`` arriving.
At the same time, at the same pace and over the same broker, the broker's own two-hop
baseline: a client publishes, a relay client republishes, the first receives; what the
controller adds is the difference, under one load. The baseline is taken once more alone,
afterwards, for reference. Then kiosks take tickets as fast as replies come back, with durable
commits.

Processes as in a hall: the hall server (engine and bus, and unless an external broker is named
its own Mosquitto as a child process) as ``yimen serve`` runs it; the devices nobody times
(kiosks, evaluators, hall screens); and this one, with the callers and window displays being
timed and the baseline's clients, so both latencies are taken by the same clock under the same
load. Every device logs in with its own credential, made by the server as the demo's are; the
baseline's clients are logins of their own, allowed only their ``bench/`` topics.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import shutil
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

from controller.bench.procs import pct, recv, start, stop
from controller.config import parse_config
from protocol.link import BrokerAddress, MqttLink
from protocol.tasks import cancel_all

#: What the report calls the hall server's own broker.
OWN = "the hall server's own Mosquitto"


def bus_config(windows: int, devices: int, hall: str) -> dict[str, Any]:
    """The raw form of a generated hall (it crosses to the server's process as it is)."""
    ids = [f"{w:02d}" for w in range(1, windows + 1)]
    bound = [{"id": f"{k}-w{w}", "kind": kind, "window": w} for w in ids
             for k, kind in (("caller", "caller"), ("led", "window_display"), ("eval", "evaluator"))]
    screens = [{"id": f"hall-screen-{i}", "kind": "hall_display"} for i in range(1, 5)]
    kiosks = [{"id": f"kiosk-{i}", "kind": "kiosk"}
              for i in range(1, max(1, devices - len(bound) - len(screens)) + 1)]
    return {
        "hall": {"id": hall, "name": "压测大厅", "hours": ["00:00-24:00"], "national_calendar": False,
                 "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        "services": [{"code": "A", "name": "综合", "daily_cap": 99999}],
        "windows": [{"id": w, "services": ["A"]} for w in ids],
        "clerks": [{"id": f"9{w}", "name": f"员{w}", "windows": [w]} for w in ids],
        "devices": bound + screens + kiosks,
    }


def probes(windows: int) -> list[str]:
    """The baseline's logins: a relay and a pinger per window."""
    return ["bench-relay", *(f"bench-ping-{i}" for i in range(windows))]


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
                           interval_s: float, logins: dict[str, str]) -> list[float]:
    """Publish → relay client → back, over the same broker, same pacing (``logins``: user →
    password, from ``probes``)."""
    waiters: dict[str, asyncio.Future] = {}
    relay: MqttLink

    async def bounce(topic: str, payload: bytes) -> None:
        await relay.publish(topic.replace("/ping/", "/pong/"), payload)

    def answered(topic: str, payload: bytes) -> None:
        fut = waiters.pop(payload.decode(), None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    relay = MqttLink(broker, "bench-relay", username="bench-relay", password=logins.get("bench-relay"),
                     subscriptions=[root + "bench/ping/+"], on_message=bounce)
    pingers = [MqttLink(broker, f"bench-ping-{i}", username=f"bench-ping-{i}",
                        password=logins.get(f"bench-ping-{i}"), subscriptions=[root + f"bench/pong/{i}"],
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


def _serve(raw: dict[str, Any], folder: str, db: str | None, broker: str | None,
           conn: Connection) -> None:
    """The hall server's process: sends the broker's address, the devices' passwords and the
    baseline's logins when the bus is up, then, for every message until ``stop``, its CPU time,
    memory, log lines and the bus's error counters."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().addHandler(_LINES)
    asyncio.run(_serve_async(raw, folder, db, broker, conn))


class _LineCount(logging.Handler):
    """How many log lines (and characters) the server wrote."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines = self.chars = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1
        self.chars += len(self.format(record))


_LINES = _LineCount()


def rss_mib() -> float:
    """This process's resident memory now (Linux), in MiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


async def _serve_async(raw: dict[str, Any], folder: str, db: str | None, broker: str | None,
                       conn: Connection) -> None:
    from aiohttp import web

    from controller.bus.credentials import mosquitto_hash, new_password
    from controller.bus.hall_broker import BROKER
    from controller.bus.security import Grants
    from controller.server import create_app, device_passwords
    from controller.web.api import BUS
    from devices.simhall import simulated

    config = parse_config(raw, "<bench>")
    app = create_app(config, folder, db, broker=broker, broker_listen="127.0.0.1:0")
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        bus = app[BUS]
        await asyncio.wait_for(bus.link.connected.wait(), 30)
        own = app.get(BROKER)
        root = bus.topics.root
        logins = {user: new_password() for user in probes(len(config.windows))}
        if own is not None:                  # the baseline's clients: their bench/ topics only
            for user, password in logins.items():
                i = user.rsplit("-", 1)[1]
                grants = Grants(read=frozenset({root + "bench/ping/+"}),
                                write=frozenset({root + "bench/pong/+"})) if user == "bench-relay" \
                    else Grants(read=frozenset({root + f"bench/pong/{i}"}),
                                write=frozenset({root + f"bench/ping/{i}"}))
                own.extra[user] = (mosquitto_hash(password), grants)
        passwords = await device_passwords(app, simulated(config))      # refreshes the broker
        conn.send((bus.link.broker.host, bus.link.broker.port, passwords, logins))
        while await recv(conn, None) != "stop":
            conn.send({"errors": dict(bus.errors), "cpu_s": time.process_time(),
                       "broker_cpu_s": own.mosquitto.cpu_s() if own and own.mosquitto else None,
                       "rss_mib": rss_mib(), "log_lines": _LINES.lines, "log_chars": _LINES.chars,
                       "tasks": len(asyncio.all_tasks())})
    finally:
        await runner.cleanup()


def _crowd(raw: dict[str, Any], address: tuple[str, int], passwords: dict[str, str],
           conn: Connection) -> None:
    """The devices nobody times (kiosks, evaluators, hall screens) in a process of their own,
    as they would be boxes of their own: sends how many are connected, then for ``("take", n)``
    takes ``n`` tickets from all kiosks at once and sends the seconds it took."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_crowd_async(raw, address, passwords, conn))


async def _crowd_async(raw: dict[str, Any], address: tuple[str, int], passwords: dict[str, str],
                       conn: Connection) -> None:
    from devices.simhall import build_devices, connect_all

    config = parse_config(raw, "<bench>")
    sims = build_devices(config, BrokerAddress(*address), passwords, only=lambda i: not _timed(i))
    try:
        await connect_all(sims.values(), 120)
        gc.collect()
        gc.freeze()
        conn.send(len(sims))
        kiosks = [d for d in sims.values() if d.kind == "kiosk"]
        while (msg := await recv(conn, None)) != "stop":
            count = msg[1]
            t0 = time.perf_counter()

            async def takes(k, n: int) -> None:  # noqa: ANN001
                for _ in range(n):
                    await k.send("take", service="A")

            await asyncio.gather(*[takes(k, count // len(kiosks) + (i < count % len(kiosks)))
                                   for i, k in enumerate(kiosks)])
            conn.send(time.perf_counter() - t0)
    finally:
        await asyncio.gather(*[d.stop() for d in sims.values()])


def _timed(device_id: str) -> bool:
    """The devices whose latency is measured: every window's caller and display."""
    return device_id.startswith(("caller-w", "led-w"))


async def run(broker_url: str | None, devices: int, windows: int, presses: int,
              interval_s: float, tickets: int, db: str | None = None) -> dict[str, Any]:
    from devices.simhall import build_devices, connect_all

    hall = f"bench-{random.randrange(16**6):06x}"
    raw = bus_config(windows, devices, hall)
    config = parse_config(raw, "<bench>")
    folder = tempfile.mkdtemp(prefix="yimen-bench-bus-")
    server, server_conn = start(_serve, raw, folder, db, broker_url)
    procs, conns = [server], [server_conn]
    out: dict[str, Any] = {"broker": broker_url or OWN, "windows": windows}
    sims: dict[str, Any] = {}
    try:
        host, port, passwords, logins = await recv(server_conn)
        address = BrokerAddress(host, port)
        t0 = time.perf_counter()
        crowd, crowd_conn = start(_crowd, raw, (host, port), passwords)
        procs.append(crowd)
        conns.append(crowd_conn)
        sims = build_devices(config, address, passwords, only=_timed)
        await connect_all(sims.values(), 120)
        out["devices"] = len(sims) + await recv(crowd_conn, 120)
        out["connect_s"] = time.perf_counter() - t0
        await asyncio.sleep(1.0)                                  # retained sets settle
        gc.collect()
        gc.freeze()
        callers = [sims[f"caller-w{w.id}"] for w in config.windows]
        leds = [sims[f"led-w{w.id}"] for w in config.windows]
        crowd_conn.send(("take", windows * (presses + 1)))       # the people to call
        await recv(crowd_conn)
        await asyncio.gather(*[c.send("key", key="login", staff=f"9{c.id[-2:]}") for c in callers])
        missed: list[str] = []

        async def press(i: int) -> float | None:
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

        root = f"yimen/v1/{hall}/"
        pressed, out["baseline_ms"] = await asyncio.gather(   # the baseline under the same load
            _paced(windows, presses, interval_s, press),
            two_hop_baseline(address, root, windows, presses, interval_s, logins))
        out["next_to_set_ms"] = [ms for ms in pressed if ms is not None]
        out["missed"] = missed
        out["quiet_baseline_ms"] = await two_hop_baseline(address, root, windows, presses,
                                                          interval_s, logins)
        server_conn.send("stats")
        first = await recv(server_conn)
        crowd_conn.send(("take", tickets))
        out["tickets"] = tickets
        out["take_per_s"] = tickets / await recv(crowd_conn, 600)
        server_conn.send("stats")
        final = await recv(server_conn)
        out["bus_errors"] = final["errors"]
        out["server_cpu_ms_per_take"] = (final["cpu_s"] - first["cpu_s"]) * 1000 / tickets
        if final["broker_cpu_s"] is not None:
            out["broker_cpu_ms_per_take"] = \
                (final["broker_cpu_s"] - first["broker_cpu_s"]) * 1000 / tickets
    finally:
        await asyncio.gather(*[d.stop() for d in sims.values()])
        for proc, conn in reversed(list(zip(procs, conns, strict=True))):   # the devices, then the server
            stop(proc, conn)
        shutil.rmtree(folder, ignore_errors=True)
    return out


def report(out: dict[str, Any], target_ms: float = 5.0) -> str:
    nxt, base, quiet = out["next_to_set_ms"], out["baseline_ms"], out["quiet_baseline_ms"]
    added = pct(nxt, 99) - pct(base, 99)
    lines = [
        f"broker: {out['broker']}; {out['devices']} devices connected in {out['connect_s']:.1f} s;"
        f" {out['windows']} windows calling",
        f"caller next → window display set:   p50 {pct(nxt, 50):.2f} ms, p99 {pct(nxt, 99):.2f} ms"
        f" ({len(nxt)} presses)",
        f"broker two-hop baseline, same time: p50 {pct(base, 50):.2f} ms, p99 {pct(base, 99):.2f} ms"
        f" ({len(base)} round trips)",
        f"broker two-hop baseline, alone:     p50 {pct(quiet, 50):.2f} ms,"
        f" p99 {pct(quiet, 99):.2f} ms (afterwards, no presses)",
        f"controller adds at p99: {added:.2f} ms (target ≤ {target_ms:g} ms): "
        f"{'ok' if added <= target_ms else 'MISSED'}",
        f"kiosk take → ticket reply, durable: {out['take_per_s']:,.0f} tickets/s over "
        f"{out['tickets']} tickets (target ≥ 2,000): "
        f"{'ok' if out['take_per_s'] >= 2000 else 'MISSED'}",
        f"presses whose set did not arrive within 10 s: {len(out['missed'])} "
        f"{sorted(set(out['missed']))}",
        f"hall server CPU per take: {out['server_cpu_ms_per_take']:.3f} ms"
        + (f", Mosquitto's process {out['broker_cpu_ms_per_take']:.3f} ms"
           if "broker_cpu_ms_per_take" in out else ""),
        f"bus errors: {out['bus_errors'] or 'none'}",
    ]
    return "\n".join(lines)

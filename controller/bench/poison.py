"""``yimen bench poison``: a device flooding the hall with malformed events.

The hall server runs as ``yimen serve`` runs it (in a process of its own, its own Mosquitto
as a child unless ``--broker`` names one). One kiosk sends ``count`` malformed events — broken
JSON, JSON nested 1,000 deep, lone surrogates in ``event_id`` and in fields, fields out of
format, unknown types, oversized payloads — as fast as the broker takes them, while another
kiosk takes a ticket every ``take_every_s``. Measured: the server's memory before, at the end
and after it settles; its log lines; that every bad event got its error reply counted; that
every take in the meantime got its ticket.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from typing import Any

from controller.bench.bus import OWN, _serve, bus_config
from controller.bench.procs import recv, start, stop
from controller.config import parse_config
from protocol.link import BrokerAddress

#: Publishes awaiting their broker's acknowledgement at once.
IN_FLIGHT = 64
#: The malformed events, in turn (``{i}`` makes each event id new).
BAD = [
    b'{"event_id": "b{i}", "type": "take", "service": "A", "id_token": "\\ud800"}',
    b'{"event_id": "\\ud800{i}", "type": "take", "service": "A"}',
    b'{"event_id": "b{i}", "type": "take", "service": "A", "phone_tail": "12345"}',
    b'{"event_id": "b{i}", "type": "take", "service": 7}',
    b'{"event_id": "b{i}", "type": "dance"}',
    b'{"event_id": "b{i}", "type": "take", "service": "A", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    b"{not json {i}",
    b'{"event_id": "b{i}", "type": "take", "pad": "' + b"x" * 17000 + b'"}',
]


async def run(broker_url: str | None, count: int, take_every_s: float) -> dict[str, Any]:
    from devices.simhall import build_devices, connect_all

    raw = bus_config(2, 12, f"bench-{random.randrange(16**6):06x}")
    config = parse_config(raw, "<bench>")
    folder = tempfile.mkdtemp(prefix="yimen-bench-poison-")
    server, conn = start(_serve, raw, folder, None, broker_url)
    out: dict[str, Any] = {"broker": broker_url or OWN, "count": count}
    try:
        host, port, passwords, _ = await recv(conn)
        sims = build_devices(config, BrokerAddress(host, port), passwords,
                             only=lambda i: i in ("kiosk-1", "kiosk-2"))
        await connect_all(sims.values())
        bad, good = sims["kiosk-1"], sims["kiosk-2"]
        await good.send("take", service="A")                       # warm
        await asyncio.sleep(1.0)
        conn.send("stats")
        out["before"] = await recv(conn)

        flooding = True
        tickets: list[str] = []
        failed = 0

        async def takes() -> None:
            nonlocal failed
            while flooding:
                reply = await good.send("take", service="A", timeout=60)
                if reply.get("ok"):
                    tickets.append(reply["ticket"]["number"])
                else:
                    failed += 1
                await asyncio.sleep(take_every_s)

        taker = asyncio.create_task(takes())
        topic = bad.topics.device(bad.id, "event")
        t0 = time.perf_counter()
        for first in range(0, count, IN_FLIGHT):
            await asyncio.gather(*[
                bad.link.publish(topic, BAD[i % len(BAD)].replace(b"{i}", str(i).encode()))
                for i in range(first, min(count, first + IN_FLIGHT))])
        out["publish_s"] = time.perf_counter() - t0
        handled, still = -1, 0.0
        while still < 3.0:               # until no more error replies for 3 s
            conn.send("stats")
            stats = await recv(conn)
            now_handled = sum(stats["errors"].values())
            still = still + 0.5 if now_handled == handled else 0.0
            handled = now_handled
            if handled >= count:
                break
            await asyncio.sleep(0.5)
        out["handled_s"] = time.perf_counter() - t0 - still
        out["during"] = stats
        flooding = False
        await taker
        out["tickets"], out["failed_takes"] = len(tickets), failed
        await asyncio.sleep(3.0)
        conn.send("stats")
        out["after"] = await recv(conn)
        await asyncio.gather(*[d.stop() for d in sims.values()])
    finally:
        stop(server, conn)
    return out


def report(out: dict[str, Any]) -> str:
    before, during, after = out["before"], out["during"], out["after"]
    handled = sum(during["errors"].values())
    lines = [
        f"broker: {out['broker']}; {out['count']:,} malformed events published in "
        f"{out['publish_s']:.1f} s, the last answered after {out['handled_s']:.1f} s",
        "",
        "| | before | end of flood | 3 s later |",
        "|---|---:|---:|---:|",
        f"| server memory (RSS, MiB) | {before['rss_mib']:.1f} | {during['rss_mib']:.1f} | "
        f"{after['rss_mib']:.1f} |",
        f"| log lines | {before['log_lines']} | {during['log_lines']} | {after['log_lines']} |",
        f"| asyncio tasks | {before['tasks']} | {during['tasks']} | {after['tasks']} |",
        "",
        f"error replies counted: {handled:,} of {out['count']:,} "
        f"({json.dumps(during['errors'], sort_keys=True)}); the other "
        f"{out['count'] - handled:,} were dropped unread past the server's inbox",
        f"takes by another kiosk meanwhile: {out['tickets']} tickets, {out['failed_takes']} refused",
        f"memory growth: {after['rss_mib'] - before['rss_mib']:+.1f} MiB; log: "
        f"{after['log_chars'] - before['log_chars']:,} characters",
    ]
    return "\n".join(lines)

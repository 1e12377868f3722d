"""``yimen bench screens``: a call reaching every hall screen.

``clients`` hall-screen pages (Server-Sent Events on ``/api/stream``, as ``/screen`` opens
it) stay connected to a hall server in a process of its own (the demo hall, no MQTT). Clerks
call ``calls`` tickets, one about every ``interval_s``, through the HTTP API; measured for each
call is the time from the request leaving to the last of the clients receiving its ``call``
event, and the server's CPU time per call.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from importlib.resources import files
from typing import Any

import aiohttp

from controller.bench.procs import pct, recv, serve_cpu, server_cpu, start, stop
from controller.config import load_config
from protocol.tasks import cancel_all

DEMO = str(files("controller") / "halls" / "demo.toml")     # shipped in the package


def _serve(config_path: str, folder: str, conn) -> None:  # noqa: ANN001
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve_async(config_path, folder, conn))


async def _serve_async(config_path: str, folder: str, conn) -> None:  # noqa: ANN001
    from aiohttp import web

    from controller.server import create_app
    from controller.web.access import ACCOUNTS

    app = create_app(load_config(config_path), folder, bus=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:       # the bench's screens and clerks act as a supervisor's program would
        _, token = await app[ACCOUNTS].add_token("bench screens", ["supervisor"])
        conn.send((runner.addresses[0][1], token))
        await serve_cpu(conn)
    finally:
        await runner.cleanup()


async def _client(http: aiohttp.ClientSession, url: str, arrivals: dict[str, list[float]],
                  ready: asyncio.Event, count: list[int], clients: int) -> None:
    async with http.get(url) as resp:
        event = ""
        async for raw in resp.content:
            line = raw.decode()
            if line.startswith("event: "):
                event = line[7:].strip()
                if event == "board" and not ready.is_set():
                    count[0] += 1
                    if count[0] == clients:
                        ready.set()
            elif line.startswith("data: ") and event == "call":
                at = time.perf_counter()
                call_id = line.split('"call_id":"', 1)[1].split('"', 1)[0]
                arrivals.setdefault(call_id, []).append(at)


async def run(clients: int = 200, calls: int = 100, interval_s: float = 0.2,
              config_path: str = DEMO) -> dict[str, Any]:
    config = load_config(config_path)
    folder = tempfile.mkdtemp(prefix="yimen-bench-screens-")
    server, conn = start(_serve, config_path, folder)
    out: dict[str, Any] = {"clients": clients, "calls": calls}
    tasks: list[asyncio.Task] = []
    try:
        port, token = await recv(conn)
        base = f"http://127.0.0.1:{port}"
        windows = [w.id for w in config.windows]
        staff = {w: c.id for c in config.clerks for w in c.windows}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(None),
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            for svc in sorted({s for w in config.windows for s in w.services}):
                for _ in range(calls):                   # enough for any window's next
                    async with http.post(f"{base}/api/tickets", json={"service": svc}) as r:
                        await r.read()
            for w in windows:
                async with http.post(f"{base}/api/windows/{w}/login", json={"staff": staff[w]}) as r:
                    await r.read()
            arrivals: dict[str, list[float]] = {}
            ready, count = asyncio.Event(), [0]
            tasks = [asyncio.create_task(_client(http, f"{base}/api/stream", arrivals, ready,
                                                 count, clients)) for _ in range(clients)]
            await asyncio.wait_for(ready.wait(), 60)
            cpu0 = await server_cpu(conn)
            latencies = []
            for i in range(calls):
                before = set(arrivals)
                t0 = time.perf_counter()
                async with http.post(f"{base}/api/windows/{windows[i % len(windows)]}/next",
                                     json={}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"next refused: {await r.text()}")
                deadline = time.perf_counter() + 10
                while time.perf_counter() < deadline:
                    new = [c for c in arrivals if c not in before]
                    if new and len(arrivals[new[0]]) >= clients:
                        latencies.append((max(arrivals[new[0]]) - t0) * 1000)
                        break
                    await asyncio.sleep(0.001)
                await asyncio.sleep(interval_s)
            cpu1 = await server_cpu(conn)
            out["latency_ms"] = latencies
            out["missed"] = calls - len(latencies)
            out["server_cpu_ms_per_call"] = (cpu1 - cpu0) * 1000 / calls
            await cancel_all(tasks)
    finally:
        stop(server, conn)
        shutil.rmtree(folder, ignore_errors=True)
    return out


def report(out: dict[str, Any], target_ms: float = 100.0) -> str:
    lat = out["latency_ms"]
    p99 = pct(lat, 99)
    return "\n".join([
        f"{out['clients']} hall-screen clients (server-sent events), {out['calls']} calls",
        f"call → last client received it: p50 {pct(lat, 50):.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(lat):.1f} ms (target p99 < {target_ms:g} ms: {'ok' if p99 < target_ms else 'MISSED'})",
        f"calls not received by every client within 10 s: {out['missed']}",
        f"hall server CPU per call (its pushes to every client included): "
        f"{out['server_cpu_ms_per_call']:.2f} ms",
    ])

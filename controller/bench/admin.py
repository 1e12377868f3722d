"""``yimen bench admin``: the duty dashboard of a big hall — 60 windows, 300 devices.

The hall server runs in a process of its own with its own Mosquitto; its device registry
holds all 300 devices as if each had announced itself (a tenth offline, kiosks' paper low
or out now and then), 60 clerks are logged in and some hundreds of tickets wait. Measured:

- the dashboard page (``/admin``) and its live part (``/admin/dashboard/panel``) rendered
  for a signed-in administrator, one request after another: p50 and p99;
- the server's CPU for the live updates: ``dashboards`` open dashboards (each follows
  ``/admin/stream`` and reads its panel again at most once a second after the pushes, as
  ``admin.js`` does) while tickets are taken and called at ``rate`` a second, against the
  same load with no dashboard open, in the same run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w

from controller.bench.procs import pct, recv, serve_cpu, server_cpu, start, stop
from protocol.tasks import cancel_all

PASSWORD = "bench-admin-password-2026"


def big_hall(windows: int = 60, devices: int = 300) -> dict[str, Any]:
    """A county hall of ``windows`` windows and ``devices`` devices, as a hall file's data."""
    services = [{"code": c, "name": f"业务{c}", "category": "综合", "daily_cap": 9999}
                for c in "ABCDEFGHJK"]
    ids = [str(i) for i in range(1, windows + 1)]
    out = [{"id": f"caller-{w}", "kind": "caller", "window": w} for w in ids]
    out += [{"id": f"led-{w}", "kind": "window_display", "window": w} for w in ids]
    out += [{"id": f"eval-{w}", "kind": "evaluator", "window": w} for w in ids]
    out += [{"id": f"term-{w}", "kind": "terminal"} for w in ids]
    rest = devices - len(out)
    out += [{"id": f"kiosk-{i}", "kind": "kiosk"} for i in range(1, rest // 2 + 1)]
    out += [{"id": f"screen-{i}", "kind": "hall_display"} for i in range(1, rest - rest // 2 + 1)]
    return {
        "hall": {"id": "bench-admin", "name": "基准县政务服务中心", "national_calendar": False,
                 "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        "services": services,
        "windows": [{"id": w, "services": [services[i % len(services)]["code"],
                                           services[(i + 1) % len(services)]["code"]]}
                    for i, w in enumerate(ids)],
        "clerks": [{"id": f"9{int(w):03d}", "name": f"员工{w}", "windows": [w]} for w in ids],
        "devices": out[:devices],
        "bus": {"listen": "127.0.0.1:0"},
    }


def _serve(config_path: str, folder: str, conn) -> None:  # noqa: ANN001
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve_async(config_path, folder, conn))


async def _serve_async(config_path: str, folder: str, conn) -> None:  # noqa: ANN001
    from aiohttp import web

    from controller.bus.service import DeviceRecord
    from controller.config import load_config
    from controller.server import create_app
    from controller.web.access import ACCOUNTS
    from controller.web.api import BUS

    config = load_config(config_path)
    app = create_app(config, folder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await app[ACCOUNTS].add_user("bench", ["admin"], PASSWORD, "基准管理员")
        _, token = await app[ACCOUNTS].add_token("bench admin", ["supervisor"])
        rng, now = random.Random(7), datetime.now(UTC)
        registry = app[BUS].registry         # as if every device had announced itself
        for d in config.devices:
            offline = rng.random() < 0.1
            registry[d.id] = DeviceRecord(
                id=d.id, kind=d.kind, model="bench", fw="1.0", online=not offline,
                last_seen=now - timedelta(minutes=rng.randint(1, 300) if offline else 0),
                last_error="printer: paper jam" if rng.random() < 0.03 else None,
                state={"paper": rng.choice(["ok", "ok", "ok", "low", "out"])} if d.kind == "kiosk" else None)
        conn.send((runner.addresses[0][1], token))
        await serve_cpu(conn)
    finally:
        await runner.cleanup()


async def _dashboard(http: aiohttp.ClientSession, base: str, reads: list[int]) -> None:
    """One open dashboard: its pushes, and its panel read again at most once a second."""
    pending: asyncio.Task | None = None
    last = 0.0

    async def refresh() -> None:
        nonlocal last
        await asyncio.sleep(max(0.0, last + 1.0 - time.monotonic()))
        last = time.monotonic()
        async with http.get(f"{base}/admin/dashboard/panel") as r:
            await r.read()
        reads[0] += 1

    async with http.get(f"{base}/admin/stream") as resp:
        async for raw in resp.content:
            if raw.startswith(b"event: board") and (pending is None or pending.done()):
                pending = asyncio.create_task(refresh())


async def _load(http: aiohttp.ClientSession, base: str, windows: list[str], rate: float,
                seconds: float, rng: random.Random, services: list[str]) -> int:
    """Tickets taken and called at ``rate`` a second for ``seconds``; how many."""
    done, t_end = 0, time.monotonic() + seconds
    while time.monotonic() < t_end:
        if done % 2:
            path, body = f"/api/windows/{rng.choice(windows)}/next", {}
        else:
            path, body = "/api/tickets", {"service": rng.choice(services)}
        async with http.post(base + path, json=body) as r:
            await r.read()
        done += 1
        await asyncio.sleep(1 / rate)
    return done


async def run(requests: int = 300, dashboards: int = 10, rate: float = 4.0,
              seconds: float = 15.0) -> dict[str, Any]:
    data = big_hall()
    folder = Path(tempfile.mkdtemp(prefix="yimen-bench-admin-"))
    config_path = folder / "hall.toml"
    config_path.write_text(tomli_w.dumps(data), encoding="utf-8")
    server, conn = start(_serve, str(config_path), str(folder / "data"))
    out: dict[str, Any] = {"windows": len(data["windows"]), "devices": len(data["devices"]),
                           "requests": requests, "dashboards": dashboards, "rate": rate, "seconds": seconds}
    try:
        port, token = await recv(conn, 120)
        base = f"http://127.0.0.1:{port}"
        windows = [w["id"] for w in data["windows"]]
        services = [s["code"] for s in data["services"]]
        rng = random.Random(11)
        api = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        person = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with api, person:
            for i in range(600):                          # a busy morning: lines at every service
                take = {"service": services[i % len(services)]}
                async with api.post(f"{base}/api/tickets", json=take) as r:
                    await r.read()
            for w, clerk in zip(windows, data["clerks"], strict=True):
                for op, body in (("login", {"staff": clerk["id"]}), ("next", {})):
                    async with api.post(f"{base}/api/windows/{w}/{op}", json=body) as r:
                        await r.read()
            async with person.post(f"{base}/api/auth/login", json={"user": "bench", "password": PASSWORD},
                                   headers={"Origin": base}) as r:
                if r.status != 200:
                    raise RuntimeError(f"sign-in refused: {await r.text()}")
            for path in ("/admin", "/admin/dashboard/panel"):
                times = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    async with person.get(base + path) as r:
                        page = await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"{path}: {r.status}")
                    times.append((time.perf_counter() - t0) * 1000)
                out[path] = times
                out[f"{path} bytes"] = len(page)
            for label, count in (("unwatched", 0), ("watched", dashboards)):
                reads = [0]
                tasks = [asyncio.create_task(_dashboard(person, base, reads)) for _ in range(count)]
                await asyncio.sleep(1.5)                 # connected, first panel read
                reads[0] = 0
                cpu0 = await server_cpu(conn)
                commands = await _load(api, base, windows, rate, seconds, rng, services)
                cpu1 = await server_cpu(conn)
                out[label] = {"cpu_s": cpu1 - cpu0, "commands": commands, "panel_reads": reads[0]}
                await cancel_all(tasks)
    finally:
        stop(server, conn)
        shutil.rmtree(folder, ignore_errors=True)
    return out


def report(out: dict[str, Any], target_ms: float = 100.0) -> str:
    lines = [f"dashboard of a hall with {out['windows']} windows and {out['devices']} devices, "
             f"{out['requests']} requests each, one after another:"]
    for path in ("/admin", "/admin/dashboard/panel"):
        t = out[path]
        p99 = pct(t, 99)
        lines.append(f"  {path}: p50 {pct(t, 50):.1f} ms, p99 {p99:.1f} ms, max {max(t):.1f} ms, "
                     f"{out[f'{path} bytes'] // 1024} KiB (target p99 < {target_ms:g} ms: "
                     f"{'ok' if p99 < target_ms else 'MISSED'})")
    base, dash = out["unwatched"], out["watched"]
    s = out["seconds"]
    extra = (dash["cpu_s"] - base["cpu_s"]) / s * 100
    lines += [
        f"live updates, {out['rate']:g} commands a second for {s:g} s (tickets taken and called):",
        f"  no dashboard open: server CPU {base['cpu_s'] / s * 100:.1f} % ({base['commands']} commands)",
        f"  {out['dashboards']} dashboards open: server CPU {dash['cpu_s'] / s * 100:.1f} % "
        f"({dash['commands']} commands, {dash['panel_reads']} panel reads)",
        f"  the dashboards' share: {extra:.1f} % of one core, "
        f"{extra / max(1, out['dashboards']):.2f} % per dashboard",
    ]
    return "\n".join(lines)

"""``yimen bench auth``: what signing in and checking credentials cost.

A login's argon2id check (the parameters of ``controller.auth.secrets``), and the time
authentication adds to an API call: the same ``GET /api/board`` over HTTP on one running
hall, sent without credentials, with a program's Bearer token and with a person's session
cookie, interleaved in one run so the machine's noise falls on all three alike.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from controller.auth.secrets import HASHER, hash_password
from controller.bench.procs import pct
from controller.config import load_config


async def run(calls: int = 3000, logins: int = 20) -> dict[str, Any]:
    from controller.cli import DEMO_CONFIG
    from controller.server import create_app
    from controller.web.access import ACCOUNTS
    from controller.web.auth import COOKIE

    stored = hash_password("bench password 123")
    hashing = []
    for _ in range(logins):
        t0 = time.perf_counter()
        HASHER.verify(stored, "bench password 123")
        hashing.append((time.perf_counter() - t0) * 1000)
    config = load_config(DEMO_CONFIG)
    with tempfile.TemporaryDirectory() as data:
        server = TestServer(create_app(config, Path(data), bus=False), access_log=None)
        await server.start_server()
        try:
            accounts = server.app[ACCOUNTS]
            _, token = await accounts.add_token("bench", ["viewer"])
            await accounts.add_user("bench", ["viewer"], "bench password 123")
            url = str(server.make_url("/api/board"))
            async with aiohttp.ClientSession() as http:
                r = await http.post(server.make_url("/api/auth/login"),
                                    json={"user": "bench", "password": "bench password 123"})
                cookie = r.cookies[COOKIE].value
                kinds = {"none": {}, "bearer": {"Authorization": f"Bearer {token}"},
                         "session": {"Cookie": f"{COOKIE}={cookie}"}}
                times: dict[str, list[float]] = {k: [] for k in kinds}
                for i in range(calls + 200):
                    for kind, headers in kinds.items():
                        t0 = time.perf_counter()
                        async with http.get(url, headers=headers) as resp:
                            await resp.read()
                            assert resp.status == 200
                        if i >= 200:                        # the first ones warm up
                            times[kind].append((time.perf_counter() - t0) * 1000)
        finally:
            await server.close()
    params = f"argon2id t={HASHER.time_cost} m={HASHER.memory_cost // 1024} MiB p={HASHER.parallelism}"
    return {"calls": calls, "logins": logins, "hash_ms": hashing, "times": times, "params": params}


def report(result: dict[str, Any]) -> str:
    h, t = result["hash_ms"], result["times"]
    base = statistics.median(t["none"])
    lines = [f"login: {result['params']}: median {statistics.median(h):.0f} ms, "
             f"min {min(h):.0f}, max {max(h):.0f} ms ({result['logins']} checks)",
             f"GET /api/board × {result['calls']} each, interleaved:"]
    for kind, values in t.items():
        lines.append(f"  {kind:8s} p50 {statistics.median(values):.3f} ms  p90 {pct(values, 90):.3f} ms"
                     + ("" if kind == "none" else f"  (+{statistics.median(values) - base:.3f} ms at p50)"))
    return "\n".join(lines)


def main(calls: int, logins: int) -> str:
    return report(asyncio.run(run(calls, logins)))

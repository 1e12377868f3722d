"""What the benchmarks that run parts of a hall in processes of their own share."""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
from multiprocessing.connection import Connection
from typing import Any


def pct(values: list[float], p: int) -> float:
    """The ``p``-th percentile (inclusive method); the value itself for one."""
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 \
        else (values[0] if values else float("nan"))


async def recv(conn: Connection, timeout: float | None = 60) -> Any:
    """The next message from a bench process, without blocking the loop."""
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, conn.poll, timeout):
        raise TimeoutError("a bench process did not answer")
    return conn.recv()


async def serve_cpu(conn: Connection) -> None:
    """In a bench's server process: answer each request with the process's CPU time so far,
    until told to stop."""
    import time

    while await recv(conn, None) != "stop":
        conn.send(time.process_time())


async def server_cpu(conn: Connection) -> float:
    """The CPU seconds the bench's server process has used so far (it runs ``serve_cpu``)."""
    conn.send("cpu")
    return float(await recv(conn))


def start(target, *args: Any) -> tuple[Any, Connection]:  # noqa: ANN001
    """``target(*args, conn)`` in a fresh (spawned) process; not a daemon, as the hall
    server it may run starts a broker child of its own."""
    mp = multiprocessing.get_context("spawn")
    conn, child = mp.Pipe()
    proc = mp.Process(target=target, args=(*args, child))
    proc.start()
    return proc, conn


def stop(proc: Any, conn: Connection) -> None:
    """Ask it to stop ("stop"), wait up to 30 s, then kill it."""
    try:
        conn.send("stop")
    except OSError:
        pass
    proc.join(30)
    if proc.is_alive():
        proc.kill()

"""A flood of slow or idle connections from the hall's own network: one address holds at
most its share of connections, a request's head and body must arrive in time, and the server
goes on answering everyone else, with a log that stays small."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from controller.server import create_app
from controller.startup import bind_http
from controller.web.limits import Limits, serving
from tests.helpers import small_config

OTHER = "127.0.0.2"           # another client's address (all of 127/8 is this machine)
HEAD = b"GET /api/health HTTP/1.1\r\nHost: hall\r\n"      # no blank line: never finished


@asynccontextmanager
async def served(tmp_path, clock, limits: Limits):  # noqa: ANN001, ANN201
    sock = bind_http("127.0.0.1", 0)
    app = create_app(small_config(), tmp_path / "data", clock=clock, bus=False)
    try:
        async with serving(app, sock, lambda _: limits) as guard:
            yield guard, sock.getsockname()[1]
    finally:
        sock.close()


async def health(port: int, timeout: float = 2.0) -> float:
    """Seconds for ``/api/health`` to answer a client at another address."""
    started = time.monotonic()
    connector = aiohttp.TCPConnector(local_addr=(OTHER, 0))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(timeout)) as http:
        async with http.get(f"http://127.0.0.1:{port}/api/health") as r:
            assert r.status == 200 and (await r.json())["ok"] is True
    return time.monotonic() - started


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sends before it closes the connection, which it must within ``seconds``."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_one_address_holds_its_share_and_others_are_served(tmp_path, clock, caplog):
    caplog.set_level(logging.INFO)
    limits = Limits(per_client=20, total=1000, head_s=1.0, body_s=1.0)
    async with served(tmp_path, clock, limits) as (guard, port):
        flood = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
        for _, writer in flood:
            writer.write(HEAD)                                  # slow: never finished
        refused = [await closed_within(r, 2) for r, _ in flood[20:]]
        assert all(answer.startswith(b"HTTP/1.1 503") for answer in refused)
        assert "连接过多".encode() in refused[0]
        assert guard.by_client == {"127.0.0.1": 20}
        assert await health(port) < 0.5                        # everyone else: at once
        held = await asyncio.gather(*[closed_within(r, 3) for r, _ in flood[:20]])
        assert held == [b""] * 20                               # closed: no head in time
        assert guard.open == 0 and guard.timed_out == 20
        for _, writer in flood:
            writer.close()
    lines = [r for r in caplog.records if r.name.startswith("yimen.web")]
    assert len(lines) <= 12, [r.getMessage() for r in lines]   # 40 refused, 20 timed out


async def test_a_trickled_head_or_body_is_cut_off_and_a_quick_one_is_not(tmp_path, clock):
    limits = Limits(per_client=20, total=1000, head_s=0.6, body_s=0.6)
    async with served(tmp_path, clock, limits) as (guard, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        sent = 0
        while not reader.at_eof() and time.monotonic() - started < 3:   # slowloris
            writer.write(b"X-Slow-%d: 1\r\n" % sent if sent else HEAD)
            sent += 1
            await asyncio.sleep(0.1)
            if reader.at_eof() or writer.is_closing():
                break
        assert await closed_within(reader, 1) == b""
        assert 0.5 < time.monotonic() - started < 2.0, "closed after the head's time-out"
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/tickets HTTP/1.1\r\nHost: hall\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"serv")              # a body that never comes
        started = time.monotonic()
        await closed_within(reader, 3)               # whatever was answered, then closed
        assert 0.5 < time.monotonic() - started < 2.0, "closed after the body's time-out"
        writer.close()

        assert guard.timed_out == 2
        # a kept-alive client that is quick is not cut off while idle between its requests
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(2):
                async with http.get(f"http://127.0.0.1:{port}/api/health") as r:
                    assert r.status == 200
                await asyncio.sleep(0.8)                   # longer than a head may take
        assert guard.timed_out == 2


def test_a_repeated_log_line_is_let_through_a_few_times_then_counted(caplog):
    from controller.logs import RateLimitedLog

    now = [0.0]
    logger = logging.getLogger("tests.limits.flood")
    limit = RateLimitedLog(logger, per_window=3, window_s=60, clock=lambda: now[0]).filter()
    logger.addFilter(limit)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            for fd in range(10):                           # asyncio names a socket each time
                logger.error("socket.accept() out of system resource\nsocket: <fd=%d>", fd)
            now[0] = 61.0
            logger.error("socket.accept() out of system resource\nsocket: <fd=99>")
    finally:
        logger.removeFilter(limit)
    said = [r.getMessage().partition("\n")[0] for r in caplog.records]
    assert said == ["socket.accept() out of system resource"] * 3 + [
        "7 more 'socket.accept() out of system resource' messages were left out in the last 61 s",
        "socket.accept() out of system resource"]


SERVER = """
import asyncio, logging, sys
from controller.server import create_app, run
from tests.helpers import small_config
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
asyncio.run(run(create_app(small_config(), sys.argv[1], bus=False), "127.0.0.1:0"))
"""


def _usual_open_files() -> None:
    """The child starts with the usual soft limit of 1,024 open files."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


@pytest.mark.slow                               # a server process and 1,100 connections
async def test_a_server_survives_1100_slow_connections_from_one_address(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard open-file limit ({hard}) leaves no room to flood")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048) if hard == resource.RLIM_INFINITY
                                                else min(max(soft, 2048), hard), hard))
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=log, text=True, preexec_fn=_usual_open_files,
                            cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    flood: list[asyncio.StreamWriter] = []
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)   # type: ignore[union-attr]
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        assert any(row.startswith("Max open files") and row.split()[3] != "1024"
                   for row in limits.splitlines()), limits        # raised to the hard limit

        async def slow() -> None:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(HEAD)
                flood.append(writer)
            except OSError:
                pass

        await asyncio.gather(*[slow() for _ in range(1100)])
        await asyncio.sleep(1)
        times = [await health(port, timeout=5) for _ in range(5)]
        assert max(times) < 1.0, times
        assert proc.poll() is None
    finally:
        for writer in flood:
            writer.close()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        log.close()
    text = (tmp_path / "server.log").read_text()
    assert code == 0, text[-2000:]
    assert "Too many open files" not in text
    assert len(text) < 10_000, text[-3000:]

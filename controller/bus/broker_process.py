"""The embedded broker in a process of its own, as ``yimen serve`` runs it.

amqtt handles every message in Python: on the hall server's own loop it took about two thirds
of the loop's time under a full hall, and every call waited behind other devices' traffic.
In a child process it has a core of its own and the engine's loop only handles the hall.

The child ignores Ctrl-C and SIGTERM — a terminal or a service manager signals the whole
process group, and the parent stops it in order, after the devices and the bus — and stops by
itself, saving its retained messages, when the parent goes away (its end of the pipe closes),
so a killed hall server never leaves a broker holding the port.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from amqtt.errors import BrokerError

from controller.bus.broker import EmbeddedBroker
from controller.config import HallConfig
from controller.startup import StartupError, busy_port
from protocol.link import BrokerAddress

log = logging.getLogger("yimen.broker")

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


class BrokerProcess:
    """Same face as ``EmbeddedBroker`` (``start``, ``address``, ``stop``), plus ``cpu_s``."""

    def __init__(self, config: HallConfig, secret: str, data_dir: str | Path,
                 listen: str | None = None) -> None:
        self._args = (config, secret, str(data_dir), listen)
        bind = BrokerAddress.parse(listen or config.bus.listen)
        self.host, self.port = bind.host, bind.port
        self._proc: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()       # one request at a time on the pipe

    async def start(self) -> BrokerAddress:
        self.launch()
        return await self.ready()

    def launch(self) -> None:
        """Start the broker's process; ``ready`` waits until it listens (meanwhile the hall
        server opens its database: the two starts overlap)."""
        mp = multiprocessing.get_context("spawn")
        self._conn, child = mp.Pipe()
        self._proc = mp.Process(target=_main, name="yimen-broker", daemon=True,
                                args=(*self._args, logging.getLogger().level, child))
        self._proc.start()
        child.close()

    async def ready(self) -> BrokerAddress:
        """The broker's address once it listens, or a ``StartupError`` saying why not."""
        answer = await asyncio.to_thread(self._receive, START_TIMEOUT_S)
        if not (isinstance(answer, tuple) and answer[0] == "ready"):
            await self.stop()
            raise self._failed(answer)
        self.port = answer[1]
        log.info("embedded MQTT broker on %s:%d (process %d)", self.host, self.port, self._proc.pid)
        return self.address

    def _failed(self, answer: Any) -> StartupError:
        """Why the broker did not start, in one line: ``("error", errno, text)`` from its
        process, or what ``_receive`` saw."""
        if isinstance(answer, tuple) and answer[1] == errno.EADDRINUSE:
            return busy_port("MQTT", self.host, self.port, "--mqtt")
        why = answer[2] if isinstance(answer, tuple) else answer
        return StartupError(f"内置 MQTT 代理未能启动：{why}",
                            f"the embedded MQTT broker did not start: {why}")

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.port)

    async def set_access(self, config: HallConfig) -> None:
        """Who may log in and what each may read and write, from ``config``'s devices."""
        answer = await asyncio.to_thread(self._ask, ("access", config))
        if answer != "ok":
            log.error("the embedded broker did not take the devices' new access: %s", answer)

    async def cpu_s(self) -> float:
        """The broker process's CPU time so far (user + system), in seconds."""
        return await asyncio.to_thread(self._ask, "cpu")

    async def stop(self) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        try:
            with self._lock:
                self._pipe.send("stop")
        except OSError:
            pass                        # already gone
        await asyncio.to_thread(proc.join, STOP_TIMEOUT_S)
        if proc.is_alive():
            log.error("embedded broker did not stop within %g s; killing it", STOP_TIMEOUT_S)
            proc.kill()
            await asyncio.to_thread(proc.join, 5)
        self._pipe.close()

    @property
    def _pipe(self) -> Connection:
        """The pipe to the broker process, from ``start`` on."""
        assert self._conn is not None
        return self._conn

    def _ask(self, request: Any) -> Any:
        with self._lock:
            self._pipe.send(request)
            return self._receive(10)

    def _receive(self, timeout: float) -> Any:
        if not self._pipe.poll(timeout):
            return f"no answer within {timeout:g} s"
        try:
            return self._pipe.recv()
        except EOFError:
            return "the broker process ended"


def _main(config: HallConfig, secret: str, data_dir: str, listen: str | None, level: int,
          conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=level or logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level > logging.DEBUG:                 # as the CLI does: amqtt is chatty below WARNING
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(_serve(EmbeddedBroker(config, secret, data_dir, listen), conn))


async def _serve(broker: EmbeddedBroker, conn: Connection) -> None:
    amqtt_log = logging.getLogger("amqtt.broker")
    level = amqtt_log.level
    amqtt_log.setLevel(logging.CRITICAL)     # a failed start is the parent's one line, no traceback
    try:
        address = await broker.start()
    except (OSError, BrokerError) as exc:
        cause = exc.__cause__ if isinstance(exc, BrokerError) and exc.__cause__ else exc
        conn.send(("error", getattr(cause, "errno", None), str(cause)))
        return
    finally:
        amqtt_log.setLevel(level)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(target=_requests, args=(conn, loop, stop, broker), daemon=True).start()
    conn.send(("ready", address.port))
    try:
        await stop.wait()
    finally:
        await broker.stop()


async def _set_access(broker: EmbeddedBroker, config: HallConfig) -> None:
    broker.set_access(config)         # on the broker's loop, between two of its checks


def _requests(conn: Connection, loop: asyncio.AbstractEventLoop, stop: asyncio.Event,
              broker: EmbeddedBroker) -> None:
    """Answers the parent's requests until ``stop`` or until the parent is gone."""
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        if request == "stop":
            break
        if request == "cpu":
            conn.send(time.process_time())
        elif isinstance(request, tuple) and request[0] == "access":
            asyncio.run_coroutine_threadsafe(_set_access(broker, request[1]), loop).result()
            conn.send("ok")
    loop.call_soon_threadsafe(stop.set)

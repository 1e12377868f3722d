"""Several halls on one server (一台服务器托管多个大厅): the county's server hosting the town
centres that have no server of their own.

``yimen serve-halls --halls DIR --data ROOT [--db URL] [--broker URL]`` runs every hall file
in ``DIR`` (``*.toml``) in one process, each exactly as ``yimen serve`` runs one: its own
single-writer engine, its own data folder (``ROOT/{hall id}``, locked), its own HTTP listener
(its file's ``server.http``) and device bus; with ``--db`` all on one PostgreSQL database
(every row carries its hall; each hall's engine holds its hall's lock there). The folder is
read again every ``SCAN_S``: a new file is a hall started, a removed one a hall stopped — the
others go on serving meanwhile. A file that does not load, or a hall that cannot start, is
said in the log and left out; the others are not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from controller.config import ConfigError, HallConfig, load_config
from controller.server import create_app, parse_listen, stop_on_signals
from controller.startup import StartupError, bind_http, data_folder_lock
from controller.web import limits
from controller.web.api import ENGINE

log = logging.getLogger("yimen.halls")
SCAN_S = 5.0


@dataclass
class Hosted:
    """One running hall."""

    hall: str
    stack: AsyncExitStack
    locks: ExitStack
    port: int
    app: web.Application


@dataclass
class Halls:
    folder: Path
    data: Path
    db_url: str | None = None
    broker: str | None = None
    scan_s: float = SCAN_S
    running: dict[Path, Hosted] = field(default_factory=dict)
    failed: dict[Path, str] = field(default_factory=dict)    # file → why it is not running

    async def scan(self) -> None:
        """Start the halls whose files appeared (or changed after failing), stop those removed.
        Whatever goes wrong with one file is said and stays with it: the others go on."""
        files = {p.resolve() for p in self.folder.glob("*.toml")}
        for path in sorted(set(self.running) - files):
            try:
                await self.stop(path)
            except Exception:  # noqa: BLE001 - stopped as far as it would; the others go on
                log.exception("hall file %s removed; its hall did not stop cleanly", path.name)
        for path in sorted(files - set(self.running)):
            try:
                stamp = f"{path.stat().st_mtime_ns}"
            except OSError:
                continue                                   # removed while being read
            if self.failed.get(path, "").startswith(stamp):
                continue                                   # said already; unchanged since
            try:
                await self.start(path)
                self.failed.pop(path, None)
            except (ConfigError, StartupError) as exc:
                self.failed[path] = f"{stamp} {exc}"
                log.error("hall file %s not started: %s", path.name, exc)
            except Exception as exc:  # noqa: BLE001 - one hall's failure is not the others'
                self.failed[path] = f"{stamp} {exc}"
                log.exception("hall file %s not started", path.name)

    async def start(self, path: Path) -> Hosted:
        config: HallConfig = load_config(path)
        if any(h.hall == config.hall.id for h in self.running.values()):
            raise StartupError(f"大厅 {config.hall.id} 已在运行", f"hall {config.hall.id} runs already")
        locks = ExitStack()
        stack = AsyncExitStack()
        try:
            data = self.data / config.hall.id
            locks.enter_context(data_folder_lock(data))
            app = create_app(config, data, self.db_url, broker=self.broker)
            host, port = parse_listen(config.server.http)
            sock = bind_http(host, port)
            stack.callback(sock.close)
            await stack.enter_async_context(limits.serving(
                app, sock, lambda started: limits.Limits.of(started[ENGINE].config.server)))
        except BaseException:
            await stack.aclose()
            locks.close()
            raise
        hosted = self.running[path] = Hosted(config.hall.id, stack, locks, sock.getsockname()[1], app)
        log.info("hall %s serving on http://%s:%d", config.hall.id, host, hosted.port)
        return hosted

    async def stop(self, path: Path) -> None:
        hosted = self.running.pop(path)
        try:
            await hosted.stack.aclose()
        finally:
            hosted.locks.close()
        log.info("hall %s stopped", hosted.hall)

    async def run(self) -> None:
        """Serve until cancelled, reading the folder again every ``scan_s``."""
        try:
            while True:
                await self.scan()
                await asyncio.sleep(self.scan_s)
        finally:
            for path in list(self.running):
                with contextlib.suppress(Exception):
                    await self.stop(path)


async def serve(folder: Path, data: Path, db_url: str | None, broker: str | None) -> None:
    """``yimen serve-halls``: until SIGINT or SIGTERM."""
    halls = Halls(folder, data, db_url, broker)
    stop = stop_on_signals()
    task = asyncio.create_task(halls.run())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    waiter.cancel()

"""The hall server (``yimen serve``): storage, engine and HTTP, owned by one aiohttp app."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from controller.clock import Clock
from controller.config import HallConfig
from controller.engine import Engine
from controller.storage.db import database_url, open_database, upgrade
from controller.web.api import ENGINE, add_routes

log = logging.getLogger("yimen.server")


def create_app(config: HallConfig, data_dir: str | Path, db_url: str | None = None,
               clock: Clock | None = None) -> web.Application:
    """The app factory: ``cleanup_ctx`` opens the database, migrates it, runs the engine, and
    closes all of it in reverse order."""
    app = web.Application(client_max_size=64 * 1024)

    async def hall(app: web.Application) -> AsyncIterator[None]:
        url = database_url(db_url or config.storage.url, data_dir)
        db = open_database(url, config.storage.synchronous)
        try:
            await upgrade(db)
            engine = Engine(config, db, clock)
            await engine.start()
            app[ENGINE] = engine
            gc.collect()
            gc.freeze()  # the loaded state and libraries are not rescanned by every full GC
            log.info("hall %s open on %s", config.hall.id, db.url.render_as_string(hide_password=True))
            yield
            await engine.stop()
            log.info("hall %s closed", config.hall.id)
        finally:
            await db.dispose()

    app.cleanup_ctx.append(hall)
    add_routes(app)
    return app


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


async def run(app: web.Application, listen: str, banner: str = "") -> None:
    """Serve until SIGINT or SIGTERM; print the address (the real port when 0 was asked)."""
    host, port = parse_listen(listen)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1] if site._server else port  # noqa: SLF001
        print(f"{banner}listening on http://{host}:{bound}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()

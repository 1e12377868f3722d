"""The hall server (``yimen serve``): storage, engine, device bus and HTTP, owned by one
aiohttp app."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from controller.bus import security
from controller.bus.broker_process import BrokerProcess
from controller.bus.calls import CallLog
from controller.bus.service import HallBus
from controller.clock import Clock
from controller.config import HallConfig
from controller.core.events import EventKind
from controller.engine import Committed, Engine
from controller.startup import StartupError, bind_http, migrate
from controller.storage.db import database_url, open_database
from controller.storage.hall_lock import HallInUse
from controller.web.api import BUS, ENGINE, add_routes
from controller.web.config_api import IMPORT_LIMIT, add_config_routes
from controller.web.feed import FEED, ScreenFeed
from controller.web.pages import add_page_routes
from protocol.credentials import derived_password
from protocol.link import BrokerAddress
from protocol.tasks import cancel_all

log = logging.getLogger("yimen.server")

#: The embedded broker's process, when the server runs one (absent with an external broker).
BROKER: web.AppKey[BrokerProcess] = web.AppKey("broker", BrokerProcess)


def create_app(config: HallConfig, data_dir: str | Path, db_url: str | None = None,
               clock: Clock | None = None, broker: str | None = None, bus: bool = True,
               broker_listen: str | None = None) -> web.Application:
    """The app factory: ``cleanup_ctx`` opens the database, migrates it, runs the engine, the
    broker (embedded unless ``broker`` or the config's ``bus.broker`` names one) and the
    device bus, and closes all of it in reverse order."""
    app = web.Application(client_max_size=IMPORT_LIMIT)   # each route has its own, smaller limit

    async def hall(app: web.Application) -> AsyncIterator[None]:
        embedded = None
        secret = security.load_secret(config, data_dir) if bus else ""
        if bus and not (broker or config.bus.broker):
            # the broker's process starts while the database opens and the state is rebuilt
            embedded = BrokerProcess(config, secret, data_dir, broker_listen)
            embedded.launch()
        url = database_url(db_url or config.storage.url, data_dir)
        db = open_database(url, config.storage.synchronous)
        try:
            await migrate(db)                    # or a StartupError saying why, in one line
            engine = Engine(config, db, clock)
            try:
                await engine.start()
            except HallInUse as exc:
                raise StartupError(f"大厅 {exc.hall} 已由另一个服务器在这个数据库上运行",
                                   f"{exc}; one server per hall") from None
            app[ENGINE] = engine
            calls = CallLog(engine)              # one call_id per call, on MQTT and the pages
            feed = app[FEED] = ScreenFeed(engine, calls)
            feed.start()
            try:
                gc.collect()
                gc.freeze()  # the loaded state and libraries are not rescanned by every full GC
                log.info("hall %s open on %s", config.hall.id,
                         db.url.render_as_string(hide_password=True))
                if bus:
                    async with _device_bus(engine, calls, secret, broker, embedded) as hall_bus:
                        app[BUS] = hall_bus
                        if embedded is not None:
                            app[BROKER] = embedded
                        yield
                else:
                    yield
            finally:                             # also when the device bus did not start
                await feed.stop()
                await engine.stop()
            log.info("hall %s closed", config.hall.id)
        finally:
            await db.dispose()
            if embedded is not None:
                await embedded.stop()           # last: after the bus and the engine

    app.cleanup_ctx.append(hall)
    app.on_shutdown.append(_end_streams)      # before the server waits for open requests
    add_routes(app)
    add_config_routes(app)
    add_page_routes(app)
    return app


async def _end_streams(app: web.Application) -> None:
    feed = app.get(FEED)
    if feed is not None:
        feed.end_streams()


@asynccontextmanager
async def _device_bus(engine: Engine, calls: CallLog, secret: str, broker: str | None,
                      embedded: BrokerProcess | None) -> AsyncIterator[HallBus]:
    """The device bus on ``embedded`` (launched already) or the broker ``broker`` names."""
    config = engine.config
    access = None
    if embedded is not None:
        address = await embedded.ready()
        await embedded.set_access(engine.config)       # the database's devices, not the file's
        access = asyncio.create_task(_follow_devices(engine, embedded), name="yimen-broker-access")
    else:
        address = BrokerAddress.parse(broker or config.bus.broker)
    hall_bus = HallBus(engine, calls, address,
                       derived_password(secret, security.CONTROLLER_USER))
    await hall_bus.start()
    log.info("device bus on mqtt://%s:%d (%s)", address.host, address.port,
             "embedded" if embedded else "external")
    try:
        yield hall_bus
    finally:
        await hall_bus.stop()
        if access is not None:
            await cancel_all([access])


async def _follow_devices(engine: Engine, embedded: BrokerProcess) -> None:
    """The embedded broker's logins and topic rules follow the configured devices: after
    each change of them, the latest configuration is sent (several changes, one send)."""
    changed = asyncio.Event()

    def on_commit(committed: Committed) -> None:
        if committed.rebuilt or any(e.kind is EventKind.CONFIG_CHANGED and
                                    e.payload.get("section") in ("devices", "all")
                                    for e in committed.events):
            changed.set()

    engine.subscribe(on_commit)
    while True:
        await changed.wait()
        changed.clear()
        await embedded.set_access(engine.config)


def stop_on_signals() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM, from now on: install it before saying "ready", so
    a signal that comes right after is never the default (dying unclean)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


async def run(app: web.Application, listen: str, banner: str = "") -> None:
    """Serve until SIGINT or SIGTERM; print the address (the real port when 0 was asked).

    The HTTP port is bound before the hall starts: a busy one is a ``StartupError``, as is a
    database or broker port the hall cannot open."""
    host, port = parse_listen(listen)
    sock = bind_http(host, port)
    stop = stop_on_signals()
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    try:
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        bus = app.get(BUS)
        mqtt = f", devices on mqtt://{bus.link.broker.host}:{bus.link.broker.port}" if bus else ""
        print(f"{banner}listening on http://{host}:{bound}{mqtt}", flush=True)
        url = f"http://{host}:{bound}"
        print(f"  取号机 kiosk:       {url}/kiosk\n  综合屏 hall screen: {url}/screen\n"
              f"  窗口屏 window 1:    {url}/window/1\n  设备 devices:       {url}/api/devices",
              flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()               # what started of the hall, when setup failed
        sock.close()

"""The hall server (``yimen serve``): storage, engine, device bus and HTTP, owned by one
aiohttp app."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from aiohttp import web

from controller.auth.accounts import Accounts
from controller.auth.audit import Audit
from controller.auth.sealbox import CASE_KEY, Sealbox
from controller.bus import credentials
from controller.bus.calls import CallLog
from controller.bus.hall_broker import BROKER, HallBroker
from controller.bus.pins import PinCheck
from controller.bus.service import HallBus
from controller.clock import Clock
from controller.config import HallConfig, parse_listen
from controller.engine import Engine
from controller.monthly import MonthlyReports
from controller.startup import StartupError, bind_http, migrate
from controller.storage import private
from controller.storage.db import database_url, open_database
from controller.storage.hall_lock import HallInUse
from controller.tier_link import TIERS, Link
from controller.upward import Upward
from controller.web.access import ACCOUNTS, AUDIT
from controller.web.admin import add_admin_routes
from controller.web.api import BUS, ENGINE, add_routes
from controller.web.auth import add_auth_routes
from controller.web.case_notices import add_notice_routes
from controller.web.cases_api import SEALBOX, add_cases_routes
from controller.web.config_api import IMPORT_LIMIT, add_config_routes
from controller.web.evaluator import add_evaluator_routes
from controller.web.feed import FEED, ScreenFeed
from controller.web.followups_api import add_followups_routes
from controller.web.headers import add_security_headers
from controller.web.matters_api import IMPORT_LIMIT as MATTERS_LIMIT
from controller.web.matters_api import add_matters_routes
from controller.web.pages import add_page_routes
from controller.web.stats_api import add_stats_routes
from controller.web.users_api import add_users_routes
from controller.web.vendor import add_vendor_routes
from protocol.link import BrokerAddress
from protocol.tasks import cancel_all

log = logging.getLogger("yimen.server")
#: The key of the tickets' status page addresses, in the data folder (``core/status_link.py``).
STATUS_KEY = "status-key"


def create_app(config: HallConfig, data_dir: str | Path, db_url: str | None = None,
               clock: Clock | None = None, broker: str | None = None, bus: bool = True,
               broker_listen: str | None = None) -> web.Application:
    """The app factory: ``cleanup_ctx`` opens the database, migrates it, runs the engine, the
    hall's own Mosquitto (unless ``broker`` or the config's ``bus.broker`` names one, on
    ``broker_listen`` or the config's ``bus.listen``) and the device bus, and closes all of it
    in reverse order."""
    # each route has its own, smaller limit
    app = web.Application(client_max_size=max(IMPORT_LIMIT, MATTERS_LIMIT))
    bus = bus and config.bus.enabled                  # a village room runs without one

    async def hall(app: web.Application) -> AsyncIterator[None]:
        own = None
        if bus and not (broker or config.bus.broker):
            own = HallBroker(config, data_dir, broker_listen)
            own.reserve_port()                   # a busy port is said before anything opens
        url = database_url(db_url or config.storage.url, data_dir)
        db = open_database(url, config.storage.synchronous)
        try:
            await migrate(db)                    # or a StartupError saying why, in one line
            engine = Engine(config, db, clock, status_key=private.key(data_dir, STATUS_KEY))
            try:
                await engine.start()
            except HallInUse as exc:
                raise StartupError(f"大厅 {exc.hall} 已由另一个服务器在这个数据库上运行",
                                   f"{exc}; one server per hall") from None
            app[ENGINE] = engine
            async with AsyncExitStack() as started:     # stopped in reverse, however far it got
                started.push_async_callback(engine.stop)
                app[ACCOUNTS] = Accounts(db, config.hall.id, engine.clock)
                app[AUDIT] = Audit(db, config.hall.id, engine.clock)
                app[SEALBOX] = Sealbox(private.key(data_dir, CASE_KEY))
                calls = CallLog(engine)              # one call_id per call, on MQTT and the pages
                external = broker or config.bus.broker
                feed = app[FEED] = ScreenFeed(engine, calls)
                tiers = app[TIERS] = Link(engine, data_dir, own.address if own is not None else
                                          BrokerAddress.parse(external) if external else None,
                                          lambda: app.get(BUS))
                for part in (feed, Upward(engine, data_dir), MonthlyReports(engine), tiers):
                    part.start()
                    started.push_async_callback(part.stop)
                gc.collect()
                gc.freeze()  # the loaded state and libraries are not rescanned by every full GC
                log.info("hall %s open on %s", config.hall.id,
                         db.url.render_as_string(hide_password=True))
                if bus:
                    async with _device_bus(engine, calls, data_dir, broker, own,
                                           app[ACCOUNTS].check_pin) as hall_bus:
                        app[BUS] = hall_bus
                        if own is not None:
                            app[BROKER] = own
                        yield
                else:
                    yield
            log.info("hall %s closed", config.hall.id)
        finally:
            await db.dispose()
            if own is not None:
                await own.stop()                 # last: after the bus and the engine

    app.cleanup_ctx.append(hall)
    app.on_shutdown.append(_end_streams)      # before the server waits for open requests
    add_routes(app)
    add_auth_routes(app)                      # inside the error middleware: refusals are JSON
    add_security_headers(app)
    add_config_routes(app)
    add_users_routes(app)
    add_stats_routes(app)
    add_cases_routes(app)
    add_notice_routes(app)
    add_followups_routes(app)
    add_evaluator_routes(app)
    add_matters_routes(app)
    add_page_routes(app)
    add_vendor_routes(app)
    add_admin_routes(app)
    return app


async def _end_streams(app: web.Application) -> None:
    feed = app.get(FEED)
    if feed is not None:
        feed.end_streams()


@asynccontextmanager
async def _device_bus(engine: Engine, calls: CallLog, data_dir: str | Path, broker: str | None,
                      own: HallBroker | None, pin_check: PinCheck) -> AsyncIterator[HallBus]:
    """The device bus on the hall's own Mosquitto (``own``, its port reserved) or on the
    broker ``broker`` names, as the controller (its own password, kept in the data folder)."""
    config = engine.config
    follow = None
    if own is not None:
        await own.start(engine.db, lambda: engine.config)   # the database's devices, not the file's
        address = own.address
        follow = asyncio.create_task(own.follow(engine), name="yimen-broker-access")
    else:
        address = BrokerAddress.parse(broker or config.bus.broker)
    hall_bus = HallBus(engine, calls, address, credentials.controller_password(data_dir),
                       credentials.id_token_key(data_dir), pin_check)
    if own is not None:
        own.on_cut_off = hall_bus.cut_off
    await hall_bus.start()
    log.info("device bus on mqtt://%s:%d (%s)", address.host, address.port,
             "the hall's own Mosquitto" if own else "external")
    try:
        yield hall_bus
    finally:
        await hall_bus.stop()
        if follow is not None:
            await cancel_all([follow])


async def device_passwords(app: web.Application, devices: list[str]) -> dict[str, str]:
    """New credentials for ``devices``, handed over in this process (the demo's simulators, a
    gateway run inside the server): device → password. The hall's own broker takes them at
    once."""
    engine = app[ENGINE]
    passwords = await credentials.provision(engine.db, engine.config.hall.id, devices)
    own = app.get(BROKER)
    if own is not None:
        await own.refresh()
    return passwords


def stop_on_signals() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM, from now on: install it before saying "ready", so
    a signal that comes right after is never the default (dying unclean)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run(app: web.Application, listen: str, banner: str = "") -> None:
    """Serve until SIGINT or SIGTERM; print the address (the real port when 0 was asked).

    The HTTP port is bound before the hall starts: a busy one is a ``StartupError``, as is a
    database or broker port the hall cannot open. Connections are held within the hall's
    ``[server]`` limits (``web/limits.py``)."""
    from controller.web import limits

    host, port = parse_listen(listen)
    sock = bind_http(host, port)
    stop = stop_on_signals()
    try:
        async with limits.serving(app, sock, lambda started: limits.Limits.of(started[ENGINE].config.server)):
            bound = sock.getsockname()[1]
            bus = app.get(BUS)
            mqtt = f", devices on mqtt://{bus.link.broker.host}:{bus.link.broker.port}" if bus else ""
            print(f"{banner}listening on http://{host}:{bound}{mqtt}", flush=True)
            url = f"http://{host}:{bound}"
            print(f"  登录 sign in:       {url}/login (then enrol this screen as a kiosk or a screen)\n"
                  f"  管理后台 admin:     {url}/admin\n"
                  f"  取号机 kiosk:       {url}/kiosk\n  综合屏 hall screen: {url}/screen\n"
                  f"  窗口屏 window 1:    {url}/window/1\n  接口 API:           {url}/api/openapi.json",
                  flush=True)
            await stop.wait()
    finally:
        sock.close()

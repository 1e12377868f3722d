"""``yimen``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import unicodedata
from collections.abc import AsyncIterator
from datetime import date
from importlib.resources import files
from pathlib import Path

from controller import __version__, cli_auth, cli_devices, cli_matters
from controller.config import ConfigError, HallConfig, load_config
from controller.startup import StartupError, data_folder_lock

#: The example halls ship inside the package (``controller/halls``; ``config/`` links to it),
#: so an installed Yimen finds its demo hall wherever it is installed.
HALLS = Path(str(files("controller") / "halls"))
DEMO_CONFIG = HALLS / "demo.toml"


def _config(path: str | Path, loader=load_config):  # noqa: ANN001, ANN202
    try:
        return loader(path)
    except ConfigError as exc:
        print(f"yimen: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _db_url(args: argparse.Namespace) -> str | None:
    """``--db``, else the ``--config`` hall's ``storage.url`` (None: the data folder's SQLite)."""
    return args.db or (_config(args.config).storage.url if args.config else None)


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=os.environ.get("YIMEN_DATA", "yimen-data"), metavar="DIR",
                   help="data folder for the embedded SQLite database "
                        "(default: $YIMEN_DATA or yimen-data/)")
    p.add_argument("--db", default=os.environ.get("YIMEN_DB") or None, metavar="URL",
                   help="database URL instead, e.g. postgresql://user@host/yimen "
                        "(default: $YIMEN_DB, then the config's storage.url)")


def _add_bus(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default=os.environ.get("YIMEN_BROKER") or None, metavar="URL",
                   help="use this MQTT broker (mqtt://host:port) instead of the hall's own "
                        "Mosquitto (default: $YIMEN_BROKER, then the config's bus.broker)")
    p.add_argument("--mqtt", metavar="HOST:PORT",
                   help="where the hall's own Mosquitto listens (default: $YIMEN_MQTT, then the "
                        "config's bus.listen; port 0 picks a free one)")


def cmd_serve(args: argparse.Namespace, config: HallConfig | None = None, banner: str = "",
              also=None) -> int:  # noqa: ANN001
    """Run the hall server; ``also`` is an extra cleanup context (the demo's devices)."""
    from controller.server import create_app, run

    config = config or _config(args.config)
    if getattr(args, "gateway", None):
        also = _gateway_in_server(args.gateway)
    listen = args.http or os.environ.get("YIMEN_HTTP") or config.server.http
    with data_folder_lock(args.data):      # one server per data folder, for its whole life
        app = create_app(config, args.data, args.db, broker=args.broker,
                         broker_listen=args.mqtt or os.environ.get("YIMEN_MQTT") or None)
        if also is not None:
            app.cleanup_ctx.append(also)
        asyncio.run(run(app, listen, banner))
    return 0


def cmd_serve_halls(args: argparse.Namespace) -> int:
    """Several halls in one server (``controller.multi``)."""
    from controller.multi import serve

    asyncio.run(serve(Path(args.halls), Path(args.data), args.db, args.broker))
    return 0


def _gateway_in_server(path: str):  # noqa: ANN202
    """The gateway in the hall server's process, on the server's broker: its devices without
    a password in the gateway's file get new credentials, handed over in the process, as is
    the server's ID-card public key its readers seal ID numbers to."""
    from devices.gateway_config import load

    gateway_config = _config(path, lambda p: load(p, passwords_needed=False))

    async def gateway(app) -> AsyncIterator[None]:  # noqa: ANN001
        from controller.server import device_passwords
        from controller.web.api import BUS
        from devices.gateway import Gateway

        missing = [d for d in gateway_config.device_ids if d not in gateway_config.passwords]
        passwords = {**gateway_config.passwords, **await device_passwords(app, missing)}
        gw = Gateway(gateway_config, app[BUS].link.broker, passwords=passwords,
                     id_public_key=app[BUS].id_public_key)
        await gw.start()
        yield
        await gw.stop()

    return gateway


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo hall: the server and, unless --no-devices, every simulated device with a
    stream of citizens, in one process (each device with new credentials of its own, and the
    kiosks the server's ID-card public key, handed over in the process)."""
    from controller.web.api import BUS, ENGINE

    config = _config(DEMO_CONFIG)
    banner = (f"{config.hall.name} ({config.hall.id}): {len(config.services)} services, "
              f"{len(config.windows)} windows, {len(config.devices)} devices — ")

    async def simulated_hall(app) -> AsyncIterator[None]:  # noqa: ANN001
        from controller.server import device_passwords
        from devices.simhall import SimulatedHall, simulated

        if added := await cli_matters.demo_catalogue(app[ENGINE]):    # an empty hall's catalogue
            print(f"事项清单 matter catalogue: {added} demo matters imported", flush=True)
        if args.no_devices:
            yield
            return
        passwords = await device_passwords(app, simulated(app[ENGINE].config))
        hall = SimulatedHall(config, app[BUS].link.broker, passwords,
                             id_public_key=app[BUS].id_public_key)
        await hall.start()
        yield
        await hall.stop()

    print(asyncio.run(cli_auth.demo_admin(args.data, args.db, config.hall.id)), flush=True)
    return cmd_serve(args, config, banner, simulated_hall)


def _until_signalled(make, banner, start=None, after=None) -> None:  # noqa: ANN001
    """Run what ``make()`` builds (``start``/``stop``) until SIGINT or SIGTERM: start it
    (``start(it)`` if given), print ``banner(it)``, wait, stop it, then ``after(it)``."""
    from controller.server import stop_on_signals

    async def go() -> None:
        stop = stop_on_signals()
        it = make()
        await (start(it) if start else it.start())
        print(banner(it), flush=True)
        try:
            await stop.wait()
        finally:
            await it.stop()
            if after:
                after(it)

    asyncio.run(go())


def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulated devices and citizens against a running hall server: each simulated device
    gets new credentials (through the server, or on the database if none runs)."""
    from controller.cli_devices import id_public_key, issue
    from devices.simhall import SimulatedHall, simulated
    from protocol.link import BrokerAddress

    config = _config(args.config)
    url = args.broker or config.bus.broker or f"mqtt://{args.mqtt or config.bus.listen}"
    passwords = issue(config, simulated(config), args.db, args.data,
                      os.environ.get("YIMEN_HTTP") or config.server.http)
    key = id_public_key(config, args.data)
    _until_signalled(
        lambda: SimulatedHall(config, BrokerAddress.parse(url), passwords, id_public_key=key),
        lambda hall: f"simulating {len(hall.devices)} devices of hall {config.hall.id} on {url}",
        start=lambda hall: hall.start(citizens=not args.devices_only),
        after=lambda hall: print(f"stats: {dict(hall.stats)}", flush=True))
    return 0


def cmd_broker_config(args: argparse.Namespace) -> int:
    """Mosquitto files for an external broker, with the users and the ACL the hall's own
    Mosquitto would have now (from the database)."""
    from controller.bus.hall_broker import external_files

    config = _config(args.config)
    files = asyncio.run(external_files(config, args.data, _db_url(args), args.port))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        if name == "passwd":
            path.chmod(0o600)
        print(f"wrote {path}")
    print(f"passwd is readable by its owner only: chown it to the user Mosquitto runs as. Run "
          f"`mosquitto -c mosquitto.conf` in {out}, then `yimen serve --broker mqtt://HOST:PORT`; "
          f"after devices or their credentials change, run this again and send Mosquitto SIGHUP")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: ok — hall {cfg.hall.id} ({cfg.hall.name}), {len(cfg.services)} services, "
              f"{len(cfg.windows)} windows, {len(cfg.clerks)} clerks, {len(cfg.devices)} devices")
    return 2 if failed else 0


def cmd_config_export(args: argparse.Namespace) -> int:
    """The hall's configuration as it is now (the database's) as a hall file."""
    from controller import config_io

    text = asyncio.run(config_io.export_text(_config(args.config), args.db, args.data))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"已导出 exported: {args.output}", file=sys.stderr)
    return 0


def cmd_config_import(args: argparse.Namespace) -> int:
    """A hall file's configuration into the database, through the engine (all or nothing)."""
    from controller import config_io
    from controller.core.errors import Refused

    current, new = _config(args.config), _config(args.file)
    server = args.server or os.environ.get("YIMEN_HTTP") or current.server.http
    try:
        differences = config_io.import_config(current, new, args.db, args.data, server, args.dry_run)
    except Refused as exc:
        print(f"yimen: 未导入 not imported: {exc.message} / {exc.message_en}", file=sys.stderr)
        return 1
    for line in config_io.describe(differences):
        print(line)
    verb = "将有 would make" if args.dry_run else "已导入 imported"
    print(f"{verb} {len(differences)} 处变更 changes", file=sys.stderr)
    return 0


def cmd_db_revision(args: argparse.Namespace) -> int:
    from controller.storage.db import write_revision

    print(f"wrote {asyncio.run(write_revision(args.message))}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from controller.startup import migrate
    from controller.storage.db import current_revision, database_url, open_database

    url = database_url(_db_url(args), args.data)

    async def go() -> str | None:
        db = open_database(url)
        try:
            await migrate(db)
            return await current_revision(db)
        finally:
            await db.dispose()

    print(f"database at revision {asyncio.run(go())}")
    return 0


def cmd_stats_rollup(args: argparse.Namespace, config: HallConfig) -> int:
    """Rebuild the daily roll-ups of finished days (from ``--from``), idempotently."""
    from sqlalchemy import select

    from controller.core.configuration import with_live
    from controller.startup import migrate
    from controller.stats import rebuild
    from controller.storage import schema
    from controller.storage.db import database_url, open_database

    since = date.fromisoformat(args.since) if args.since else date.min

    def work(conn) -> int:  # noqa: ANN001
        hall = config.hall.id
        stored = conn.execute(select(schema.hall_config.c.data).where(
            schema.hall_config.c.hall == hall)).scalar_one_or_none()
        live = with_live(config, stored) if stored is not None else config
        today = conn.execute(select(schema.hall_state.c.day).where(
            schema.hall_state.c.hall == hall)).scalar_one_or_none() or date.max
        return rebuild(conn, live, since, today)

    async def go() -> int:
        db = open_database(database_url(args.db, args.data), config.storage.synchronous)
        try:
            await migrate(db)
            async with db.begin() as conn:
                return await conn.run_sync(work)
        finally:
            await db.dispose()

    print(f"rolled up {asyncio.run(go())} days")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the hall's database, also while the server runs."""
    from controller.storage import backup

    try:
        url = backup.hall_url(_db_url(args), args.data,
                              create=False)
        written = backup.backup(url, args.dest)
    except backup.BackupError as exc:
        print(f"yimen: 备份失败：{exc.message} / backup failed: {exc.message_en}", file=sys.stderr)
        return 1
    print(f"已备份 backup written: {written.path} {backup.human_size(written.size)}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Bring a backup back as the hall's database, then migrate it to the head."""
    from controller.storage import backup

    try:
        url = backup.hall_url(_db_url(args), args.data)
        done = asyncio.run(backup.restore(args.src, url, force=args.force))
    except backup.BackupError as exc:
        print(f"yimen: 未恢复：{exc.message} / not restored: {exc.message_en}", file=sys.stderr)
        return 1
    print(f"已恢复 restored: {args.src} → {done.target} (revision {done.revision})")
    return 0


def cmd_bench_engine(args: argparse.Namespace) -> int:
    from controller.bench import engine as bench

    out = asyncio.run(bench.run(args.tickets, args.concurrency, args.baseline,
                                args.synchronous, args.db))
    print(bench.report(out))
    return 0 if all(ok for _, ok, _ in out["checks"]) or not args.strict else 1


def cmd_bench_bus(args: argparse.Namespace) -> int:
    from controller.bench import bus as bench

    out = asyncio.run(bench.run(args.broker, args.devices, args.windows, args.presses,
                                args.interval, args.tickets, args.db))
    print(bench.report(out))
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    """Attach serial buses and GPIO buttons to a hall as protocol v1 devices."""
    from devices.gateway import Gateway
    from devices.gateway_config import load
    from protocol.link import BrokerAddress

    config = _config(args.config, load)
    _until_signalled(
        lambda: Gateway(config, BrokerAddress.parse(args.broker) if args.broker else None),
        lambda gw: f"gateway for hall {config.hall}: {len(gw.devices)} devices on "
                   f"{len(config.buses)} buses and {len(config.gpio)} button panels, broker "
                   f"mqtt://{gw.broker.host}:{gw.broker.port}")
    return 0


def _device_password(path: str | None) -> str:
    """A device program's own MQTT password: the file ``path`` (owner-only), else
    ``$YIMEN_DEVICE_PASSWORD`` (``yimen device credentials ID`` makes one)."""
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"yimen: {path}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(2) from None
    if os.environ.get("YIMEN_DEVICE_PASSWORD"):
        return os.environ["YIMEN_DEVICE_PASSWORD"]
    print("yimen: 需要设备密码：--password-file FILE 或 $YIMEN_DEVICE_PASSWORD（yimen device credentials ID "
          "生成） / the device's password is needed: --password-file FILE or $YIMEN_DEVICE_PASSWORD "
          "(yimen device credentials ID makes one)", file=sys.stderr)
    raise SystemExit(2)


def cmd_announcer(args: argparse.Namespace) -> int:
    """The hall's voice: follows the calls and says them (or only makes the clips)."""
    from display import audio

    if args.make_clips:
        made = audio.make_clips(args.make_clips)
        print(f"{len(made)} clips in {args.make_clips}")
        return 0
    from devices.announcer import VoiceAnnouncer, engine_for
    from protocol.link import BrokerAddress

    if not args.config:
        print("yimen: announcer: --config FILE is needed", file=sys.stderr)
        return 2
    config = _config(args.config)
    url = args.broker or config.bus.broker or f"mqtt://{config.bus.listen}"
    password = _device_password(args.password_file)
    try:
        engine = engine_for(args.engine, args.clips)
    except audio.AudioError as exc:
        print(f"yimen: {exc}", file=sys.stderr)
        return 2

    _until_signalled(
        lambda: VoiceAnnouncer(config.hall.id, args.id, BrokerAddress.parse(url),
                               password, engine=engine,
                               out=args.out, play=args.play),
        lambda _: f"announcer {args.id} of hall {config.hall.id} on {url}, engine {args.engine}")
    return 0


def cmd_bench_screens(args: argparse.Namespace) -> int:
    from controller.bench import screens as bench

    print(bench.report(asyncio.run(bench.run(args.clients, args.calls, args.interval,
                                             str(DEMO_CONFIG)))))
    return 0


def cmd_bench_admin(args: argparse.Namespace) -> int:
    from controller.bench import admin as bench

    print(bench.report(asyncio.run(bench.run(args.requests, args.dashboards, args.rate, args.seconds))))
    return 0


def cmd_kiosk(args: argparse.Namespace) -> int:
    """The program on a kiosk box: its device identity, printer, card reader and page."""
    from aiohttp import web

    from controller.server import parse_listen
    from kiosk.program import KioskApp, load

    config = _config(args.config, load)
    host, port = parse_listen(config.listen)
    print(f"kiosk {config.id} of hall {config.hall}: page on http://{host}:{port}/", flush=True)
    web.run_app(KioskApp(config).app(), host=host, port=port, print=None)
    return 0


def cmd_bench_poison(args: argparse.Namespace) -> int:
    from controller.bench import poison as bench

    print(bench.report(asyncio.run(bench.run(args.broker, args.count, args.take_every))))
    return 0


def cmd_bench_restart(args: argparse.Namespace) -> int:
    from controller.bench import restart as bench

    print(bench.report(asyncio.run(bench.run(args.tickets, args.repeats))))
    return 0


def cmd_bench_auth(args: argparse.Namespace) -> int:
    from controller.bench import auth as bench

    print(bench.main(args.calls, args.logins))
    return 0


def cmd_bench_estimates(args: argparse.Namespace) -> int:
    from controller.bench import estimates as bench

    print(bench.report(bench.run(tuple(args.loads), args.days, args.seed), args.days))
    return 0


def cmd_bench_tiers(args: argparse.Namespace) -> int:
    from controller.bench import tiers as bench

    out = asyncio.run(bench.run(args.backlog, args.halls, args.changes, args.seed))
    print(bench.report(out))
    return 0 if bench.met(out) or not args.strict else 1


def cmd_bench_matters(args: argparse.Namespace) -> int:
    from controller.bench import matters as bench

    out = bench.main(args.repeats)
    print(bench.report(out))
    return 0 if out["total_s"] < bench.IMPORT_TARGET_S and out["max"] < bench.SEARCH_TARGET_MS \
        or not args.strict else 1


def cmd_bench_reports(args: argparse.Namespace) -> int:
    from controller.bench import reports as bench

    out = bench.main(args.db, args.scale, args.pg_url, args.repeats)
    print(bench.report(out))
    return 0 if all(met for _, _, met in bench.checks(out)) or not args.strict else 1


def cmd_bench_serial(args: argparse.Namespace) -> int:
    from devices import bench_serial as bench

    print(bench.report(asyncio.run(bench.run(args.frames))))
    return 0


def _columns(text: str) -> int:
    """How many terminal columns ``text`` takes: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


_WIDE = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_TOKENS = re.compile(rf"\s+|[{_WIDE}]|[^\s{_WIDE}]+")
_NO_LINE_START = set("，。、；：？！）」』》")


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` columns: Chinese breaks between any two characters (never
    before closing punctuation), English between words."""
    lines: list[str] = []
    line, space = "", False
    for token in _TOKENS.findall(text):
        if token.isspace():
            space = bool(line)
            continue
        joined = line + (" " if space else "") + token
        if line and _columns(joined) > width and token not in _NO_LINE_START:
            lines.append(line)
            joined = token
        line, space = joined, False
    return [*lines, line] if line else lines


class _Formatter(argparse.HelpFormatter):
    """Help in both languages: a description ``zh-CN / English`` is two paragraphs, and all of
    it is wrapped by the columns it takes."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join("\n".join(indent + line for line in _wrap(part, width - len(indent)))
                           for part in text.split(" / ", 1))

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(text, width)


class _Parser(argparse.ArgumentParser):
    """Every ``yimen`` parser, subcommands included, formats its help with ``_Formatter``."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="yimen", description="一门：政务服务大厅的排队叫号和设备控制器。`yimen 命令 --help` 查看"
                                  "各命令的说明。 / Yimen: the queue, ticketing and device "
                                  "controller of a government service hall. `yimen COMMAND "
                                  "--help` says what each command does.")
    parser.add_argument("--version", action="version", version=f"yimen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve", help="运行大厅服务器 / run the hall server",
        description="运行一个大厅的服务器：排队引擎、数据库（默认为数据文件夹中的 SQLite）、由服务器"
                    "看护的 Mosquitto MQTT 代理（或 --broker 指定的外部代理）、JSON 接口和页面（取号机、"
                    "综合屏、窗口屏、排队进度）。启动时自动迁移数据库；运行期间锁定数据文件夹，一个文件夹"
                    "只能有一个服务器。Ctrl-C 或 SIGTERM 停止。 / "
                    "Run a hall's server: the queue engine, its database (SQLite in the data folder "
                    "unless --db), its own Mosquitto MQTT broker, supervised (or an external one "
                    "with --broker), the "
                    "JSON API and the pages (kiosk, hall screen, window screens, ticket status). The "
                    "database is migrated at start; the data folder is locked while the server "
                    "runs, one server per folder. Stops on Ctrl-C or SIGTERM.")
    p.add_argument("--config", required=True, metavar="FILE", help="the hall's TOML file")
    p.add_argument("--http", metavar="HOST:PORT", help="listen address (default from config)")
    p.add_argument("--gateway", metavar="FILE", help="also run this serial/GPIO gateway, on the "
                                                     "server's broker")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "serve-halls", help="一台服务器托管多个大厅 / several halls in one server",
        description="在一个进程中运行文件夹里的每个大厅文件（*.toml），每个大厅有自己的引擎、数据文件夹"
                    "（ROOT/大厅编号）和 HTTP 端口；可共用一个 PostgreSQL 数据库（--db）和一个 MQTT 代理"
                    "（--broker）。每 5 秒重读文件夹：新增文件即启动该大厅，删除即停止，其他大厅不受影响。 / "
                    "Run every hall file (*.toml) in a folder in one process, each with its own "
                    "engine, data folder (ROOT/{hall id}) and HTTP port, on one PostgreSQL database "
                    "(--db) and one MQTT broker (--broker) if given. The folder is read again every "
                    "5 s: a new file starts its hall, a removed one stops it, the others go on.")
    p.add_argument("--halls", required=True, metavar="DIR", help="the folder of hall files")
    _add_storage(p)
    p.add_argument("--broker", default=os.environ.get("YIMEN_BROKER") or None, metavar="URL",
                   help="one MQTT broker for all the halls (default: each hall's own Mosquitto "
                        "on its file's bus.listen)")
    p.set_defaults(func=cmd_serve_halls)

    p = sub.add_parser(
        "demo", help="运行演示大厅，模拟设备和群众 / serve the demo hall with simulated devices and "
                     "citizens",
        description="运行随软件附带的演示大厅（demo.toml：5 项业务、12 个窗口、40 台设备），通过 MQTT "
                    "模拟全部设备，并有源源不断的群众取号、窗口叫号、群众评价。--no-devices 只运行服务"
                    "器。 / "
                    "Serve the demo hall shipped with Yimen (demo.toml: 5 services, 12 windows, 40 "
                    "devices) with every device simulated over MQTT and a stream of citizens taking "
                    "tickets, clerks calling and citizens rating. --no-devices runs the server alone.")
    p.add_argument("--http", metavar="HOST:PORT", help="listen address (default 127.0.0.1:8480)")
    p.add_argument("--no-devices", action="store_true", help="the server only")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "simulate", help="模拟一个大厅的设备和群众 / run a hall's simulated devices and citizens",
        description="对一个已在运行的大厅服务器，模拟大厅文件中的全部设备（取号机、呼叫器、评价器、"
                    "显示屏、语音播报），以及办事群众和窗口人员。 / "
                    "Simulate every device of a hall's file (kiosks, callers, evaluators, screens, "
                    "the announcer), and its citizens and clerks, against a hall server that is "
                    "already running.")
    p.add_argument("--config", required=True, metavar="FILE", help="the hall's TOML file")
    p.add_argument("--devices-only", action="store_true", help="devices, but no citizens or clerks")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "gateway", help="串口和 GPIO 网关 / attach serial buses and GPIO buttons as protocol v1 "
                        "devices",
        description="串口和 GPIO 网关：RS-485 总线（ff68、ybus、onbon）上的呼叫器、评价器、LED 屏，以及"
                    " GPIO 按钮面板，各自作为独立的协议 v1 设备接入大厅的 MQTT 代理。 / "
                    "The serial and GPIO gateway: keypads, evaluators and LED screens on RS-485 "
                    "buses (ff68, ybus, onbon) and GPIO button panels, each attached to the hall's "
                    "MQTT broker as a protocol v1 device of its own.")
    p.add_argument("--config", required=True, metavar="FILE", help="the gateway's TOML file")
    p.add_argument("--broker", metavar="URL", help="the hall's broker (default from the file)")
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser(
        "announcer", help="大厅语音播报 / the hall's voice: say every call (WAV files or the sound "
                          "card)",
        description="大厅语音播报：跟随叫号，每次先响提示音，再播报两遍「请A012号到3号窗口办理」，"
                    "排队播放、从不重叠，输出为 WAV 文件或声卡。--make-clips 只生成音节片段。 / "
                    "The hall's voice: follows the calls and says each one twice after a chime, "
                    "queued and never overlapping, to WAV files or the sound card. --make-clips "
                    "only makes the syllable clips.")
    p.add_argument("--config", metavar="FILE", help="the hall's TOML file")
    p.add_argument("--id", default="announcer-1", help="its device id (default announcer-1)")
    p.add_argument("--engine", choices=["clips", "espeak", "chime"], default="espeak")
    p.add_argument("--clips", metavar="DIR", help="one WAV per syllable, for --engine clips")
    p.add_argument("--out", metavar="DIR", help="write each announcement as a WAV file here")
    p.add_argument("--play", action="store_true", help="play through the sound card (aplay)")
    p.add_argument("--make-clips", metavar="DIR", help="only make the syllable clips with "
                                                       "espeak-ng, then exit")
    p.add_argument("--password-file", metavar="FILE",
                   help="a file with its MQTT password (default: $YIMEN_DEVICE_PASSWORD); "
                        "yimen device credentials ID makes one")
    _add_bus(p)
    p.set_defaults(func=cmd_announcer)

    p = sub.add_parser(
        "kiosk", help="取号机上的程序 / the program on a kiosk box: printer, ID reader and page",
        description="取号机上的程序：以取号机的设备身份接入大厅，驱动它的小票打印机和身份证阅读器，"
                    "并为触摸屏提供取号页面。 / "
                    "The program on a kiosk box: the kiosk's device identity on the hall's bus, "
                    "its receipt printer and ID-card reader, and the kiosk page for its touch "
                    "screen.")
    p.add_argument("--config", required=True, metavar="FILE", help="the kiosk's TOML file")
    p.set_defaults(func=cmd_kiosk)

    p = sub.add_parser(
        "broker-config", help="生成 Mosquitto 配置 / write Mosquitto passwd, acl and conf for a hall",
        description="为外部的 Mosquitto 生成一个大厅的 mosquitto.conf、passwd 和 acl：数据库中设备凭据的"
                    "哈希和控制器的密码，访问控制与服务器自带的代理相同。设备或凭据变更后须重新生成并让 "
                    "Mosquitto 重新加载（SIGHUP）。 / "
                    "Write mosquitto.conf, passwd and acl for an external Mosquitto: the hashes of "
                    "the devices' credentials in the database and the controller's password, with "
                    "the access rules of the server's own broker. After devices or credentials "
                    "change, write them again and send Mosquitto SIGHUP.")
    p.add_argument("--config", required=True, metavar="FILE", help="the hall's TOML file")
    p.add_argument("--out", default="mosquitto", metavar="DIR", help="folder for the files")
    p.add_argument("--port", type=int, help="listener port (default: the config's bus.listen)")
    _add_storage(p)
    p.set_defaults(func=cmd_broker_config)

    p = sub.add_parser(
        "check-config", help="检查大厅配置文件 / validate hall configuration files",
        description="检查大厅配置文件（TOML）：报告每一个错误，每行注明文件和键名，中英文各一遍；"
                    "正确的文件列出大厅概况。有错误时退出码为 2。 / "
                    "Check hall files (TOML): every error is reported, a line each naming the file "
                    "and the key, in Chinese and English; a valid file gets a summary of its hall. "
                    "Exits 2 when any file has an error.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser(
        "config", help="导出、导入大厅配置 / export or import the hall's configuration",
        description="大厅配置保存在数据库中，运行中即可修改。export 把当前配置写成大厅配置文件；"
                    "import 把配置文件导入数据库（先用 --dry-run 查看差异）。 / "
                    "The hall's configuration lives in its database and changes while it runs. "
                    "export writes it as a hall file; import "
                    "takes a hall file in (see the differences first with --dry-run).")
    csub = p.add_subparsers(dest="config_command", required=True)
    c = csub.add_parser(
        "export", help="把当前配置写成配置文件 / write the configuration as a hall file",
        description="把数据库中的当前配置（服务、窗口、人员、设备、公告、设置）连同 --config "
                    "文件的部署部分写成 TOML。 / Write the database's configuration (services, "
                    "windows, clerks, devices, notices, settings) with --config's deployment "
                    "sections as TOML.")
    c.add_argument("--config", default=str(DEMO_CONFIG), metavar="FILE",
                   help="the hall file the server runs with (default: the demo hall)")
    c.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    _add_storage(c)
    c.set_defaults(func=cmd_config_export)
    c = csub.add_parser(
        "import", help="把配置文件导入数据库 / take a hall file's configuration in",
        description="把配置文件中的服务、窗口、人员、设备、公告和设置导入数据库，整体生效或整体不生效；会让号无处"
                    "可去的修改会被拒绝。服务器运行时经由其接口导入。 / Take a hall file's services, "
                    "windows, clerks, devices, notices and settings in, all or nothing; a change "
                    "that would strand tickets is refused. While a server runs on the data "
                    "folder, this goes through its API.")
    c.add_argument("file", help="the hall file to import")
    c.add_argument("--dry-run", action="store_true", help="only show the differences")
    c.add_argument("--config", default=str(DEMO_CONFIG), metavar="FILE",
                   help="the hall file the server runs with (default: the demo hall)")
    c.add_argument("--server", metavar="HOST:PORT",
                   help="the running server's HTTP address (default: $YIMEN_HTTP, then the "
                        "config's server.http)")
    _add_storage(c)
    c.set_defaults(func=cmd_config_import)

    p = sub.add_parser(
        "db", help="数据库维护 / database maintenance",
        description="数据库维护：upgrade 迁移到最新结构，revision 为新的表写迁移。 / "
                    "Database maintenance: upgrade applies the schema migrations, revision writes "
                    "the migration for new tables.")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    u = dbsub.add_parser(
        "upgrade", help="迁移数据库结构 / apply the schema migrations",
        description="把数据库结构迁移到最新版本。serve 启动时会自动迁移，此命令用于事先执行。 / "
                    "Bring the database's schema up to date. serve does this itself at start; "
                    "this is for doing it beforehand.")
    u.add_argument("--config", metavar="FILE", help="take the database URL from this hall")
    _add_storage(u)
    u.set_defaults(func=cmd_db_upgrade)
    r = dbsub.add_parser(
        "revision", help="写一个新的迁移 / write the migration for what controller/storage/"
                         "schema.py declares and the migrations do not build",
        description="为 controller/storage/schema.py 中已声明、而迁移尚未建立的表写一个新的 Alembic "
                    "迁移（供开发者使用）。 / "
                    "Write a new Alembic migration for what controller/storage/schema.py declares "
                    "and the migrations do not yet build (for developers).")
    r.add_argument("message", help="what the migration does, e.g. \"cases and their hand-offs\"")
    r.set_defaults(func=cmd_db_revision)

    p = sub.add_parser(
        "backup", help="备份大厅数据库（服务器运行时也可）/ back up the hall's database, also "
                       "while the server runs",
        description="备份大厅数据库：服务器运行、取号不停时也能得到一致的副本，含开始备份前提交的全部"
                    "数据。SQLite 用在线备份接口，PostgreSQL 用 pg_dump --format=custom。"
                    "DEST 是文件夹时写入 yimen-YYYYMMDD-HHMMSS.db（PostgreSQL 为 .dump）。 / "
                    "A consistent copy of the hall's database, also while the server runs and "
                    "takes tickets: everything committed before the backup began. SQLite by its "
                    "online backup API, PostgreSQL by pg_dump --format=custom. When DEST is a "
                    "folder the copy is yimen-YYYYMMDD-HHMMSS.db (.dump for PostgreSQL) in it.")
    p.add_argument("dest", metavar="DEST", help="备份文件或文件夹 / the backup file, or a folder")
    p.add_argument("--config", metavar="FILE", help="take the database URL from this hall")
    _add_storage(p)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "restore", help="从备份恢复大厅数据库 / bring a backup back as the hall's database",
        description="从 yimen backup 的备份恢复大厅数据库，再迁移到最新结构。SQLite：服务器在该数据"
                    "文件夹运行时拒绝；已有数据库时须加 --force；先检查备份是完好的 Yimen 数据库，"
                    "再原子替换。PostgreSQL：pg_restore --clean --if-exists，在一个事务中完成。 / "
                    "Bring a backup made by yimen backup back as the hall's database, then "
                    "migrate it to the current schema. SQLite: refused while a server runs on "
                    "the data folder, and over an existing database without --force; the backup "
                    "is checked to be a sound Yimen database before it replaces the file "
                    "atomically. PostgreSQL: pg_restore --clean --if-exists, in one transaction.")
    p.add_argument("src", metavar="SRC", help="备份文件 / the backup file")
    p.add_argument("--force", action="store_true",
                   help="覆盖已有的数据库 / replace an existing database")
    p.add_argument("--config", metavar="FILE", help="take the database URL from this hall")
    _add_storage(p)
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "bench", help="性能测试 / benchmarks",
        description="性能测试：引擎、设备总线、综合屏推送、异常消息冲击、重启、串口。结果见 "
                    "docs/benchmarks.md。 / "
                    "Benchmarks: the engine, the device bus, the hall screens' pushes, a flood of "
                    "malformed events, restarts and serial lines. Results in docs/benchmarks.md.")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser(
        "engine", help="经引擎落盘的每秒命令数 / durable commands per second through the engine",
        description="测量经过排队引擎、提交落盘的每秒命令数，并与直接使用 sqlite3 的基线比较。 / "
                    "Durable commands per second through the engine, next to a plain sqlite3 "
                    "baseline.")
    b.add_argument("--tickets", type=int, default=20000)
    b.add_argument("--concurrency", type=int, default=200, help="devices sending at once")
    b.add_argument("--baseline", type=int, default=2000, help="commits in the sqlite3 baseline")
    b.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    b.add_argument("--db", metavar="URL", help="run the engine on this database instead")
    b.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    b.set_defaults(func=cmd_bench_engine)
    b = bsub.add_parser(
        "bus", help="MQTT 上的叫号延迟和取号吞吐量 / caller next → window display latency and take "
                    "throughput over MQTT, with the broker's two-hop baseline",
        description="通过 MQTT 测量呼叫器按「下一位」到窗口屏显示的延迟，以及取号吞吐量，并与代理本身"
                    "的两跳基线比较。 / "
                    "Over MQTT: the latency from a caller's next to the window display, and take "
                    "throughput, next to the broker's own two-hop baseline.")
    b.add_argument("--broker", metavar="URL", help="an external broker, e.g. mqtt://127.0.0.1:1883 "
                                                   "(default: the hall server's own Mosquitto)")
    b.add_argument("--devices", type=int, default=500, help="simulated devices connected")
    b.add_argument("--windows", type=int, default=50, help="windows calling")
    b.add_argument("--presses", type=int, default=20, help="next presses per window")
    b.add_argument("--interval", type=float, default=0.5, help="seconds between a window's presses")
    b.add_argument("--tickets", type=int, default=6000, help="tickets taken for the throughput")
    b.add_argument("--db", metavar="URL", help="run the engine on this database instead")
    b.set_defaults(func=cmd_bench_bus)
    b = bsub.add_parser(
        "screens", help="叫号到达每个综合屏页面的时间 / a call reaching every hall-screen page "
                        "(server-sent events)",
        description="测量一次叫号到达所有综合屏页面（服务器推送事件）的时间（p50/p99），以及服务器每"
                    "次叫号的 CPU 时间。 / "
                    "How long a call takes to reach every hall-screen page (server-sent events), "
                    "p50/p99, and the server's CPU time per call.")
    b.add_argument("--clients", type=int, default=200, help="hall-screen pages connected")
    b.add_argument("--calls", type=int, default=100)
    b.add_argument("--interval", type=float, default=0.2, help="seconds between calls")
    b.set_defaults(func=cmd_bench_screens)
    b = bsub.add_parser(
        "admin", help="60 个窗口、300 台设备的值班看板 / the duty dashboard of a hall with 60 windows "
                      "and 300 devices",
        description="测量值班看板页面的渲染时间（p50/p99），以及看板实时更新占用的服务器 CPU。 / "
                    "The dashboard's render time (p50/p99) and the server's CPU for its live updates.")
    b.add_argument("--requests", type=int, default=300, help="page requests, one after another")
    b.add_argument("--dashboards", type=int, default=10, help="dashboards open during the load")
    b.add_argument("--rate", type=float, default=4.0, help="commands a second (take, call)")
    b.add_argument("--seconds", type=float, default=15.0, help="how long the load runs")
    b.set_defaults(func=cmd_bench_admin)
    b = bsub.add_parser(
        "poison", help="大量异常消息下的服务器 / server memory, log and service under a flood of "
                       "malformed device events",
        description="一台取号机向大厅发送大量格式错误的事件：测量服务器前后的内存和日志行数，以及同时"
                    "另一台取号机的取号。 / "
                    "A kiosk flooding the hall with malformed events: the server's memory and log "
                    "lines before and after, and another kiosk's takes meanwhile.")
    b.add_argument("--broker", metavar="URL",
                   help="an external broker (default: the hall server's own Mosquitto)")
    b.add_argument("--count", type=int, default=100_000, help="malformed events sent")
    b.add_argument("--take-every", type=float, default=0.05,
                   help="seconds between another kiosk's takes meanwhile")
    b.set_defaults(func=cmd_bench_poison)
    b = bsub.add_parser("restart", help="重启后多快恢复服务：一年历史的大厅 / how soon a hall with a "
                                        "year of history answers again after a restart",
                        description="生成一个繁忙县级大厅一年的数据（默认 60 万张票），反复重启引擎和 "
                                    "yimen serve，测量多快重新响应：只读取当天的状态。 / "
                                    "A generated year of a busy county hall (600,000 tickets by "
                                    "default), restarted again and again: how soon the engine and "
                                    "yimen serve answer, since only today's state is read.")
    b.add_argument("--tickets", type=int, default=600_000, help="tickets in the generated year")
    b.add_argument("--repeats", type=int, default=3, help="restarts timed")
    b.set_defaults(func=cmd_bench_restart)
    b = bsub.add_parser("auth", help="登录和鉴权的开销 / what signing in and checking credentials cost",
                        description="登录时 argon2id 校验的耗时；同一接口调用在无凭据、令牌和会话下的 p50 "
                                    "耗时之差。 / A login's argon2id check, and what a Bearer token or a "
                                    "session adds to the same API call at p50, measured in one run.")
    b.add_argument("--calls", type=int, default=3000, help="calls of each kind")
    b.add_argument("--logins", type=int, default=20, help="password checks timed")
    b.set_defaults(func=cmd_bench_auth)
    b = bsub.add_parser(
        "serial", help="每个串口帧的软件开销 / software cost per serial frame next to its wire time",
        description="通过一对伪终端测量每个串口帧的软件开销，并与 9600 和 115200 波特率下的传输时间"
                    "比较。 / "
                    "Software cost per serial frame over a pseudo-terminal pair, next to the wire "
                    "time at 9600 and 115200 baud.")
    b.add_argument("--frames", type=int, default=5000, help="request/answer exchanges")
    b.set_defaults(func=cmd_bench_serial)
    b = bsub.add_parser(
        "estimates", help="预计等候的准确度 / how often the real wait falls within the estimated range",
        description="在进程内模拟大厅的一天（泊松到达、多个窗口、指数型办理时间、工作人员不时暂停），"
                    "记录每张号取号时给出的预计等候范围和叫号时的实际等候，统计落在范围内的比例。 / "
                    "A simulated hall day in-process (Poisson arrivals, several windows, "
                    "exponential-ish service times, clerks pausing now and then): the share of "
                    "tickets whose real wait fell within the range stated at their issue.")
    b.add_argument("--loads", type=float, nargs="+", default=[0.6, 0.8, 0.95, 1.1],
                   help="arrivals as a share of the windows' nominal capacity")
    b.add_argument("--days", type=int, default=10, help="simulated days per load")
    b.add_argument("--seed", type=int, default=1)
    b.set_defaults(func=cmd_bench_estimates)
    b = bsub.add_parser(
        "matters", help="导入 900 项事项清单、边输入边查找 / import a 900-matter catalogue, search as "
                        "one types",
        description="生成一个区级事项清单（525 项行政许可、349 项公共服务，共 900 行）的 xlsx 文件，经引擎"
                    "导入临时 SQLite 大厅（从读文件到提交），再逐字输入名称、拼音首字母和编码查找（p50/p99/"
                    "最大）。 / A district's catalogue (525 licensing and 349 public-service matters, "
                    "900 rows) generated as xlsx and imported through the engine on a temporary "
                    "SQLite hall (from reading the file to committed), then searched one keystroke "
                    "at a time by name, pinyin initials and code (p50/p99/max).")
    b.add_argument("--repeats", type=int, default=20, help="times each prefix is searched")
    b.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    b.set_defaults(func=cmd_bench_matters)
    b = bsub.add_parser(
        "tiers", help="三级联动：积压办件的上报速度、全县总览的刷新 / the links between halls under load",
        description="县、乡镇两级大厅在本进程中运行：断网期间积压的办件在恢复后多快全部送达县级；"
                    "县级总览在下级大厅有变化后多快显示。 / "
                    "Hall servers in this process: how fast a backlog of cases sent up while the "
                    "link was cut reaches the county once it is back; how soon the county's "
                    "overview shows a change at one of many halls below.")
    b.add_argument("--backlog", type=int, default=10000, help="cases waiting when the link comes back")
    b.add_argument("--halls", type=int, default=30, help="halls below the county for the overview")
    b.add_argument("--changes", type=int, default=60, help="tickets taken at random halls")
    b.add_argument("--seed", type=int, default=7)
    b.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    b.set_defaults(func=cmd_bench_tiers)
    b = bsub.add_parser(
        "reports", help="一年数据上的统计报表和日报 / the statistics of a generated year of a county hall",
        description="生成一个县级大厅一年的数据（60 万张票、400 万条事件、6 万件办件、40 万条评价），"
                    "在 SQLite 和 PostgreSQL 上测量按窗口的年度和月度统计、每日日报的生成时间，并与同一次"
                    "运行中的 count(*) 比较。 / "
                    "A generated year of a county hall (600,000 tickets, 4 million "
                    "events, 60,000 cases, 400,000 ratings): the yearly and monthly per-window reports "
                    "and one day's roll-up, on SQLite and PostgreSQL, next to a bare count(*) of the "
                    "same events in the same run.")
    b.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    b.add_argument("--scale", type=float, default=1.0,
                   help="share of the year's tickets, e.g. 0.05 for a quick run")
    b.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
                   metavar="URL", help="PostgreSQL server (admin connection): a throwaway database "
                                       "yimen_bench_… is made there and dropped afterwards")
    b.add_argument("--repeats", type=int, default=5, help="times each query is measured")
    b.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    b.set_defaults(func=cmd_bench_reports)
    p = sub.add_parser(
        "stats", help="统计 / statistics",
        description="统计：rollup 从事件日志重建已结束各日的日报（可重复执行）。 / Statistics: rollup "
                    "rebuilds the daily roll-ups of finished days from the event log (idempotent).")
    ssub = p.add_subparsers(dest="stats_command", required=True)
    s = ssub.add_parser("rollup", help="重建日报 / rebuild the daily roll-ups",
                        description="重建 --from 之日起（默认：全部）已结束各日的日报；原始事件保留。 / "
                                    "Rebuild the roll-ups of the finished days from --from (default: "
                                    "all); the raw events stay.")
    s.add_argument("--from", dest="since", metavar="YYYY-MM-DD", help="the first day to rebuild")
    _hall_command(s, cmd_stats_rollup)
    cli_auth.add_parsers(sub, _hall_command)
    cli_devices.add_parsers(sub, _hall_command)
    cli_matters.add_parsers(sub, _hall_command)
    return parser


def _hall_command(p: argparse.ArgumentParser, command) -> None:  # noqa: ANN001
    """--config and the storage options; run ``command(args, hall file)`` with ``args.db``
    the database's URL (``--db``, else the hall file's; None: the data folder's SQLite)."""
    p.add_argument("--config", default=str(DEMO_CONFIG), metavar="FILE",
                   help="the hall file the server runs with (default: the demo hall)")
    _add_storage(p)

    def run(args: argparse.Namespace) -> int:
        config = _config(args.config)
        args.db = args.db or config.storage.url or None
        return command(args, config)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        for noisy in ("alembic",):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except StartupError as exc:            # a busy port, a locked folder, a bad database
        print(f"yimen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

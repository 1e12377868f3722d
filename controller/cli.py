"""``yimen``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from controller import __version__
from controller.config import ConfigError, HallConfig, load_config

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.toml"


def _config(path: str | Path) -> HallConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"yimen: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=os.environ.get("YIMEN_DATA", "yimen-data"), metavar="DIR",
                   help="data folder for the embedded SQLite database "
                        "(default: $YIMEN_DATA or yimen-data/)")
    p.add_argument("--db", default=os.environ.get("YIMEN_DB") or None, metavar="URL",
                   help="database URL instead, e.g. postgresql://user@host/yimen "
                        "(default: $YIMEN_DB, then the config's storage.url)")


def _add_bus(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default=os.environ.get("YIMEN_BROKER") or None, metavar="URL",
                   help="use this MQTT broker (mqtt://host:port) instead of the embedded one "
                        "(default: $YIMEN_BROKER, then the config's bus.broker)")
    p.add_argument("--mqtt", metavar="HOST:PORT",
                   help="where the embedded broker listens (default: $YIMEN_MQTT, then the "
                        "config's bus.listen; port 0 picks a free one)")


def cmd_serve(args: argparse.Namespace, config: HallConfig | None = None, banner: str = "") -> int:
    from controller.server import create_app, run

    config = config or _config(args.config)
    listen = args.http or os.environ.get("YIMEN_HTTP") or config.server.http
    app = create_app(config, args.data, args.db, broker=args.broker,
                     broker_listen=args.mqtt or os.environ.get("YIMEN_MQTT") or None)
    asyncio.run(run(app, listen, banner))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    config = _config(DEMO_CONFIG)
    banner = (f"{config.hall.name} ({config.hall.id}): {len(config.services)} services, "
              f"{len(config.windows)} windows, {len(config.clerks)} clerks — ")
    return cmd_serve(args, config, banner)


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


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from controller.storage.db import current_revision, database_url, open_database, upgrade

    config = _config(args.config) if args.config else None
    url = database_url(args.db or (config.storage.url if config else None), args.data)

    async def go() -> str | None:
        db = open_database(url)
        try:
            await upgrade(db)
            return await current_revision(db)
        finally:
            await db.dispose()

    print(f"database at revision {asyncio.run(go())}")
    return 0


def cmd_bench_engine(args: argparse.Namespace) -> int:
    from controller.bench import engine as bench

    out = asyncio.run(bench.run(args.tickets, args.concurrency, args.baseline,
                                args.synchronous, args.db))
    print(bench.report(out))
    return 0 if all(ok for _, ok, _ in out["checks"]) or not args.strict else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yimen", description="Yimen (一门) hall controller")
    parser.add_argument("--version", action="version", version=f"yimen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the hall server")
    p.add_argument("--config", required=True, metavar="FILE", help="the hall's TOML file")
    p.add_argument("--http", metavar="HOST:PORT", help="listen address (default from config)")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="serve the demo hall (config/demo.toml)")
    p.add_argument("--http", metavar="HOST:PORT", help="listen address (default 127.0.0.1:8480)")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-config", help="validate hall configuration files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    u = dbsub.add_parser("upgrade", help="apply the schema migrations")
    u.add_argument("--config", metavar="FILE", help="take the database URL from this hall")
    _add_storage(u)
    u.set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("bench", help="benchmarks")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    b = bsub.add_parser("engine", help="durable commands per second through the engine")
    b.add_argument("--tickets", type=int, default=20000)
    b.add_argument("--concurrency", type=int, default=200, help="devices sending at once")
    b.add_argument("--baseline", type=int, default=2000, help="commits in the sqlite3 baseline")
    b.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    b.add_argument("--db", metavar="URL", help="run the engine on this database instead")
    b.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    b.set_defaults(func=cmd_bench_engine)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

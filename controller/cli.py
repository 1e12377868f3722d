"""``yimen``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from controller import __version__
from controller.config import ConfigError, HallConfig, load_config

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.toml"


def _config(path: str | Path, loader=load_config):  # noqa: ANN001, ANN202
    try:
        return loader(path)
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


def cmd_serve(args: argparse.Namespace, config: HallConfig | None = None, banner: str = "",
              also=None) -> int:  # noqa: ANN001
    """Run the hall server; ``also`` is an extra cleanup context (the demo's devices)."""
    from controller.server import create_app, run

    config = config or _config(args.config)
    if getattr(args, "gateway", None):
        also = _gateway_in_server(args.gateway, config, args.data)
    listen = args.http or os.environ.get("YIMEN_HTTP") or config.server.http
    app = create_app(config, args.data, args.db, broker=args.broker,
                     broker_listen=args.mqtt or os.environ.get("YIMEN_MQTT") or None)
    if also is not None:
        app.cleanup_ctx.append(also)
    asyncio.run(run(app, listen, banner))
    return 0


def _gateway_in_server(path: str, config: HallConfig, data: str):  # noqa: ANN202
    """The gateway in the hall server's process, on the server's own broker and secret."""
    from devices.gateway_config import load

    gateway_config = _config(path, load)

    async def gateway(app) -> AsyncIterator[None]:  # noqa: ANN001
        from controller.bus import security
        from controller.web.api import BUS
        from devices.gateway import Gateway

        gw = Gateway(gateway_config, app[BUS].link.broker,
                     secret=security.load_secret(config, data))
        await gw.start()
        yield
        await gw.stop()

    return gateway


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo hall: the server and, unless --no-devices, every simulated device with a
    stream of citizens, in one process."""
    from controller.web.api import BUS

    config = _config(DEMO_CONFIG)
    banner = (f"{config.hall.name} ({config.hall.id}): {len(config.services)} services, "
              f"{len(config.windows)} windows, {len(config.devices)} devices — ")

    async def simulated_hall(app) -> AsyncIterator[None]:  # noqa: ANN001
        from controller.bus import security
        from devices.simhall import SimulatedHall

        hall = SimulatedHall(config, app[BUS].link.broker, security.load_secret(config, args.data))
        await hall.start()
        yield
        await hall.stop()

    return cmd_serve(args, config, banner, None if args.no_devices else simulated_hall)


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
    """Simulated devices and citizens against a running hall server."""
    from controller.bus import security
    from devices.simhall import SimulatedHall
    from protocol.link import BrokerAddress

    config = _config(args.config)
    url = args.broker or config.bus.broker or f"mqtt://{args.mqtt or config.bus.listen}"
    _until_signalled(
        lambda: SimulatedHall(config, BrokerAddress.parse(url), security.load_secret(config, args.data)),
        lambda hall: f"simulating {len(hall.devices)} devices of hall {config.hall.id} on {url}",
        start=lambda hall: hall.start(citizens=not args.devices_only),
        after=lambda hall: print(f"stats: {dict(hall.stats)}", flush=True))
    return 0


def cmd_broker_config(args: argparse.Namespace) -> int:
    """Mosquitto files with the same passwords and ACL as the embedded broker."""
    from controller.bus import security
    from protocol.link import BrokerAddress

    config = _config(args.config)
    port = BrokerAddress.parse(config.bus.listen).port if args.port is None else args.port
    files = security.mosquitto_files(config, security.load_secret(config, args.data), port)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        if name == "passwd":
            path.chmod(0o600)
        print(f"wrote {path}")
    print(f"passwd is readable by its owner only: chown it to the user Mosquitto runs as. Run "
          f"`mosquitto -c mosquitto.conf` in {out}, then `yimen serve --broker mqtt://HOST:{port}`")
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


def cmd_db_revision(args: argparse.Namespace) -> int:
    from controller.storage.db import write_revision

    print(f"wrote {asyncio.run(write_revision(args.message))}")
    return 0


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
    if not config.secret:
        print(f"yimen: {args.config}: secret: the hall's bus secret is needed", file=sys.stderr)
        return 2
    _until_signalled(
        lambda: Gateway(config, BrokerAddress.parse(args.broker) if args.broker else None),
        lambda gw: f"gateway for hall {config.hall}: {len(gw.devices)} devices on "
                   f"{len(config.buses)} buses and {len(config.gpio)} button panels, broker "
                   f"mqtt://{gw.broker.host}:{gw.broker.port}")
    return 0


def cmd_announcer(args: argparse.Namespace) -> int:
    """The hall's voice: follows the calls and says them (or only makes the clips)."""
    from display import audio

    if args.make_clips:
        made = audio.make_clips(args.make_clips)
        print(f"{len(made)} clips in {args.make_clips}")
        return 0
    from controller.bus import security
    from devices.announcer import VoiceAnnouncer, engine_for
    from protocol.credentials import derived_password
    from protocol.link import BrokerAddress

    if not args.config:
        print("yimen: announcer: --config FILE is needed", file=sys.stderr)
        return 2
    config = _config(args.config)
    url = args.broker or config.bus.broker or f"mqtt://{config.bus.listen}"
    secret = security.load_secret(config, args.data)
    try:
        engine = engine_for(args.engine, args.clips)
    except audio.AudioError as exc:
        print(f"yimen: {exc}", file=sys.stderr)
        return 2

    _until_signalled(
        lambda: VoiceAnnouncer(config.hall.id, args.id, BrokerAddress.parse(url),
                               derived_password(secret, args.id), engine=engine,
                               out=args.out, play=args.play),
        lambda _: f"announcer {args.id} of hall {config.hall.id} on {url}, engine {args.engine}")
    return 0


def cmd_bench_screens(args: argparse.Namespace) -> int:
    from controller.bench import screens as bench

    print(bench.report(asyncio.run(bench.run(args.clients, args.calls, args.interval,
                                             str(DEMO_CONFIG)))))
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


def cmd_bench_serial(args: argparse.Namespace) -> int:
    from devices import bench_serial as bench

    print(bench.report(asyncio.run(bench.run(args.frames))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yimen", description="Yimen (一门) hall controller")
    parser.add_argument("--version", action="version", version=f"yimen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the hall server")
    p.add_argument("--config", required=True, metavar="FILE", help="the hall's TOML file")
    p.add_argument("--http", metavar="HOST:PORT", help="listen address (default from config)")
    p.add_argument("--gateway", metavar="FILE", help="also run this serial/GPIO gateway, on the "
                                                     "server's broker")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="serve the demo hall (config/demo.toml) with simulated "
                                    "devices and citizens")
    p.add_argument("--http", metavar="HOST:PORT", help="listen address (default 127.0.0.1:8480)")
    p.add_argument("--no-devices", action="store_true", help="the server only")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="run a hall's simulated devices and citizens")
    p.add_argument("--config", required=True, metavar="FILE", help="the hall's TOML file")
    p.add_argument("--devices-only", action="store_true", help="devices, but no citizens or clerks")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("gateway", help="attach serial buses and GPIO buttons as protocol v1 devices")
    p.add_argument("--config", required=True, metavar="FILE", help="the gateway's TOML file")
    p.add_argument("--broker", metavar="URL", help="the hall's broker (default from the file)")
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser("announcer", help="the hall's voice: say every call (WAV files or the "
                                         "sound card)")
    p.add_argument("--config", metavar="FILE", help="the hall's TOML file")
    p.add_argument("--id", default="announcer-1", help="its device id (default announcer-1)")
    p.add_argument("--engine", choices=["clips", "espeak", "chime"], default="espeak")
    p.add_argument("--clips", metavar="DIR", help="one WAV per syllable, for --engine clips")
    p.add_argument("--out", metavar="DIR", help="write each announcement as a WAV file here")
    p.add_argument("--play", action="store_true", help="play through the sound card (aplay)")
    p.add_argument("--make-clips", metavar="DIR", help="only make the syllable clips with "
                                                       "espeak-ng, then exit")
    _add_storage(p)
    _add_bus(p)
    p.set_defaults(func=cmd_announcer)

    p = sub.add_parser("kiosk", help="the program on a kiosk box: printer, ID reader and page")
    p.add_argument("--config", required=True, metavar="FILE", help="the kiosk's TOML file")
    p.set_defaults(func=cmd_kiosk)

    p = sub.add_parser("broker-config", help="write Mosquitto passwd, acl and conf for a hall")
    p.add_argument("--config", required=True, metavar="FILE", help="the hall's TOML file")
    p.add_argument("--out", default="mosquitto", metavar="DIR", help="folder for the files")
    p.add_argument("--port", type=int, help="listener port (default: the config's bus.listen)")
    _add_storage(p)
    p.set_defaults(func=cmd_broker_config)

    p = sub.add_parser("check-config", help="validate hall configuration files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    u = dbsub.add_parser("upgrade", help="apply the schema migrations")
    u.add_argument("--config", metavar="FILE", help="take the database URL from this hall")
    _add_storage(u)
    u.set_defaults(func=cmd_db_upgrade)
    r = dbsub.add_parser("revision", help="write the migration for what controller/storage/"
                                          "schema.py declares and the migrations do not build")
    r.add_argument("message", help="what the migration does, e.g. \"cases and their hand-offs\"")
    r.set_defaults(func=cmd_db_revision)

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
    b = bsub.add_parser("bus", help="caller next → window display latency and take throughput "
                                    "over MQTT, with the broker's two-hop baseline")
    b.add_argument("--broker", metavar="URL", help="an external broker, e.g. mqtt://127.0.0.1:1883 "
                                                   "(default: an embedded one)")
    b.add_argument("--devices", type=int, default=500, help="simulated devices connected")
    b.add_argument("--windows", type=int, default=50, help="windows calling")
    b.add_argument("--presses", type=int, default=20, help="next presses per window")
    b.add_argument("--interval", type=float, default=0.5, help="seconds between a window's presses")
    b.add_argument("--tickets", type=int, default=6000, help="tickets taken for the throughput")
    b.add_argument("--db", metavar="URL", help="run the engine on this database instead")
    b.set_defaults(func=cmd_bench_bus)
    b = bsub.add_parser("screens", help="a call reaching every hall-screen page (server-sent "
                                        "events)")
    b.add_argument("--clients", type=int, default=200, help="hall-screen pages connected")
    b.add_argument("--calls", type=int, default=100)
    b.add_argument("--interval", type=float, default=0.2, help="seconds between calls")
    b.set_defaults(func=cmd_bench_screens)
    b = bsub.add_parser("poison", help="server memory, log and service under a flood of "
                                       "malformed device events")
    b.add_argument("--broker", metavar="URL", help="an external broker (default: an embedded one)")
    b.add_argument("--count", type=int, default=100_000, help="malformed events sent")
    b.add_argument("--take-every", type=float, default=0.05,
                   help="seconds between another kiosk's takes meanwhile")
    b.set_defaults(func=cmd_bench_poison)
    b = bsub.add_parser("serial", help="software cost per serial frame next to its wire time")
    b.add_argument("--frames", type=int, default=5000, help="request/answer exchanges")
    b.set_defaults(func=cmd_bench_serial)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        for noisy in ("alembic", "amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

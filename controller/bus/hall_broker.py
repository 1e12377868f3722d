"""The hall's own Mosquitto, as ``yimen serve`` runs it unless an external broker is named.

Its files are in ``DATA/broker/`` (owner-only): the configuration (``controller.bus.mosquitto``),
the password file — the controller's own credential and the stored hashes of the enabled
devices that have one (``controller.bus.credentials``) — and the topic ACL
(``controller.bus.security``). Whenever the configured devices change, or a device's
credential is made, the files are written again and Mosquitto reloads them: a removed or
disabled device is cut off at once, and a removed device's credential is deleted.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.bus import credentials
from controller.bus.mosquitto import Mosquitto, conf_text
from controller.bus.security import CONTROLLER_USER, Grants, acl_text, passwd_text
from controller.config import HallConfig
from controller.core.events import EventKind
from controller.engine import Committed, Engine
from controller.startup import StartupError, busy_port
from protocol.link import BrokerAddress
from protocol.topics import Topics

FOLDER = "broker"
log = logging.getLogger("yimen.broker")


def reserve(address: BrokerAddress) -> int:
    """``address``'s port if it can be listened on now (port 0: a free one, picked here), or
    a ``StartupError`` in one line: a busy port is named, with the option that picks another."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)      # as Mosquitto binds it
        try:
            s.bind((address.host, address.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise busy_port("MQTT", address.host, address.port, "--mqtt") from None
            raise StartupError(f"无法在 {address.host}:{address.port} 上监听 MQTT：{exc.strerror or exc}",
                               f"cannot listen for MQTT on {address.host}:{address.port}: "
                               f"{exc.strerror or exc}") from None
        return int(s.getsockname()[1])


async def users(db: AsyncEngine, config: HallConfig, controller: str,
                extra: dict[str, tuple[str, Grants]] | None = None) -> dict[str, str]:
    """Who may log in, user → hash: the controller (``controller``: its hash), the enabled
    devices with a stored credential, and ``extra`` logins."""
    return {CONTROLLER_USER: controller, **await credentials.hashes(db, config),
            **{user: hashed for user, (hashed, _) in (extra or {}).items()}}


async def external_files(file: HallConfig, data_dir: str | Path, db_url: str | None,
                         port: int | None = None) -> dict[str, str]:
    """``yimen broker-config``: the files for an external Mosquitto, with the users the hall's
    own would have now (the database's devices and credentials, the controller's password
    from the data folder) and a listener on the hall file's ``bus.listen`` (or ``port``)."""
    from controller.config_io import stored_config
    from controller.startup import migrate
    from controller.storage.db import database_url, open_database

    url = database_url(db_url or file.storage.url, data_dir)
    db = open_database(url)
    try:
        await migrate(db)
        config = await stored_config(file, url)
        controller = credentials.controller_hash(data_dir)
        hub = hub_login(config, data_dir)
        files = {"passwd": passwd_text(await users(db, config, controller, hub)),
                 "acl": acl_text(config, {user: g for user, (_, g) in hub.items()})}
    finally:
        await db.dispose()
    listen = BrokerAddress.parse(file.bus.listen)
    if port is not None:
        listen = BrokerAddress(listen.host, port)
    return {"mosquitto.conf": conf_text(config.hall.id, listen, None, tls_listener(file)), **files}


def hub_login(config: HallConfig, data_dir: str | Path) -> dict[str, tuple[str, Grants]]:
    """The server's own login for its link to the halls below (``tier-hub``: its hash and
    grants), when it has halls below."""
    if not config.tier.lower:
        return {}
    tier = f"{Topics(config.hall.id).root}tier/#"
    hub = credentials.mosquitto_hash(credentials.hub_password(data_dir))
    return {credentials.HUB_USER: (hub, Grants(write=frozenset({tier}), read=frozenset({tier})))}


def tls_listener(config: HallConfig) -> tuple[BrokerAddress, str, str] | None:
    """The hall file's TLS listener: its address, certificate and key files."""
    bus = config.bus
    return (BrokerAddress.parse(bus.tls_listen), bus.tls_cert, bus.tls_key) if bus.tls_listen else None


class HallBroker:
    """``reserve_port`` (before the database opens), ``start``, ``follow``, ``refresh``,
    ``stop``; ``status`` for ``/api/health``; ``extra`` logins for tools (user → (hash,
    grants)), e.g. a benchmark's probes.

    Mosquitto 2.0 sends no will for a client it cuts off on a reload, so the devices a reload
    cut off (removed, disabled, or with a new password) are handed to ``on_cut_off``: the bus
    says they are offline."""

    def __init__(self, config: HallConfig, data_dir: str | Path, listen: str | None = None) -> None:
        self.folder = Path(data_dir) / FOLDER
        bind = BrokerAddress.parse(listen or config.bus.listen)
        self.address = bind
        self.tls = tls_listener(config)
        self._controller = credentials.controller_hash(data_dir)
        self.extra: dict[str, tuple[str, Grants]] = hub_login(config, data_dir)
        self.mosquitto: Mosquitto | None = None
        self.on_cut_off: Callable[[set[str]], Awaitable[None]] | None = None
        self._written: dict[str, str] = {}       # the password file's users, as last written
        self._cut: set[str] = set()               # whom the next reload cuts off

    def reserve_port(self) -> None:
        self.address = BrokerAddress(self.address.host, reserve(self.address))

    async def start(self, db: AsyncEngine, config: Callable[[], HallConfig]) -> None:
        """Start Mosquitto with the users of ``config()`` (the live configuration)."""
        hall = config()
        self.mosquitto = Mosquitto(self.folder, self.address,
                                   conf_text(hall.hall.id, self.address, self.folder.resolve(), self.tls),
                                   lambda: self._files(db, config()))
        await self.mosquitto.start()

    async def _files(self, db: AsyncEngine, config: HallConfig) -> dict[str, str]:
        written = await users(db, config, self._controller, self.extra)
        self._cut |= {user for user, hashed in self._written.items() if written.get(user) != hashed}
        self._written = written
        return {"passwd": passwd_text(written),
                "acl": acl_text(config, {user: g for user, (_, g) in self.extra.items()})}

    async def refresh(self) -> None:
        """Who may log in, again from the database (after a credential was made, or the
        devices changed); whom that cut off goes to ``on_cut_off``."""
        if self.mosquitto is None:
            return
        await self.mosquitto.refresh()
        cut, self._cut = self._cut - set(self.extra), set()
        if cut and self.on_cut_off is not None:
            await self.on_cut_off(cut)

    async def follow(self, engine: Engine) -> None:
        """Until cancelled: after each change of the configured devices (several changes, one
        reload), removed devices' credentials are deleted and Mosquitto reloads."""
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
            try:
                await credentials.forget_removed(engine.db, engine.config)
                await self.refresh()
            except Exception:  # noqa: BLE001 - the next change tries again
                log.exception("the broker's users could not be brought up to date")

    def status(self) -> dict[str, object]:
        return self.mosquitto.status() if self.mosquitto else {"ok": False, "error": "not started"}

    async def stop(self) -> None:
        if self.mosquitto is not None:
            await self.mosquitto.stop()


#: The hall's own broker in the app, when the server runs one.
BROKER: web.AppKey[HallBroker] = web.AppKey("broker", HallBroker)

"""Device credentials (设备凭据): each device's own MQTT password, the controller's own, and the
hall's ID-token key. Nothing here is derived from anything else, and no secret is shared.

A device's password is random (``secrets.token_urlsafe``: 192 bits), shown once when it is made
(``yimen device credentials ID``, ``POST /api/config/devices/{id}/credentials``) and kept only
as Mosquitto's ``$7$`` hash (PBKDF2-SHA512) in ``device_credentials``. A device without one
cannot log in until an administrator makes one; making a new one replaces the old at once.

``ITERATIONS``: 1,000 PBKDF2 rounds, ten times Mosquitto's default of 101. The passwords are
random, so no number of rounds is what protects them (192 bits cannot be guessed, stretched or
not); the rounds only slow down a guess at a password that did not come from here. What they
cost is paid on every CONNECT and, because Mosquitto 2.0 checks every connected client's
password again when it reloads (SIGHUP), once per connected device on every reload: about
0.5 ms each on a small server, so a 500-device hall reconnects after a broker restart in about
0.3 s of broker time and a reload pauses the broker for about as long (10,000 rounds measured
3 s: a call would wait that long behind every configuration change).

The controller's password and the ID-token key are random values kept in the data folder,
readable by their owner only (``controller.storage.private``); a missing or empty file means a
new one is made.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.config import HallConfig
from controller.core.errors import Refused
from controller.storage import private
from controller.storage.schema import device_credentials
from protocol.topics import hall_user

log = logging.getLogger("yimen.credentials")

ITERATIONS = 1000
CONTROLLER_FILE = "controller-password"
HUB_FILE = "tier-hub-password"
HUB_USER = "tier-hub"
ID_KEY_FILE = "id-token.key"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def mosquitto_hash(password: str, iterations: int = ITERATIONS) -> str:
    """Mosquitto 2's password-file hash: ``$7$rounds$salt$digest`` (PBKDF2-SHA512, base64)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def matches(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` (a ``$7$`` hash) was made from."""
    try:
        _, seven, rounds, salt, digest = stored.split("$")
        if seven != "7":
            return False
        mine = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(mine, base64.b64decode(digest))


async def stored_hash(db: AsyncEngine, hall: str, device: str) -> str | None:
    t = device_credentials
    async with db.connect() as conn:
        return (await conn.execute(select(t.c.secret_hash).where(t.c.hall == hall, t.c.device == device))
                ).scalar()


# ---------------------------------------------------------------------- devices, in the database
async def provision(db: AsyncEngine, hall: str, devices: Iterable[str]) -> dict[str, str]:
    """A new password for each of ``devices`` (replacing any it had), stored hashed in one
    transaction: device → password, the only time they are seen."""
    passwords = {d: new_password() for d in devices}
    hashed = await asyncio.to_thread(lambda: {d: mosquitto_hash(p) for d, p in passwords.items()})
    now = datetime.now(UTC)
    t = device_credentials
    async with db.begin() as conn:
        if hashed:
            await conn.execute(delete(t).where(t.c.hall == hall, t.c.device.in_(list(hashed))))
            await conn.execute(insert(t), [{"hall": hall, "device": d, "secret_hash": h,
                                            "created_at": now} for d, h in hashed.items()])
    return passwords


async def issue(db: AsyncEngine, hall: HallConfig, devices: list[str]) -> dict[str, str]:
    """``provision`` for configured devices only: ``unknown_config_item`` for a device the hall
    does not have, and nothing made."""
    known = {d.id for d in hall.devices} | {hall_user(h.id) for h in hall.tier.lower}
    for device in devices:
        if device not in known:
            raise Refused("unknown_config_item", f"没有设备 {device[:48]}", f"no device {device[:48]!r}")
    return await provision(db, hall.hall.id, devices)


async def reset(db: AsyncEngine, hall: HallConfig, device: str) -> str:
    """A configured device's new password; its old one stops working once the broker has
    reloaded (the running server's route makes it reload)."""
    return (await issue(db, hall, [device]))[device]


async def hashes(db: AsyncEngine, hall: HallConfig) -> dict[str, str]:
    """Device → stored hash, for the hall's enabled devices that have one: who may log in."""
    enabled = {d.id for d in hall.devices if d.enabled} | {hall_user(h.id) for h in hall.tier.lower}
    t = device_credentials
    async with db.connect() as conn:
        rows = (await conn.execute(select(t.c.device, t.c.secret_hash)
                                   .where(t.c.hall == hall.hall.id))).all()
    return {r.device: r.secret_hash for r in rows if r.device in enabled}


async def forget_removed(db: AsyncEngine, hall: HallConfig) -> None:
    """Delete the credentials of devices the hall no longer has."""
    t = device_credentials
    async with db.begin() as conn:
        gone = await conn.execute(delete(t).where(t.c.hall == hall.hall.id,
                                                  t.c.device.not_in([d.id for d in hall.devices] + [
                                                      hall_user(h.id) for h in hall.tier.lower])))
    if gone.rowcount:
        log.info("credentials of %d removed device(s) deleted", gone.rowcount)


# ---------------------------------------------------------------------- kept in the data folder
def controller_password(data_dir: str | Path) -> str:
    """The controller's own MQTT password (user ``controller``), kept in the data folder."""
    return private.key(data_dir, CONTROLLER_FILE).decode("ascii")


def hub_password(data_dir: str | Path) -> str:
    """The password of the MQTT user ``tier-hub`` the server serves its halls below as (one
    connection per user name on the hall's broker: the controller's own is the device bus's)."""
    return private.key(data_dir, HUB_FILE).decode("ascii")


def controller_hash(data_dir: str | Path) -> str:
    """The controller's password as the broker's password file keeps it."""
    return mosquitto_hash(controller_password(data_dir))


def id_token_key(data_dir: str | Path) -> bytes:
    """The hall's ID secret: the key ID numbers become tokens with, and what the key pair that
    opens sealed ones is derived from (``controller.bus.idcards``); it never leaves the server."""
    return private.key(data_dir, ID_KEY_FILE)

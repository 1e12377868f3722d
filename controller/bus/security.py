"""Device credentials and the topic ACL of protocol v1's Security section (pure).

Each device has its own MQTT user (its id). Its password is the one in the hall file, or one
derived from the hall's bus secret (``protocol.credentials.derived_password``, shared with the
devices), so the broker (embedded or Mosquitto) and the devices' provisioning agree without a
list to keep in step. Device X may publish only its own ``info``, ``availability``, ``event``
and ``state``, and read only its own ``set`` and ``cmd`` (plus ``calls`` and ``board`` for
screens and announcers) and ``controller/state``.
Only the controller publishes ``set``, ``cmd``, ``calls``, ``board`` and ``controller/state``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from controller.config import HallConfig
from protocol.credentials import derived_password
from protocol.topics import DEVICE_LEAVES, Topics

CONTROLLER_USER = "controller"
SCREEN_KINDS = ("window_display", "hall_display", "announcer")


def load_secret(config: HallConfig, data_dir: str | Path) -> str:
    """The hall's bus secret: from the config, else kept (0600) in the data folder."""
    if config.bus.secret:
        return config.bus.secret
    path = Path(data_dir) / "bus-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(24), encoding="ascii")
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip()


def passwords(config: HallConfig, secret: str) -> dict[str, str]:
    """User name → password, for the controller and every configured device."""
    out = {CONTROLLER_USER: derived_password(secret, CONTROLLER_USER)}
    for d in config.devices:
        out[d.id] = d.password or derived_password(secret, d.id)
    return out


@dataclass(frozen=True, slots=True)
class Grants:
    """Exact topics one user may write and read; ``everything`` for the controller."""

    write: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    everything: bool = False


def grants(config: HallConfig) -> dict[str, Grants]:
    topics = Topics(config.hall.id)
    out = {CONTROLLER_USER: Grants(everything=True)}
    for d in config.devices:
        if not d.enabled:     # it may still say who it is and hear that it is disabled
            out[d.id] = Grants(write=frozenset(topics.device(d.id, leaf) for leaf in DEVICE_LEAVES),
                               read=frozenset({topics.device(d.id, "cmd")}))
            continue
        read = {topics.device(d.id, "set"), topics.device(d.id, "cmd"), topics.state}
        if d.kind in SCREEN_KINDS:
            read |= {topics.calls, topics.board}
        out[d.id] = Grants(write=frozenset(topics.device(d.id, leaf) for leaf in DEVICE_LEAVES),
                           read=frozenset(read))
    return out


def allowed(rules: dict[str, Grants], root: str, user: str | None, action: str, topic: str) -> bool:
    """``action`` is ``publish``, ``subscribe`` (topic is then a filter) or ``receive``."""
    g = rules.get(user or "")
    if g is None:
        return False
    if g.everything:
        return topic.startswith(root)
    return topic in (g.write if action == "publish" else g.read)


def mosquitto_files(config: HallConfig, secret: str, port: int = 1883) -> dict[str, str]:
    """``mosquitto.conf``, ``passwd`` (PBKDF2-SHA512, Mosquitto 2's ``$7$``) and ``acl``."""
    users = passwords(config, secret)
    lines = []
    for user, password in users.items():
        salt = secrets.token_bytes(12)
        digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
        lines.append(f"{user}:$7$101${base64.b64encode(salt).decode()}$"
                     f"{base64.b64encode(digest).decode()}")
    acl = [f"# Yimen hall {config.hall.id}: protocol v1 topic ACL"]
    for user, g in grants(config).items():
        acl.append(f"\nuser {user}")
        if g.everything:
            acl.append(f"topic readwrite {Topics(config.hall.id).root}#")
            continue
        acl += [f"topic write {t}" for t in sorted(g.write)]
        acl += [f"topic read {t}" for t in sorted(g.read)]
    conf = f"""# Mosquitto 2 for Yimen hall {config.hall.id} (written by `yimen broker-config`)
listener {port}
allow_anonymous false
password_file passwd
acl_file acl
# Protocol v1 needs low latency: without it Nagle and delayed ACKs add ~40 ms per hop.
set_tcp_nodelay true
# QoS 1 messages queued for a slow subscriber before Mosquitto drops them. The controller keeps
# up and coalesces window updates; 1000 (the default) holds a burst of a full county hall.
max_queued_messages 1000
persistence true
autosave_interval 1
"""
    return {"mosquitto.conf": conf, "passwd": "\n".join(lines) + "\n", "acl": "\n".join(acl) + "\n"}

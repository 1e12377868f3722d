"""Protocol v1's Security section as Mosquitto files (pure): who may log in and the topic ACL.

Each device logs in as itself (its id) with its own password (``controller.bus.credentials``),
and the controller as ``controller``. Device X may publish only its own ``info``,
``availability``, ``event`` and ``state``, and read only its own ``set`` and ``cmd`` (plus
``calls`` and ``board`` for screens and announcers) and ``controller/state``. Only the
controller publishes ``set``, ``cmd``, ``calls``, ``board`` and ``controller/state``. A
disabled device is not in the files at all: it cannot log in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.config import HallConfig
from protocol.topics import DEVICE_LEAVES, Topics, hall_user, tier_topics

CONTROLLER_USER = "controller"
SCREEN_KINDS = ("window_display", "hall_display", "announcer")


@dataclass(frozen=True, slots=True)
class Grants:
    """Topics (or filters) one user may write and read; ``everything`` under the hall's root
    for the controller."""

    write: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    everything: bool = False


def grants(config: HallConfig) -> dict[str, Grants]:
    """User → what it may do, for the controller and every enabled device."""
    topics = Topics(config.hall.id)
    out = {CONTROLLER_USER: Grants(everything=True)}
    for d in config.devices:
        if not d.enabled:
            continue
        read = {topics.device(d.id, "set"), topics.device(d.id, "cmd"), topics.state}
        if d.kind in SCREEN_KINDS:
            read |= {topics.calls, topics.board}
        out[d.id] = Grants(write=frozenset(topics.device(d.id, leaf) for leaf in DEVICE_LEAVES),
                           read=frozenset(read))
    for lower in config.tier.lower:              # a hall below: only its own link's topics
        t = tier_topics(config.hall.id, lower.id)
        out[hall_user(lower.id)] = Grants(write=frozenset({t.up, t.down_ack, t.status}),
                                          read=frozenset({t.down, t.up_ack}))
    return out


def passwd_text(hashes: Mapping[str, str]) -> str:
    """Mosquitto's ``password_file``: ``user:$7$…`` lines."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in sorted(hashes.items()))


def acl_text(config: HallConfig, extra: Mapping[str, Grants] | None = None) -> str:
    """Mosquitto's ``acl_file`` for the hall's users (and ``extra`` ones, e.g. a benchmark's
    probes)."""
    root = Topics(config.hall.id).root
    lines = [f"# Yimen hall {config.hall.id}: protocol v1 topic ACL, written by Yimen"]
    for user, g in {**grants(config), **(extra or {})}.items():
        lines.append(f"\nuser {user}")
        if g.everything:
            lines.append(f"topic readwrite {root}#")
            continue
        lines += [f"topic write {t}" for t in sorted(g.write)]
        lines += [f"topic read {t}" for t in sorted(g.read)]
    return "\n".join(lines) + "\n"

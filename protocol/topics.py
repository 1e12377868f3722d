"""Protocol v1 topic names: everything lives under ``yimen/v1/{hall}/``."""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = "v1"
DEVICE_LEAVES = ("info", "availability", "event", "state")
#: a device topic under the hall's root: ``device/{device}/{leaf}`` for a leaf devices publish
DEVICE_TOPIC = re.compile(r"^device/([a-z0-9][a-z0-9-]{0,47})/(info|availability|event|state)$")


class Topics:
    """Topic names under ``yimen/v1/{hall}/``."""

    def __init__(self, hall: str) -> None:
        self.root = f"yimen/{VERSION}/{hall}/"
        self.state = self.root + "controller/state"
        self.calls = self.root + "calls"
        self.board = self.root + "board"
        self.subscriptions = [self.root + f"device/+/{leaf}" for leaf in DEVICE_LEAVES]

    def device(self, device: str, leaf: str) -> str:
        return f"{self.root}device/{device}/{leaf}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(device, leaf)`` for a device topic of this hall, else ``None``."""
        if not topic.startswith(self.root):
            return None
        m = DEVICE_TOPIC.match(topic[len(self.root):])
        return (m[1], m[2]) if m else None


@dataclass(frozen=True, slots=True)
class TierTopics:
    """The topics of the link between an upper hall and one hall below it, on the upper hall's
    broker: the lower hall publishes ``up``, ``down_ack`` and ``status``, the upper one ``down``
    and ``up_ack``."""

    up: str
    up_ack: str
    down: str
    down_ack: str
    status: str          # the lower hall's summary, retained; its will says it went away


def tier_topics(upper: str, lower: str) -> TierTopics:
    root = f"yimen/{VERSION}/{upper}/tier/{lower}/"
    return TierTopics(root + "up", root + "up/ack", root + "down", root + "down/ack", root + "status")


TIER_TOPIC = re.compile(
    r"^yimen/v1/([a-z0-9][a-z0-9-]{0,31})/tier/([a-z0-9][a-z0-9-]{0,31})/(up|down/ack|status)$")


def hall_user(hall: str) -> str:
    """The MQTT user a lower hall logs in to its upper hall's broker as."""
    return f"hall-{hall}"

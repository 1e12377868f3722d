"""Protocol v1 topic names: everything lives under ``yimen/v1/{hall}/``."""

from __future__ import annotations

import re

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

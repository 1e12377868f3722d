"""好差评: one rating per service event, voluntary, never pre-selected.

A clerk asks for a rating (``evaluate``); the window's evaluator shows a prompt for that
session; the citizen presses one of five levels (``rate``) or the session times out and is
recorded as unrated (``expire_evaluation``), never as a default good rating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from controller.config import RATING_LEVELS

#: The five levels, best first (非常满意 … 非常不满意). Symbolic names, never numbers.
LEVELS = RATING_LEVELS
BAD_LEVELS = frozenset(LEVELS[3:])   # 差评
REASONS = frozenset({"attitude", "efficiency", "process", "environment", "other"})
DEFAULT_TIMEOUT_S = 60


@dataclass(slots=True)
class Evaluation:
    """One rating session at a window for one ticket."""

    id: str
    window: str
    clerk: str | None
    ticket: str
    number: str
    service: str
    opened_at: datetime
    timeout_s: int = DEFAULT_TIMEOUT_S
    closed_at: datetime | None = None
    level: str | None = None          # None once closed = unrated (未评价)
    reasons: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.closed_at is None


def masked_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***: what an evaluator may show of a clerk."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""

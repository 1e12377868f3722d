"""The records the core keeps: tickets (号), window states, attendance and bookings.

Each record is a plain dataclass; storage maps each kind to its table in one place
(``controller/storage/schema.py``: ``RECORDS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum


class TicketState(str, Enum):
    WAITING = "waiting"        # 等候
    CALLED = "called"          # 已呼叫
    SERVING = "serving"        # 办理中
    HELD = "held"              # 挂起
    DONE = "done"              # 办结
    NO_SHOW = "no_show"        # 过号
    NOT_SERVED = "not_served"  # closed at day rollover (未办理)
    CANCELLED = "cancelled"    # 取消

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def at_window(self) -> bool:
        return self in (TicketState.CALLED, TicketState.SERVING)


_TERMINAL = frozenset({TicketState.DONE, TicketState.NO_SHOW, TicketState.NOT_SERVED,
                       TicketState.CANCELLED})


class Priority(str, Enum):
    """Priority classes, best first: green channel (绿色通道), checked-in appointment (预约)."""

    GREEN = "green"
    APPOINTMENT = "appointment"
    ORDINARY = "ordinary"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Priority.GREEN: 0, Priority.APPOINTMENT: 1, Priority.ORDINARY: 2}


@dataclass(slots=True)
class Ticket:
    """A queue ticket (号). ``number`` (A012) is unique within its day; ``ordinal`` is the
    hall-wide issue order of that day and stands for the original issue time."""

    id: str
    day: date
    number: str
    seq: int
    ordinal: int
    service: str
    origin_service: str
    priority: Priority
    state: TicketState
    issued_at: datetime
    window: str | None = None          # window holding it (called/serving/held) or last one
    target_window: str | None = None   # waiting for one window only (transferred there)
    clerk: str | None = None
    called_at: datetime | None = None          # the latest call (a call back moves it)
    first_called_at: datetime | None = None    # the first call: waiting time ends here
    served_at: datetime | None = None
    finished_at: datetime | None = None
    recalls: int = 0
    id_token: str | None = None
    appointment: str | None = None
    phone_tail: str | None = None

    @property
    def order(self) -> tuple[int, int, str]:
        """Queue order: priority class, then original issue order."""
        return (self.priority.rank, self.ordinal, self.id)


@dataclass(slots=True)
class WindowState:
    """A window as it is now: who works it, whether paused, which ticket it holds."""

    id: str
    clerk: str | None = None
    attendance_id: str | None = None
    logged_in_at: datetime | None = None
    paused: bool = False
    current: str | None = None               # ticket id
    credits: dict[str, int] = field(default_factory=dict)  # weighted round robin, not kept


@dataclass(slots=True)
class Attendance:
    """A clerk's login session at a window (考勤)."""

    id: str
    staff: str
    window: str
    role: str            # "A" (本岗) or "B" (AB角 backup)
    login_at: datetime
    logout_at: datetime | None = None


@dataclass(slots=True)
class Appointment:
    """A booking (预约) that checks in at a kiosk with its code."""

    code: str
    service: str
    day: date
    ticket: str | None = None
    cancelled: bool = False

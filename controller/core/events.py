"""The event log (事件日志): every state change, as a stable contract for statistics, audit and
exports upward. ``docs/events.md`` documents it; ``SCHEMA_VERSION`` is stored on every row.

Each event has the hall (added by storage), the hall-local business day, the time, its kind,
the ticket (id, number, service), the window and clerk, who caused it (actor) and by which
door (origin), and a small typed payload, one ``TypedDict`` per kind below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict

from controller.core.commands import Origin

#: Version 2: day, actor, origin and typed payloads (version 1 rows were migrated).
SCHEMA_VERSION = 2


class EventKind(StrEnum):
    ISSUED = "issued"                        # 取号
    CANCELLED = "cancelled"                  # 取消
    APPOINTMENT_ADDED = "appointment_added"  # 预约登记
    LOGIN = "login"                          # 登录
    LOGOUT = "logout"                        # 退出
    PAUSED = "paused"                        # 暂停
    RESUMED = "resumed"                      # 恢复
    CALLED = "called"                        # 叫号 (next, a given number, or a held one)
    RECALLED = "recalled"                    # 重呼
    SERVING = "serving"                      # 开始办理
    DONE = "done"                            # 办结
    NO_SHOW = "no_show"                      # 过号
    HELD = "held"                            # 挂起
    TRANSFERRED = "transferred"              # 转移
    CLOSED = "closed"                        # 日切时未办理
    ROLLOVER = "rollover"                    # 日切
    EVALUATION_OPENED = "evaluation_opened"  # 邀请评价
    RATED = "rated"                          # 评价
    UNRATED = "unrated"                      # 未评价 (time-out)
    APPOINTMENT_CANCELLED = "appointment_cancelled"  # 取消预约
    CONFIG_CHANGED = "config_changed"        # 配置变更 (services, windows, … settings, calendar)
    MATTERS_CHANGED = "matters_changed"      # 事项清单变更
    CASE_OPENED = "case_opened"              # 受理 (a case; its ticket, if any, on the event)
    CASE_STEP = "case_step"                  # 办件流转 (hand off, review, 补正, decide, …)
    CASE_WARNING = "case_warning"            # 预警 (yellow, red)
    FOLLOWUP_OPENED = "followup_opened"      # 差评跟进 opened by a 差评
    FOLLOWUP_STEP = "followup_step"          # 回访, 整改, 反馈, 追评, 申诉 …
    FOLLOWUP_WARNING = "followup_warning"    # a follow-up past its working day


# ---------------------------------------------------------------------- payloads, one per kind
class Issued(TypedDict):
    priority: Literal["green", "appointment", "ordinary"]


class AppointmentAdded(TypedDict):
    day: str                    # ISO date of the booking


class LoggedIn(TypedDict):
    role: Literal["A", "B"]


class Called(TypedDict):
    how: Literal["next", "number", "held"]
    first: bool                 # this is the ticket's first call
    first_called_at: str        # ISO time of its first call: never moved by a call back


class Recalled(TypedDict):
    recalls: int


class NoShow(TypedDict):
    reason: Literal["recall_limit", "key"]


class Transferred(TypedDict):
    from_service: str
    to_service: str | None
    to_window: str | None


class Closed(TypedDict):
    reason: Literal["rollover"]


class RolledOver(TypedDict):
    from_day: str
    to_day: str
    closed: int


class EvaluationOpened(TypedDict):
    session: str


class Rated(TypedDict):
    session: str
    level: str
    reasons: list[str]


class Unrated(TypedDict):
    session: str


class AppointmentCancelled(TypedDict):
    code: str
    day: str


class ConfigChanged(TypedDict):
    section: Literal["all", "services", "windows", "clerks", "devices", "notices", "settings",
                     "calendar"]
    id: str | None              # the item's code or id; the day for the calendar
    action: Literal["seeded", "added", "changed", "removed", "reordered"]
    changes: dict[str, Any]     # the keys given and their new values (the whole item if added)
    before: dict[str, Any]      # those keys' values before (the whole item if removed)
    revision: int               # the configuration's revision after the change


class MattersChanged(TypedDict):
    added: int
    changed: int
    removed: int
    codes: list[str]             # the first 20 of them


class CaseOpened(TypedDict):
    case: str                    # its number
    matter: str
    form: str
    state: str                   # accepted, or supplement (materials missing)
    accepted_on: str
    due: str
    late_entry: bool             # 补录
    tolerated: bool              # 容缺受理
    missing: int
    from_hall: NotRequired[str]  # a case a lower hall forwarded (上报件)
    from_number: NotRequired[str]


class CaseStepped(TypedDict, total=False):
    case: str
    action: str
    before: str
    after: str
    due: str
    decision: str
    on_time: bool | None
    to: list[str | None]
    task: str
    department: str
    result: str
    open_tasks: int
    from_hall: str               # on the upper hall: the lower hall the case came from…
    from_number: str             # …and its number there
    reasons: str
    upper_number: str            # on the lower hall (``remote``): the case at the upper hall
    upper_state: str


class CaseWarning(TypedDict):
    case: str
    before: str
    colour: str                  # yellow, red
    due: str


class FollowupOpened(TypedDict):
    session: str                 # the 差评's rating session
    visit_due: str
    rectify_due: str


class FollowupStepped(TypedDict, total=False):
    session: str
    action: str
    before: str
    after: str
    level: str                   # with rerate: the follow-up rating (追评)


class FollowupWarning(TypedDict):
    session: str
    before: str
    colour: str


class Empty(TypedDict):
    pass


#: The payload each kind carries (``docs/events.md`` documents each; a test keeps them in step).
PAYLOADS: dict[EventKind, type] = {
    EventKind.ISSUED: Issued, EventKind.CANCELLED: Empty,
    EventKind.APPOINTMENT_ADDED: AppointmentAdded, EventKind.LOGIN: LoggedIn,
    EventKind.LOGOUT: Empty, EventKind.PAUSED: Empty, EventKind.RESUMED: Empty,
    EventKind.CALLED: Called, EventKind.RECALLED: Recalled, EventKind.SERVING: Empty,
    EventKind.DONE: Empty, EventKind.NO_SHOW: NoShow, EventKind.HELD: Empty,
    EventKind.TRANSFERRED: Transferred, EventKind.CLOSED: Closed,
    EventKind.ROLLOVER: RolledOver, EventKind.EVALUATION_OPENED: EvaluationOpened,
    EventKind.RATED: Rated, EventKind.UNRATED: Unrated,
    EventKind.APPOINTMENT_CANCELLED: AppointmentCancelled, EventKind.CONFIG_CHANGED: ConfigChanged,
    EventKind.MATTERS_CHANGED: MattersChanged, EventKind.CASE_OPENED: CaseOpened,
    EventKind.CASE_STEP: CaseStepped, EventKind.CASE_WARNING: CaseWarning,
    EventKind.FOLLOWUP_OPENED: FollowupOpened, EventKind.FOLLOWUP_STEP: FollowupStepped,
    EventKind.FOLLOWUP_WARNING: FollowupWarning,
}


@dataclass(slots=True)
class Event:
    """One state change, with when, where, who and by which door (not changed once made)."""

    kind: EventKind
    at: datetime
    day: date
    actor: str
    origin: Origin
    ticket: str | None = None
    number: str | None = None
    service: str | None = None
    window: str | None = None
    clerk: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

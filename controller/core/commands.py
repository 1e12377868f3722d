"""The hall's commands (指令), declared once: each is a small frozen type with its fields.

Every door (MQTT keys and events, the JSON API, the pages, the CLI) builds a command from what
it received with ``decode``, which checks every field against the same declaration: known
names only, the right type, well-formed Unicode, lengths and formats (a phone tail is four
digits, never a whole phone number; an ID token the hall's keyed hash, never an ID number; a
date a real date). A command that fails is refused with nothing changed, before it reaches the
engine, so one bad field can never hurt another device's command. A card reader's ID number
reaches the hall server sealed and becomes its token at the MQTT door
(``controller.bus.idcards``): commands carry the token only.

``WINDOW_KEYS`` is the one table of window operations: the keypad's keys on MQTT and the
``/api/windows/{window}/{key}`` routes are both read from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from controller.core.errors import Refused

#: The five 好差评 levels, best first (非常满意 … 非常不满意). Symbolic names, never numbers.
Level = Literal["very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"]
LEVELS: tuple[str, ...] = get_args(Level)
#: Why a citizen gave a bad rating (差评原因).
Reason = Literal["attitude", "efficiency", "process", "environment", "other"]
REASONS: tuple[str, ...] = get_args(Reason)
#: Each level's name (满意度) and its code (满意度代码, GB/T 39046 A.8: 5 best … 1 worst).
LEVEL_NAMES: dict[str, tuple[str, int]] = {
    "very_satisfied": ("非常满意", 5), "satisfied": ("满意", 4), "basic": ("基本满意", 3),
    "dissatisfied": ("不满意", 2), "very_dissatisfied": ("非常不满意", 1)}
#: Each 差评 reason's name, as evaluators and the records say it.
REASON_NAMES = {"attitude": "服务态度", "efficiency": "办事效率", "process": "办事流程",
                "environment": "服务环境", "other": "其他"}
assert tuple(LEVEL_NAMES) == LEVELS and tuple(REASON_NAMES) == REASONS


# ---------------------------------------------------------------------- who and by which door
class Origin(StrEnum):
    """The door a command came in by (来源)."""

    MQTT = "mqtt"             # a protocol v1 device
    HTTP = "http"             # the JSON API
    ADMIN = "admin"           # the administrator's pages
    SCHEDULER = "scheduler"   # the engine's own timers (rollover, time-outs)
    GATEWAY = "gateway"       # serial and GPIO devices through the gateway
    CLI = "cli"               # the command line
    TIER = "tier"             # a hall above or below (三级联动)
    LEGACY = "legacy"         # events written before the event log had origins


@dataclass(frozen=True, slots=True)
class Source:
    """Who sent a command and by which door: ``actor`` is ``device:{id}``, ``user:{name}``,
    ``staff:{id}`` or ``system``."""

    actor: str
    origin: Origin


SYSTEM = Source("system", Origin.SCHEDULER)


def device_source(device: str, origin: Origin = Origin.MQTT) -> Source:
    return Source(f"device:{device}", origin)


# ---------------------------------------------------------------------- field formats
def _blank_is_none(value: object) -> object:
    """Optional fields: an empty string from a device means "not given"."""
    return None if value == "" else value


def _text(pattern: str, max_length: int) -> StringConstraints:
    """A strict string of ``pattern`` (ASCII patterns also keep out lone surrogates and control
    characters, which would poison a whole commit)."""
    return StringConstraints(strict=True, pattern=pattern, max_length=max_length)


def _iso_date(value: object) -> object:
    """A real date, from ``YYYY-MM-DD`` or a ``date`` (never a number read as a timestamp)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a real date: {value!r}") from None


#: A resident ID number (居民身份证号): 17 digits and a check digit or X.
ID_NUMBER = re.compile(r"[0-9]{17}[0-9Xx]")


def _not_an_id_number(value: object) -> object:
    """An ID token is the hall's keyed hash: a raw ID number in its place is refused, and said
    so (the number itself is in no message)."""
    if isinstance(value, str) and ID_NUMBER.fullmatch(value.strip()):
        raise PydanticCustomError(
            "raw_id_number", "an ID number is never a token: a card reader seals it to the hall "
                             "server (id_sealed), which makes the token",
            {"zh": "身份证号不能作为令牌（id_token）发送"})
    return value


def _not_a_phone_number(value: object) -> object:
    """Only a phone number's last four digits are kept: a longer number is refused."""
    if isinstance(value, str) and len(value) > 4 and value.strip().lstrip("+").isdigit():
        raise PydanticCustomError("phone_number", "the last four digits of a phone number only, "
                                                  "never the whole number",
                                  {"zh": "只接受手机号的后四位"})
    return value


ServiceCode = Annotated[str, _text(r"^[A-Za-z0-9]{1,8}$", 8)]
WindowId = Annotated[str, _text(r"^[A-Za-z0-9-]{1,16}$", 16)]
StaffId = Annotated[str, _text(r"^[A-Za-z0-9]{1,16}$", 16)]
TicketNumber = Annotated[str, _text(r"^[A-Za-z0-9]{1,16}$", 16)]
AppointmentCode = Annotated[str, _text(r"^[A-Za-z0-9_-]{1,64}$", 64)]
#: the hall's keyed hash of an ID number (``id_token``)
IdToken = Annotated[str, _text(r"^[0-9a-f]{32}$", 32), BeforeValidator(_not_an_id_number)]
PhoneTail = Annotated[str, _text(r"^[0-9]{4}$", 4), BeforeValidator(_not_a_phone_number)]
SessionId = Annotated[str, _text(r"^[A-Za-z0-9@._-]{1,96}$", 96)]
Optional = BeforeValidator(_blank_is_none)
Day = Annotated[date, BeforeValidator(_iso_date)]


# ---------------------------------------------------------------------- the commands
class Command(BaseModel):
    """A command for the hall. ``name`` is its wire name; the fields are its arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: ClassVar[str]


class WindowCommand(Command):
    """A command for one window; the window comes from the route or the device's binding."""

    window: WindowId


class Take(Command):
    """取号: issue a ticket."""

    name = "take"
    service: ServiceCode
    priority: Annotated[Literal["ordinary", "green"] | None, Optional] = None
    appointment: Annotated[AppointmentCode | None, Optional] = None
    id_token: Annotated[IdToken | None, Optional] = None
    phone_tail: Annotated[PhoneTail | None, Optional] = None


class Cancel(Command):
    """取消: a citizen gives up a waiting or held ticket."""

    name = "cancel"
    number: TicketNumber


class AddAppointment(Command):
    """预约: register a booking so its code can check in at a kiosk on its day."""

    name = "add_appointment"
    code: AppointmentCode
    service: ServiceCode
    day: Day


class Login(WindowCommand):
    """登录: a clerk opens the window."""

    name = "login"
    staff: StaffId


class Logout(WindowCommand):
    name = "logout"


class Pause(WindowCommand):
    name = "pause"


class Resume(WindowCommand):
    name = "resume"


class CallNext(WindowCommand):
    """下一位: finish the current ticket, if any, and call the next one."""

    name = "call_next"


class CallNumber(WindowCommand):
    """特呼 / 挂起回呼: call a given waiting ticket or call back a held one."""

    name = "call_number"
    number: TicketNumber


class Recall(WindowCommand):
    name = "recall"


class NoShow(WindowCommand):
    name = "no_show"


class Start(WindowCommand):
    name = "start"


class Done(WindowCommand):
    name = "done"


class Hold(WindowCommand):
    name = "hold"


class Transfer(WindowCommand):
    """转移: hand the current ticket on to another service's line or to one window."""

    name = "transfer"
    to_service: Annotated[ServiceCode | None, Optional] = None
    to_window: Annotated[WindowId | None, Optional] = None


class Evaluate(WindowCommand):
    """评价: ask the citizen at the window to rate the service."""

    name = "evaluate"


class Rate(WindowCommand):
    """The citizen's one rating for an open session (一次一评)."""

    name = "rate"
    session: SessionId
    level: Level
    reasons: tuple[Reason, ...] = ()


class CancelAppointment(Command):
    """取消预约: a booking not yet checked in is withdrawn."""

    name = "cancel_appointment"
    code: AppointmentCode


# ---------------------------------------------------------------------- live configuration
#: The list sections of the live configuration (each item named by its code or id).
ItemSection = Literal["services", "windows", "clerks", "devices", "notices"]
ItemId = Annotated[str, _text(r"^[A-Za-z0-9-]{1,48}$", 48)]


class AddItem(Command):
    """新增配置: add a service, window, clerk, device or notice."""

    name = "config_add"
    section: ItemSection
    item: dict[str, Any]


class ChangeItem(Command):
    """修改配置: change some keys of an item; ``{"enabled": false}`` disables it (停用)."""

    name = "config_change"
    section: ItemSection
    id: ItemId
    changes: dict[str, Any]


class RemoveItem(Command):
    """删除配置: remove an item nothing depends on any more."""

    name = "config_remove"
    section: ItemSection
    id: ItemId


class ChangeSettings(Command):
    """修改大厅设置: the hall's own settings (``[hall]`` of the hall file)."""

    name = "settings_change"
    changes: dict[str, Any]


class SetDay(Command):
    """节假日设置: the hall's own entry for a day — closed, open, or as the country's calendar."""

    name = "calendar_set"
    day: Day
    kind: Literal["holiday", "workday", "default"]


class ImportConfig(Command):
    """导入配置: make the live configuration the given one (the live sections of a hall file),
    all at once or not at all."""

    name = "config_import"
    data: dict[str, Any]


# ---------------------------------------------------------------------- matters and cases
MatterCode = Annotated[str, _text(r"^[A-Za-z0-9._-]{1,40}$", 40)]
#: a case number: ``{region}-{hall}-{YYYYMMDD}-{serial}``
CaseNumber = Annotated[str, _text(r"^[0-9]{6}-[a-z0-9-]{1,32}-[0-9]{8}-[0-9]{4,6}$", 64)]
Text = Annotated[str, StringConstraints(max_length=500)]
Material = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Sealed = Annotated[str, StringConstraints(max_length=200)]
IdMasked = Annotated[str, _text(r"^[0-9]{6}\*{8}[0-9]{3}[0-9X]$", 18)]
Phone = Annotated[str, _text(r"^[0-9+ -]{5,20}$", 20)]
TaskRef = Annotated[str, StringConstraints(max_length=80)]


class SetMatters(Command):
    """事项清单: add or replace matters — one, or a whole imported file (all or nothing); with
    ``replace`` the catalogue becomes exactly these."""

    name = "matters_set"
    matters: list[dict[str, Any]]
    replace: bool = False


class RemoveMatter(Command):
    name = "matter_remove"
    code: MatterCode


class OpenCase(Command):
    """受理: open a case at the desk. ``id_sealed`` is the applicant's ID number as the door
    encrypted it with the hall's key and ``id_masked`` its masked form (the core never sees
    the number); ``accepted_on`` before today enters a case after the fact (补录)."""

    name = "case_open"
    matter: MatterCode
    applicant: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    ticket: Annotated[TicketNumber | None, Optional] = None
    id_sealed: Annotated[Sealed | None, Optional] = None
    id_masked: Annotated[IdMasked | None, Optional] = None
    phone: Annotated[Phone | None, Optional] = None
    materials: tuple[Material, ...] = ()
    missing: tuple[Material, ...] = ()
    tolerated: bool = False
    notes: Text = ""
    accepted_on: Annotated[Day | None, Optional] = None
    window: Annotated[WindowId | None, Optional] = None


CaseAction = Literal["hand_off", "review", "supplement", "supplemented", "decide", "complete_task",
                     "ready", "hand_over", "reject", "return", "escalate"]


class CaseStep(Command):
    """A step of a case (``controller.core.cases.TRANSITIONS``): hand off, review, ask for
    materials (补正), decide, mark ready, hand over, reject, return, send up."""

    name = "case_step"
    number: CaseNumber
    action: CaseAction
    decision: Annotated[Literal["approved", "refused"] | None, Optional] = None
    reasons: Text = ""
    note: Text = ""
    missing: tuple[Material, ...] = ()
    window: Annotated[WindowId | None, Optional] = None
    departments: tuple[Annotated[str, StringConstraints(min_length=1, max_length=60)], ...] = ()
    task: Annotated[TaskRef | None, Optional] = None


HallRef = Annotated[str, _text(r"^[a-z0-9][a-z0-9-]{0,31}$", 32)]


class HistoryItem(BaseModel):
    """One step of a forwarded case's history at the hall that sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    action: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    after: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    at: datetime


class ReceiveCase(Command):
    """上报件: a case a lower hall forwards here (its ``seq``-th message), with its materials
    and history; applied once, in order (``controller.core.tiers``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")   # fields a newer hall adds
    name = "case_receive"
    peer: HallRef
    seq: Annotated[int, Field(ge=1)]
    epoch: Annotated[str, StringConstraints(max_length=16)] = ""
    base: Annotated[int | None, Field(ge=0)] = None
    number: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    matter: MatterCode
    matter_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    department: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    limit_days: Annotated[int, Field(ge=0, le=400)]
    applicant: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    accepted_on: Day
    materials: tuple[Material, ...] = ()
    missing: tuple[Material, ...] = ()
    notes: Text = ""
    history: tuple[HistoryItem, ...] = Field(default=(), max_length=200)


class RemoteStep(Command):
    """A forwarded case's step at the upper hall (its ``seq``-th message down), mirrored on the
    case here: its number there, its state there, and its decision when made."""

    model_config = ConfigDict(frozen=True, extra="ignore")   # fields a newer hall adds
    name = "case_remote"
    peer: HallRef
    seq: Annotated[int, Field(ge=1)]
    epoch: Annotated[str, StringConstraints(max_length=16)] = ""
    base: Annotated[int | None, Field(ge=0)] = None
    number: CaseNumber
    upper_number: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    after: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    due: Day
    decision: Annotated[Literal["approved", "refused"] | None, Optional] = None
    reasons: Text = ""


class UpperRefused(Command):
    """The upper hall will never take a case sent up here (its message refused for good): the
    case comes back to 已受理, the refusal in its notes, for the clerk to handle."""

    name = "case_upper_refused"
    number: CaseNumber
    reason: Annotated[str, StringConstraints(max_length=100)] = ""


class CaseClock(Command):
    """The scheduler re-reads the cases' warning colours at the midnight one may change (one
    case with ``number``; without, every open case)."""

    name = "case_clock"
    number: Annotated[CaseNumber | None, Optional] = None


FollowupAction = Literal["visit", "rectify", "feed_back", "rerate", "close", "appeal", "uphold", "reject"]


class FollowupStep(Command):
    """A step of a 差评's follow-up (``controller.core.followups.TRANSITIONS``)."""

    name = "followup_step"
    session: SessionId
    action: FollowupAction
    note: Text = ""
    level: Annotated[Level | None, Optional] = None


class FollowupClock(Command):
    """The scheduler re-reads a follow-up's warning colour on the day it may change."""

    name = "followup_clock"
    session: SessionId


class ExpireEvaluation(Command):
    """A rating session nobody answered closes as unrated (未评价); the scheduler sends it."""

    name = "expire_evaluation"
    session: SessionId


class Rollover(Command):
    """日切: roll over to the hall's local day; the scheduler sends it at midnight."""

    name = "rollover"


COMMANDS: dict[str, type[Command]] = {c.name: c for c in (
    Take, Cancel, AddAppointment, CancelAppointment, Login, Logout, Pause, Resume, CallNext,
    CallNumber, Recall, NoShow, Start, Done, Hold, Transfer, Evaluate, Rate, ExpireEvaluation,
    Rollover, AddItem, ChangeItem, RemoveItem, ChangeSettings, SetDay, ImportConfig,
    SetMatters, RemoveMatter, OpenCase, CaseStep, CaseClock, FollowupStep, FollowupClock,
    ReceiveCase, RemoteStep, UpperRefused)}

#: Window operations by their key name: the keypad's ``key`` on MQTT and the last part of
#: ``POST /api/windows/{window}/{key}``.
WINDOW_KEYS: dict[str, type[WindowCommand]] = {
    "login": Login, "logout": Logout, "pause": Pause, "resume": Resume, "next": CallNext,
    "call": CallNumber, "recall": Recall, "no_show": NoShow, "start": Start, "done": Done,
    "hold": Hold, "transfer": Transfer, "evaluate": Evaluate,
}


# ---------------------------------------------------------------------- decoding at the doors
class BadArguments(Refused):
    """A command's fields do not match its declaration. ``missing`` tells a device protocol
    ``missing_field`` from ``bad_field``; ``plain``, when set, says what is wrong in zh-CN
    for the person at the device."""

    def __init__(self, detail: str, missing: bool, plain: str | None = None) -> None:
        super().__init__("bad_arguments", plain or "指令参数有误", detail)
        self.missing = missing
        self.plain = plain


def decode(kind: type[Command], data: object, **fixed: Any) -> Command:
    """Build a ``kind`` command from untrusted ``data`` (a JSON object) plus ``fixed`` fields
    the door knows itself (the window of a route or of a bound device)."""
    if not isinstance(data, Mapping):
        raise BadArguments("arguments must be an object", missing=False)
    try:
        return kind.model_validate({**data, **fixed})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        detail = f"{where[:40]}: {first['msg']}".encode("utf-8", "backslashreplace").decode("utf-8")
        raise BadArguments(detail, missing=first["type"] == "missing",
                           plain=(first.get("ctx") or {}).get("zh")) from None


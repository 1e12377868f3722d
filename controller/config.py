"""Hall configuration (大厅配置): TOML validated once into frozen typed objects.

Every error names the file and the key (``demo.toml: services[1].daily_cap: …``).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.core.commands import LEVELS
from controller.core.errors import ConfigError

HALL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
DeviceKind = Literal["kiosk", "caller", "evaluator", "window_display", "hall_display",
                     "announcer", "printer", "terminal"]
DEVICE_KINDS: tuple[DeviceKind, ...] = get_args(DeviceKind)
WINDOW_BOUND_KINDS = ("caller", "evaluator", "window_display")


def _parse_hhmm(text: str) -> int:
    """'08:30' -> minutes after midnight; '24:00' is allowed as an end."""
    m = re.fullmatch(r"(\d{2}):(\d{2})", text)
    if not m or int(m[1]) > 24 or int(m[2]) > 59 or (int(m[1]) == 24 and int(m[2]) != 0):
        raise ValueError(f"expected a time HH:MM, got {text!r}")
    return int(m[1]) * 60 + int(m[2])


class Span(BaseModel):
    """A time span within a day, as minutes after local midnight: [start, end)."""

    model_config = ConfigDict(frozen=True)
    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> "Span":
        parts = text.split("-")
        if len(parts) != 2:
            raise ValueError(f"expected a span 'HH:MM-HH:MM', got {text!r}")
        start, end = _parse_hhmm(parts[0].strip()), _parse_hhmm(parts[1].strip())
        if end <= start:
            raise ValueError(f"span {text!r} ends before it starts")
        return cls(start=start, end=end)

    def contains(self, minute: int) -> bool:
        return self.start <= minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


def _spans(value: object) -> tuple[Span, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list of 'HH:MM-HH:MM' spans")
    return tuple(v if isinstance(v, Span) else Span.parse(str(v)) for v in value)


Spans = Annotated[tuple[Span, ...], BeforeValidator(_spans)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Quota(_Model):
    """A time-segment quota (分时段限号): at most ``cap`` tickets issued within ``span``."""

    span: Span
    cap: int = Field(ge=0)

    @field_validator("span", mode="before")
    @classmethod
    def _span(cls, v: object) -> Span:
        return v if isinstance(v, Span) else Span.parse(str(v))


class Service(_Model):
    """A service (业务) citizens take numbers for."""

    code: str = Field(pattern=r"^[A-Za-z0-9]{1,8}$")
    prefix: str = Field(default="", pattern=r"^[A-Z]{0,2}$")
    name: str = Field(min_length=1)
    name_en: str = ""
    category: str = ""
    daily_cap: int = Field(default=999, ge=0, le=99999)
    avg_service_min: float = Field(default=10.0, gt=0)
    hours: Spans = ()
    quotas: tuple[Quota, ...] = ()

    @model_validator(mode="after")
    def _default_prefix(self) -> "Service":
        if not self.prefix:
            if not re.fullmatch(r"[A-Z]{1,2}", self.code):
                raise ValueError("prefix is required when code is not one or two capital letters")
            object.__setattr__(self, "prefix", self.code)
        return self


class Window(_Model):
    """A service window (窗口).

    ``policy`` decides which of its services' queues a "call next" draws from:
    ``order`` — the first listed service with someone waiting (主办 before 兼办);
    ``weighted`` — smooth weighted round robin over ``weights``;
    ``fifo`` — the earliest-issued ticket across all its services.
    With ``green_first`` green-channel tickets of any of its services come first.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9-]{1,16}$")
    name: str = ""
    services: tuple[str, ...] = Field(min_length=1)
    weights: tuple[int, ...] = ()
    policy: Literal["order", "weighted", "fifo"] = "order"
    green_first: bool = False

    @model_validator(mode="after")
    def _check(self) -> "Window":
        if len(set(self.services)) != len(self.services):
            raise ValueError("services are listed twice")
        if self.weights and len(self.weights) != len(self.services):
            raise ValueError("weights must have one entry per service")
        if any(w < 1 for w in self.weights):
            raise ValueError("weights must be ≥ 1")
        if self.policy == "weighted" and not self.weights:
            raise ValueError("policy 'weighted' needs weights")
        if not self.name:
            object.__setattr__(self, "name", f"{self.id}号窗口")
        return self


class Clerk(_Model):
    """A window clerk (窗口工作人员). ``windows``: A role (本岗); ``backup_windows``: B role (AB角)."""

    id: str = Field(pattern=r"^[A-Za-z0-9]{1,16}$")
    name: str = Field(min_length=1)
    windows: tuple[str, ...] = ()
    backup_windows: tuple[str, ...] = ()


class Device(_Model):
    """A protocol v1 device and, for window-bound kinds, the window it belongs to."""

    id: str = Field(pattern=DEVICE_ID.pattern)
    kind: DeviceKind
    window: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _bound(self) -> "Device":
        if self.kind in WINDOW_BOUND_KINDS and self.window is None:
            raise ValueError(f"a {self.kind} must name its window")
        return self


class Hall(_Model):
    """The hall itself: identity, time zone, opening calendar and queue settings."""

    id: str = Field(pattern=HALL_ID.pattern)
    name: str = Field(min_length=1)
    name_en: str = ""
    timezone: str = "Asia/Shanghai"
    hours: Spans = (Span(start=0, end=24 * 60),)
    days: tuple[Weekday, ...] = WEEKDAYS
    holidays: tuple[date, ...] = ()          # the hall's own closures, on top of the country's
    workdays: tuple[date, ...] = ()          # the hall's own extra working days
    national_calendar: bool = True           # statutory holidays and 调休 (chinesecalendar)
    max_recalls: int = Field(default=2, ge=0, le=20)
    recent_samples: int = Field(default=20, ge=1, le=1000)
    evaluation_timeout_s: int = Field(default=60, ge=5, le=600)
    status_url: str = ""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Storage(_Model):
    """Where the hall keeps its data; ``url`` overrides the SQLite file in the data folder."""

    url: str = ""
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    max_batch: int = Field(default=512, ge=1, le=100000)


class Server(_Model):
    http: str = "127.0.0.1:8480"


class Bus(_Model):
    """The MQTT bus. With no ``broker`` the server runs its own embedded broker on
    ``listen``; ``secret`` derives device passwords (else one is kept in the data folder)."""

    broker: str = ""
    listen: str = "127.0.0.1:1883"
    secret: str = ""


class Simulation(_Model):
    """The stream of simulated citizens in ``yimen demo`` and ``yimen simulate`` (模拟客流).

    ``speed`` compresses time: at 30, an 8-minute service takes 16 seconds. Mixes are relative
    weights; an empty ``service_mix`` takes every service equally often."""

    arrivals_per_min: float = Field(default=4.0, gt=0, le=6000)
    speed: float = Field(default=30.0, gt=0, le=100_000)
    service_mix: dict[str, float] = {}
    service_min: dict[str, float] = {}
    rating_mix: dict[str, float] = {"very_satisfied": 70, "satisfied": 20, "basic": 6,
                                    "dissatisfied": 3, "very_dissatisfied": 1}
    unrated_share: float = Field(default=0.1, ge=0, le=1)
    green_share: float = Field(default=0.05, ge=0, le=1)

    @field_validator("rating_mix")
    @classmethod
    def _levels(cls, v: dict[str, float]) -> dict[str, float]:
        for level, weight in v.items():
            if level not in LEVELS:
                raise ValueError(f"unknown rating level {level!r} (one of {', '.join(LEVELS)})")
            if weight < 0:
                raise ValueError(f"weight of {level!r} is negative")
        if not any(v.values()):
            raise ValueError("at least one rating level needs a weight")
        return v


class HallConfig(_Model):
    hall: Hall
    services: tuple[Service, ...] = Field(min_length=1)
    windows: tuple[Window, ...] = Field(min_length=1)
    clerks: tuple[Clerk, ...] = ()
    devices: tuple[Device, ...] = ()
    storage: Storage = Storage()
    server: Server = Server()
    bus: Bus = Bus()
    simulation: Simulation = Simulation()

    @model_validator(mode="after")
    def _references(self) -> "HallConfig":
        codes = _unique([s.code for s in self.services], "services", "code")
        _unique([s.prefix for s in self.services], "services", "prefix")
        wins = _unique([w.id for w in self.windows], "windows", "id")
        _unique([c.id for c in self.clerks], "clerks", "id")
        _unique([d.id for d in self.devices], "devices", "id")
        for i, w in enumerate(self.windows):
            for s in w.services:
                if s not in codes:
                    raise ValueError(f"windows[{i}].services: unknown service {s!r}")
        for i, c in enumerate(self.clerks):
            for field in ("windows", "backup_windows"):
                for w in getattr(c, field):
                    if w not in wins:
                        raise ValueError(f"clerks[{i}].{field}: unknown window {w!r}")
        for i, d in enumerate(self.devices):
            if d.window is not None and d.window not in wins:
                raise ValueError(f"devices[{i}].window: unknown window {d.window!r}")
        for key in ("service_mix", "service_min"):
            for code, value in getattr(self.simulation, key).items():
                if code not in codes:
                    raise ValueError(f"simulation.{key}: unknown service {code!r}")
                if value < 0:
                    raise ValueError(f"simulation.{key}: {code!r} is negative")
        return self

    def service(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)


def _unique(values: list[str], section: str, key: str) -> set[str]:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ValueError(f"{section}[{i}].{key}: {v!r} is used twice")
        seen.add(v)
    return seen


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("function-") and "[" not in str(part):
            out += ("." if out else "") + str(part)
    return out


def parse_config(data: dict, source: str = "<config>") -> HallConfig:
    try:
        return HallConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            where = _loc(err["loc"])
            lines.append(f"{source}: {where}: {msg}" if where else f"{source}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; ``ConfigError`` naming the file when it is missing or broken."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None


def load_config(path: str | Path) -> HallConfig:
    """Read and validate a hall's TOML file; raise ``ConfigError`` naming file and key."""
    return parse_config(read_toml(path), str(path))

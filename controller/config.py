"""Hall configuration (大厅配置): TOML validated once into frozen typed objects.

Every error names the file and the key, in zh-CN and English
(``demo.toml: services[1].daily_cap: 应不小于 0 / Input should be greater than or equal to 0``),
and every error of a file is reported at once, those across sections (a window's unknown
service, an id used twice) too.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
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


class Invalid(ValueError):
    """A value the hall's rules do not allow, said in English (``str()``, as pydantic shows
    it) and in zh-CN. ``problems`` lists several at once, each at its own key, for the checks
    across sections."""

    def __init__(self, en: str, zh: str, problems: tuple[tuple[str, str, str], ...] = ()) -> None:
        super().__init__(en)
        self.zh = zh
        self.problems = problems

    @classmethod
    def at(cls, key: str, en: str, zh: str) -> "Invalid":
        """A whole item's check that one of its fields fails (``weights``): said at that key."""
        return cls(en, zh, ((key, zh, en),))


def _parse_hhmm(text: str) -> int:
    """'08:30' -> minutes after midnight; '24:00' is allowed as an end."""
    m = re.fullmatch(r"(\d{2}):(\d{2})", text)
    if not m or int(m[1]) > 24 or int(m[2]) > 59 or (int(m[1]) == 24 and int(m[2]) != 0):
        raise Invalid(f"expected a time HH:MM, got {text!r}", f"时间应为 HH:MM，而不是 {text!r}")
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
            raise Invalid(f"expected a span 'HH:MM-HH:MM', got {text!r}",
                          f"时间段应为 'HH:MM-HH:MM'，而不是 {text!r}")
        start, end = _parse_hhmm(parts[0].strip()), _parse_hhmm(parts[1].strip())
        if end <= start:
            raise Invalid(f"span {text!r} ends before it starts", f"时间段 {text!r} 的结束早于开始")
        return cls(start=start, end=end)

    def contains(self, minute: int) -> bool:
        return self.start <= minute < self.end

    @model_serializer
    def _text(self) -> str:
        """Written back as it is read: ``"08:30-12:00"``."""
        return str(self)

    @classmethod
    def __get_pydantic_json_schema__(cls, core: Any, handler: Any) -> dict[str, Any]:
        """In JSON Schema too, the text it is read from and written as."""
        return {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$",
                "examples": ["08:30-12:00"]}

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


def _spans(value: object) -> tuple[Span, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise Invalid("expected a list of 'HH:MM-HH:MM' spans", "应为时间段列表，如 [\"08:30-12:00\"]")
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
    #: minutes of estimated wait after which the dashboard warns (0: the hall's setting)
    wait_alert_min: int = Field(default=0, ge=0, le=1440)
    enabled: bool = True

    @model_validator(mode="after")
    def _default_prefix(self) -> "Service":
        if not self.prefix:
            if not re.fullmatch(r"[A-Z]{1,2}", self.code):
                raise Invalid.at("prefix", "prefix is required when code is not one or two capital letters",
                                 "code 不是一两个大写字母时，需要写 prefix（号码前缀）")
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
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> "Window":
        if len(set(self.services)) != len(self.services):
            raise Invalid.at("services", "services are listed twice", "services 中有重复的业务")
        if self.weights and len(self.weights) != len(self.services):
            raise Invalid.at("weights", "weights must have one entry per service",
                             "weights 的个数应与 services 相同")
        if any(w < 1 for w in self.weights):
            raise Invalid.at("weights", "weights must be ≥ 1", "weights 应不小于 1")
        if self.policy == "weighted" and not self.weights:
            raise Invalid.at("weights", "policy 'weighted' needs weights",
                             "policy 为 'weighted' 时需要 weights")
        if not self.name:
            object.__setattr__(self, "name", f"{self.id}号窗口")
        return self


class Clerk(_Model):
    """A window clerk (窗口工作人员). ``windows``: A role (本岗); ``backup_windows``: B role (AB角)."""

    id: str = Field(pattern=r"^[A-Za-z0-9]{1,16}$")
    name: str = Field(min_length=1)
    windows: tuple[str, ...] = ()
    backup_windows: tuple[str, ...] = ()
    enabled: bool = True


class Device(_Model):
    """A protocol v1 device and, for window-bound kinds, the window it belongs to."""

    id: str = Field(pattern=DEVICE_ID.pattern)
    kind: DeviceKind
    window: str | None = None
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        """Device passwords live hashed in the database, never in the hall file (a stored
        configuration from before still says ``password = null``: it is dropped)."""
        if isinstance(data, Mapping) and "password" in data:
            if data["password"] not in (None, ""):
                raise Invalid("device passwords are not kept in the hall file: make one with "
                              "`yimen device credentials ID`",
                              "设备密码不写在配置文件中，请用 `yimen device credentials 设备编号` 生成")
            data = {k: v for k, v in data.items() if k != "password"}
        return data

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v == "controller":                # the hall server's own MQTT user
            raise Invalid("'controller' is the hall server's own MQTT user, not a device id",
                          "controller 是大厅服务器自己的 MQTT 用户名，不能作设备编号")
        return v

    @model_validator(mode="after")
    def _bound(self) -> "Device":
        if self.kind in WINDOW_BOUND_KINDS and self.window is None:
            raise Invalid.at("window", f"a {self.kind} must name its window",
                             f"{self.kind} 需要写明所属窗口（window）")
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
    #: minutes of estimated wait after which the dashboard suggests opening another window
    wait_alert_min: int = Field(default=30, ge=0, le=1440)
    #: clerks log in at hardware keypads with their staff id and their PIN (set on their account)
    keypad_pin: bool = False
    #: the region code (行政区划代码) that begins the hall's case numbers
    region: str = Field(default="000000", pattern=r"^[0-9]{6}$")
    #: working days before a case's due day from which it is shown yellow (预警)
    case_warn_days: int = Field(default=2, ge=0, le=30)
    #: working days from a 差评 within which it is rectified (整改时限, 10–15)
    rectify_days: int = Field(default=10, ge=10, le=15)
    #: the provincial 好差评 platform's endpoint for evaluation records (上报), "" for none
    evaluations_url: str = Field(default="", max_length=300, pattern=r"^(https?://[^\s]+)?$")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"unknown time zone {v!r}", f"未知的时区 {v!r}") from None
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Notice(_Model):
    """A hall notice (公告) shown on the hall screen and the kiosks."""

    id: str = Field(pattern=r"^[A-Za-z0-9-]{1,32}$")
    text: str = Field(min_length=1, max_length=200)
    text_en: str = Field(default="", max_length=400)
    enabled: bool = True


class Storage(_Model):
    """Where the hall keeps its data; ``url`` overrides the SQLite file in the data folder."""

    url: str = ""
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    max_batch: int = Field(default=512, ge=1, le=100000)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8480`` for IPv6) as host and port."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _listen(text: str) -> str:
    try:
        parse_listen(text)
    except ValueError:
        raise Invalid(f"expected HOST:PORT, got {text!r}", f"应为 主机:端口，而不是 {text!r}") from None
    return text


def _broker(text: str) -> str:
    from protocol.link import BrokerAddress

    if text:
        try:
            BrokerAddress.parse(text)
        except ValueError:
            raise Invalid(f"expected mqtt://HOST:PORT, got {text!r}",
                          f"应为 mqtt://主机:端口，而不是 {text!r}") from None
    return text


Listen = Annotated[str, AfterValidator(_listen)]
BrokerUrl = Annotated[str, AfterValidator(_broker)]


class Server(_Model):
    """The HTTP side: where it listens, and how many connections it holds at once from one
    address and in all (``controller/web/limits.py``; behind a reverse proxy every
    connection comes from the proxy's address)."""

    http: Listen = "127.0.0.1:8480"
    max_connections_per_client: int = Field(default=256, ge=1, le=1_000_000)
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)


class Bus(_Model):
    """The MQTT bus. With no ``broker`` the server runs its own Mosquitto, listening on
    ``listen`` only (this machine alone by default: ``0.0.0.0:1883`` for every interface) and,
    with ``tls_listen``, also with TLS there, with ``tls_cert`` and ``tls_key`` (PEM files).
    ``enabled = false``: no device bus and no broker at all — a village room (村便民服务室)
    with one clerk and no queue hardware, whose cases go up over its upper hall's broker."""

    enabled: bool = True
    broker: BrokerUrl = ""
    listen: BrokerUrl = "127.0.0.1:1883"
    tls_listen: BrokerUrl = ""
    tls_cert: str = ""
    tls_key: str = ""

    @model_validator(mode="before")
    @classmethod
    def _no_secret(cls, data: Any) -> Any:
        """The hall-wide bus secret is gone: each device has its own credential."""
        if isinstance(data, Mapping) and "secret" in data:
            if data["secret"]:
                raise Invalid("secret: there is no hall-wide bus secret any more; each device "
                              "gets its own password from `yimen device credentials ID`",
                              "secret：不再使用全厅共享的总线密钥，每台设备用 "
                              "`yimen device credentials 设备编号` 生成自己的密码")
            data = {k: v for k, v in data.items() if k != "secret"}
        return data

    @model_validator(mode="after")
    def _tls(self) -> "Bus":
        if self.tls_listen and not (self.tls_cert and self.tls_key):
            raise Invalid("tls_listen needs tls_cert and tls_key", "tls_listen 需要 tls_cert 和 tls_key")
        return self


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
                raise Invalid(f"unknown rating level {level!r} (one of {', '.join(LEVELS)})",
                              f"未知的评价等级 {level!r}（应为 {', '.join(LEVELS)} 之一）")
            if weight < 0:
                raise Invalid(f"weight of {level!r} is negative", f"{level!r} 的权重为负数")
        if not any(v.values()):
            raise Invalid("at least one rating level needs a weight", "至少一个评价等级需要权重")
        return v


class LowerHall(_Model):
    """A hall below this one (乡镇便民服务中心, 村便民服务室) that may forward cases here."""

    id: str = Field(pattern=HALL_ID.pattern)
    name: str = Field(min_length=1, max_length=60)


class Tier(_Model):
    """Where the hall stands in the county's network (三级: 县、乡镇、村): its level, the hall
    above it (its id and its broker, which this server joins as the MQTT user ``hall-{id}``
    with the password in the data folder's ``upper-password``) and the halls below it.
    ``upper_broker`` as ``mqtts://host:8883`` goes over TLS, the broker's certificate checked
    against ``upper_ca`` (a PEM file; the system's CAs when empty) and its host name."""

    level: Literal["county", "town", "village"] = "county"
    upper: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9-]{0,31})?$")
    upper_broker: BrokerUrl = ""
    upper_ca: str = ""
    lower: tuple[LowerHall, ...] = ()

    @model_validator(mode="after")
    def _upper(self) -> "Tier":
        if bool(self.upper) != bool(self.upper_broker):
            raise Invalid.at("upper", "upper and upper_broker go together",
                             "upper 与 upper_broker 须同时填写")
        if len({h.id for h in self.lower}) != len(self.lower):
            raise Invalid.at("lower", "a lower hall is listed twice", "下级大厅重复")
        if self.upper_ca and not self.upper_broker.startswith(("mqtts://", "ssl://")):
            raise Invalid.at("upper_ca", "upper_ca is for an upper_broker with TLS (mqtts://…)",
                             "upper_ca 仅用于 TLS 连接的 upper_broker（mqtts://…）")
        return self


class HallConfig(_Model):
    hall: Hall
    services: tuple[Service, ...] = Field(min_length=1)
    windows: tuple[Window, ...] = Field(min_length=1)
    clerks: tuple[Clerk, ...] = ()
    devices: tuple[Device, ...] = ()
    notices: tuple[Notice, ...] = ()
    storage: Storage = Storage()
    server: Server = Server()
    bus: Bus = Bus()
    simulation: Simulation = Simulation()
    tier: Tier = Tier()

    @model_validator(mode="after")
    def _references(self) -> "HallConfig":
        problems = reference_problems(self.model_dump())
        if problems:
            where, zh, en = problems[0]
            raise Invalid(f"{where}: {en}", f"{where}: {zh}", tuple(problems))
        return self

    def service(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)

    @cached_property
    def window_by_id(self) -> dict[str, Window]:
        """Window id → the window, in the file's order."""
        return {w.id: w for w in self.windows}

    @cached_property
    def windows_for(self) -> dict[str, tuple[str, ...]]:
        """Service code → the windows that serve it, in the file's order."""
        return {s.code: tuple(w.id for w in self.windows if s.code in w.services)
                for s in self.services}


def reference_problems(data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every problem across sections — an id used twice, a window's unknown service, a
    clerk's or device's unknown window, an unknown service in the simulation's mixes — as
    ``(key, zh-CN, English)``. ``data`` is a validated hall or the raw file: entries of the
    wrong shape are skipped here (field validation reports them)."""
    def entries(section: str) -> list[tuple[int, Mapping[str, Any]]]:
        items = data.get(section)
        if not isinstance(items, (list, tuple)):
            return []
        return [(i, e) for i, e in enumerate(items) if isinstance(e, Mapping)]

    def names(value: object) -> list[str]:
        return [v for v in value if isinstance(v, str)] if isinstance(value, (list, tuple)) else []

    problems: list[tuple[str, str, str]] = []

    def unique(section: str, key: str, default: str = "") -> set[str]:
        seen: set[str] = set()
        for i, e in entries(section):
            v = e.get(key) or e.get(default)
            if not isinstance(v, str):
                continue
            if v in seen:
                problems.append((f"{section}[{i}].{key}", f"{v!r} 重复使用", f"{v!r} is used twice"))
            seen.add(v)
        return seen

    codes = unique("services", "code")
    unique("services", "prefix", default="code")
    wins = unique("windows", "id")
    unique("clerks", "id")
    unique("devices", "id")
    unique("notices", "id")
    for i, w in entries("windows"):
        for s in names(w.get("services")):
            if s not in codes:
                problems.append((f"windows[{i}].services", f"未知的业务 {s!r}", f"unknown service {s!r}"))
    for i, c in entries("clerks"):
        for field in ("windows", "backup_windows"):
            for win in names(c.get(field)):
                if win not in wins:
                    problems.append((f"clerks[{i}].{field}", f"未知的窗口 {win!r}",
                                     f"unknown window {win!r}"))
    for i, d in entries("devices"):
        window = d.get("window")
        if isinstance(window, str) and window not in wins:
            problems.append((f"devices[{i}].window", f"未知的窗口 {window!r}", f"unknown window {window!r}"))
    simulation = data.get("simulation")
    for key in ("service_mix", "service_min"):
        mix = simulation.get(key) if isinstance(simulation, Mapping) else None
        for code, value in (mix.items() if isinstance(mix, Mapping) else ()):
            if code not in codes:
                problems.append((f"simulation.{key}", f"未知的业务 {code!r}", f"unknown service {code!r}"))
            elif isinstance(value, (int, float)) and value < 0:
                problems.append((f"simulation.{key}", f"{code!r} 为负数", f"{code!r} is negative"))
    bus, tier = data.get("bus"), data.get("tier")
    if isinstance(bus, Mapping) and bus.get("enabled") is False:
        if entries("devices"):
            problems.append(("bus.enabled", "设备总线已关闭，设备无法连接：请删除设备或开启总线",
                             "the device bus is off, so devices cannot connect: remove them or turn it on"))
        if isinstance(tier, Mapping) and tier.get("lower"):
            problems.append(("bus.enabled", "下级大厅要登录本厅的 MQTT 代理：有下级大厅时不能关闭总线",
                             "halls below log in to this hall's broker: the bus stays on"))
    return problems


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("function-") and "[" not in str(part):
            out += ("." if out else "") + str(part)
    return out


#: pydantic's own errors in zh-CN, by their type; ``{…}`` are filled from the error's context.
_ZH = {
    "missing": "缺少此项",
    "extra_forbidden": "不认识的键（写错了？）",
    "string_type": "应为文本", "int_type": "应为整数", "int_parsing": "应为整数",
    "int_from_float": "应为整数", "float_type": "应为数字", "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false", "bool_parsing": "应为 true 或 false",
    "greater_than_equal": "应不小于 {ge}", "greater_than": "应大于 {gt}",
    "less_than_equal": "应不大于 {le}", "less_than": "应小于 {lt}",
    "string_pattern_mismatch": "格式不对（应符合 {pattern}）",
    "string_too_short": "至少 {min_length} 个字符", "string_too_long": "最多 {max_length} 个字符",
    "too_short": "至少要有 {min_length} 项", "too_long": "最多 {max_length} 项",
    "literal_error": "应为以下之一：{expected}",
    "date_type": "应为日期，如 2026-10-01", "date_parsing": "应为日期，如 2026-10-01",
    "date_from_datetime_parsing": "应为日期，如 2026-10-01",
    "date_from_datetime_inexact": "应为日期，不带时间",
    "dict_type": "应为表（TOML 的 [表] 或 {…}）", "model_type": "应为表（TOML 的 [表] 或 {…}）",
    "list_type": "应为列表 […]", "tuple_type": "应为列表 […]",
}


def zh_error(err: Any) -> str:
    """A pydantic error's message in zh-CN (for forms and the hall file alike)."""
    if err["type"] == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
        return "不能为空"
    try:
        return _ZH[err["type"]].format(**err.get("ctx", {}))
    except (KeyError, IndexError):
        return "取值无效"


def _at(*parts: str) -> str:
    return ".".join(p for p in parts if p).replace(".[", "[")


def parse_config(data: dict, source: str = "<config>") -> HallConfig:
    """Validate a hall; on errors ``ConfigError`` with every one of them, a line each:
    ``source: key: zh-CN / English``."""
    try:
        return HallConfig.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str, str]] = []
        across = False
        errors = exc.errors()
        for err in errors:
            if err["type"] == "too_short" and any(                # "0 items" of a list whose
                    e["loc"][:len(err["loc"])] == err["loc"] and e is not err for e in errors):
                continue                                          # items have errors: those
            cause = err.get("ctx", {}).get("error")
            where = _loc(err["loc"])
            if isinstance(cause, Invalid) and cause.problems:
                across = across or not where      # the hall's own check across sections
                problems += [(_at(where, key), zh, en) for key, zh, en in cause.problems]
            elif isinstance(cause, Invalid):
                problems.append((where, cause.zh, str(cause)))
            else:
                problems.append((where, zh_error(err), err["msg"].removeprefix("Value error, ")))
        if not across and isinstance(data, Mapping):   # the sections had errors of their own
            problems += [p for p in reference_problems(data) if p not in problems]
        raise ConfigError("\n".join(f"{source}: {where}: {zh} / {en}" if where
                                    else f"{source}: {zh} / {en}" for where, zh, en in problems),
                          tuple(problems)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict; ``ConfigError`` naming the file when it is missing or broken."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: 文件不存在 / no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: 不是有效的 TOML / not valid TOML: {exc}") from None


def load_config(path: str | Path) -> HallConfig:
    """Read and validate a hall's TOML file; raise ``ConfigError`` naming file and key."""
    return parse_config(read_toml(path), str(path))

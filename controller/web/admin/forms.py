"""The configuration forms, built from the hall file's own models (``controller.config``): a
field for each of the model's fields, of the input its type needs, with its Chinese and
English label. The form is sent as JSON to the configuration API (``/api/config/…``), which
validates it with the same models; the API's answer names each wrong field, which the page
shows beside it (``admin.js``). Nothing about what a value may be is written twice.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from controller.config import DEVICE_KINDS, WEEKDAYS, Quota, Span
from controller.core.hall import HallState

#: field → (zh-CN, English, hint in zh-CN, hint in English); a field not named here shows its key.
LABELS: dict[str, tuple[str, str, str, str]] = {
    "code": ("编号", "Code", "1–8 位字母或数字", "1–8 letters or digits"),
    "prefix": ("号码前缀", "Number prefix",
               "一两个大写字母；留空时同编号", "one or two capitals; empty: as the code"),
    "name": ("名称", "Name", "", ""),
    "name_en": ("英文名称", "English name", "", ""),
    "category": ("类别", "Category", "取号机按类别分组", "kiosks group services by it"),
    "daily_cap": ("每日限号", "Daily cap", "", ""),
    "avg_service_min": ("平均办理时长（分钟）", "Mean service time (min)",
                        "尚无实测时用于估算等候", "for wait estimates until measured"),
    "hours": ("取号时段", "Hours",
              "如 08:30-12:00, 13:30-17:00；留空为全天", "e.g. 08:30-12:00, 13:30-17:00; empty: all day"),
    "quotas": ("分时段限号", "Quotas", "如 08:30-10:00=50", "e.g. 08:30-10:00=50"),
    "wait_alert_min": ("等候预警（分钟）", "Wait alert (min)", "0 表示用大厅设置", "0: the hall's setting"),
    "enabled": ("启用", "Enabled", "", ""),
    "id": ("编号", "Id", "", ""),
    "services": ("业务", "Services", "主办在前，兼办在后", "own services first"),
    "weights": ("权重", "Weights", "与业务一一对应，如 3,1", "one per service, e.g. 3,1"),
    "policy": ("叫号策略", "Policy", "", ""),
    "green_first": ("绿色通道优先", "Green channel first", "", ""),
    "windows": ("本岗窗口（A角）", "Own windows (A)", "", ""),
    "backup_windows": ("备岗窗口（B角）", "Backup windows (B)", "", ""),
    "kind": ("类型", "Kind", "", ""),
    "window": ("所属窗口", "Window",
               "呼叫器、评价器、窗口屏须绑定窗口", "keypads, evaluators and window screens need one"),
    "text": ("公告内容", "Text", "最多 200 字", "at most 200 characters"),
    "text_en": ("英文内容", "English text", "", ""),
    "days": ("开放日", "Open days", "", ""),
    "max_recalls": ("最多重呼次数", "Most recalls", "", ""),
    "recent_samples": ("估算样本数", "Samples for estimates", "", ""),
    "evaluation_timeout_s": ("评价等待（秒）", "Rating time-out (s)",
                             "超时记为未评价", "then recorded as not rated"),
    "status_url": ("状态页地址", "Status page address",
                   "票面二维码指向的外部地址，可留空", "where tickets' QR codes lead; may be empty"),
    "region": ("行政区划代码", "Region code",
               "6 位数字，办件编号以它开头", "6 digits; case numbers begin with it"),
    "case_warn_days": ("办件预警（工作日）", "Case warning (working days)",
                       "到期前几个工作日起标黄", "working days before the due day a case turns yellow"),
    "rectify_days": ("差评整改时限（工作日）", "Rectification (working days)",
                     "10 至 15 个工作日", "10 to 15 working days"),
    "evaluations_url": ("省好差评平台地址", "Provincial rating platform",
                        "评价记录上报的接收地址，可留空；令牌放在数据目录的 province-token",
                        "where evaluation records are sent; may be empty; the token goes in province-token"),
    "keypad_pin": ("呼叫器登录需 PIN", "Keypad PIN",
                   "窗口人员在硬件呼叫器上登录时输入 PIN", "clerks enter a PIN when logging in at a keypad"),
}
#: The choices of a ``Literal`` field: (zh-CN, English).
CHOICE_NAMES: dict[str, tuple[str, str]] = {
    "order": ("按顺序（主办优先）", "in order (own first)"), "weighted": ("按权重轮询", "weighted"),
    "fifo": ("先到先叫", "first come"), "kiosk": ("取号机", "kiosk"), "caller": ("呼叫器", "keypad"),
    "evaluator": ("评价器", "evaluator"), "window_display": ("窗口屏", "window screen"),
    "hall_display": ("综合屏", "hall screen"), "announcer": ("语音播报", "announcer"),
    "printer": ("打印机", "printer"), "terminal": ("自助终端", "self-service terminal"),
    "mon": ("周一", "Mon"), "tue": ("周二", "Tue"), "wed": ("周三", "Wed"), "thu": ("周四", "Thu"),
    "fri": ("周五", "Fri"), "sat": ("周六", "Sat"), "sun": ("周日", "Sun"),
    "licensing": ("行政许可", "licensing"), "approval": ("非行政许可审批", "other approval"),
    "public_service": ("公共服务", "public service"), "other": ("其他", "other"),
    "instant": ("即办件", "instant"), "promised": ("承诺件", "promised"), "joint": ("联办件", "joint"),
    "upper": ("上报件", "sent up"),
}
#: The matter catalogue's fields (事项), where the same key means something else elsewhere.
MATTER_LABELS: dict[str, tuple[str, str, str, str]] = {
    "code": ("事项编码", "Code", "字母、数字、点、横线，最多 40 位", "letters, digits, . - _; up to 40"),
    "name": ("事项名称", "Name", "", ""),
    "category": ("事项类别", "Category", "", ""),
    "department": ("实施部门", "Department", "", ""),
    "form": ("办理形式", "Handling form", "即办件承诺时限为 0", "an instant matter's promised limit is 0"),
    "statutory_days": ("法定时限（工作日）", "Statutory limit (working days)", "0 表示未规定", "0: none set"),
    "promised_days": ("承诺时限（工作日）", "Promised limit (working days)", "不超过法定时限",
                      "at most the statutory limit"),
    "fees": ("收费标准", "Fees", "", ""),
    "materials": ("申请材料", "Materials", "每行一项，用于一次性告知", "one a line, for the one-time notice"),
    "service": ("对应业务", "Queue service", "留空表示任意业务", "empty: any service"),
    "windows": ("办理窗口", "Windows", "总台分送到这些窗口", "the desk hands its cases there"),
    "partners": ("协办部门", "Partner departments", "联办件必填，每行一个", "for a joint matter; one a line"),
    "enabled": ("启用", "Enabled", "停用后总台查不到", "disabled: not found at the desk"),
}
#: Fields another page edits (the calendar) or that cannot change while the hall runs.
NOT_ON_FORMS = {"holidays", "workdays", "national_calendar", "timezone"}
#: A list field whose values are the items of another section (or fixed choices).
REFERENCES = {"services": "services", "windows": "windows", "backup_windows": "windows",
              "service": "services"}


@dataclass(slots=True)
class FormField:
    """One input: ``kind`` is text, int, float, bool, select, refs (several of a list),
    spans, quotas, ints (comma-separated numbers) or lines (free texts, one a line)."""

    name: str
    label: tuple[str, str, str, str]
    kind: str
    required: bool = False
    #: (value, zh-CN, English)
    choices: list[tuple[str, str, str]] = field(default_factory=list)
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    value: Any = None
    readonly: bool = False
    #: what an empty select sends: None (null), or "" for a text field left empty
    blank: Any = None

    def shown(self) -> str:
        """The value as the input holds it."""
        v = self.value
        if v is None:
            return ""
        if self.kind == "spans":
            return ", ".join(str(s) for s in v)
        if self.kind == "quotas":
            return ", ".join(f"{q['span'] if isinstance(q, dict) else q.span}="
                             f"{q['cap'] if isinstance(q, dict) else q.cap}" for q in v)
        if self.kind == "ints":
            return ",".join(str(i) for i in v)
        if self.kind == "refs":
            return "、".join(str(i) for i in v)
        if self.kind == "lines":
            return "\n".join(str(i) for i in v)
        return str(v)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type without ``None``, and whether ``None`` is allowed."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(get_args(annotation))
    return annotation, False


def _kind(name: str, annotation: Any) -> tuple[str, list[str]]:
    base, _ = _unwrap(annotation)
    if get_origin(base) is typing.Annotated:
        base = get_args(base)[0]
    origin, args = get_origin(base), get_args(base)
    if base is bool:
        return "bool", []
    if base is int:
        return "int", []
    if base is float:
        return "float", []
    if origin is Literal:
        return "select", list(args)
    if origin is tuple and args:
        inner = args[0]
        if inner is Span:
            return "spans", []
        if inner is Quota:
            return "quotas", []
        if inner is int:
            return "ints", []
        if get_origin(inner) is Literal:
            return "refs", list(get_args(inner))
        if inner is str and name not in REFERENCES:
            return "lines", []
        return "refs", []
    return "text", []


def _bounds(info: FieldInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in info.metadata:
        for attr, key in (("ge", "minimum"), ("gt", "minimum"), ("le", "maximum"), ("lt", "maximum")):
            if getattr(m, attr, None) is not None:
                out[key] = getattr(m, attr)
        if getattr(m, "pattern", None):
            out["pattern"] = m.pattern
    return out


def _choices(name: str, fixed: list[str], hall: HallState) -> list[tuple[str, str, str]]:
    if fixed:
        return [(c, *CHOICE_NAMES.get(c, (c, c))) for c in fixed]
    if REFERENCES.get(name) == "services":
        return [(s.code, f"{s.code} {s.name}", f"{s.code} {s.name_en or s.name}")
                for s in hall.config.services]
    if REFERENCES.get(name) == "windows" or name == "window":
        return [(w.id, w.name, w.name) for w in hall.config.windows]
    return []


def fields(model: type[BaseModel], hall: HallState, item: dict[str, Any] | None = None,
           fixed: tuple[str, ...] = (), labels: dict[str, tuple[str, str, str, str]] | None = None,
           ) -> list[FormField]:
    """The form of ``model`` (a new item, or ``item`` to change); ``fixed`` fields are shown
    but not changed (an item's id); ``labels`` over the usual ones (``LABELS``)."""
    labels = {**LABELS, **(labels or {})}
    out = []
    for name, info in model.model_fields.items():
        if name in NOT_ON_FORMS:
            continue
        kind, fixed_choices = _kind(name, info.annotation)
        if name in ("window", "service"):
            kind = "select"
        if name == "kind":
            fixed_choices = list(DEVICE_KINDS)
        if name == "days":
            fixed_choices = list(WEEKDAYS)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append(FormField(
            name=name, label=labels.get(name, (name, name, "", "")), kind=kind, required=info.is_required(),
            choices=_choices(name, fixed_choices, hall), value=(item or {}).get(name, default),
            readonly=name in fixed and item is not None,
            blank="" if kind == "select" and default == "" else None, **_bounds(info)))
    return out

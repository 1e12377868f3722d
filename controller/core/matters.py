"""The matter catalogue (事项清单): what the hall accepts cases for.

Each matter (事项) has its code, name, category, department, handling form (即办 / 承诺 / 联办 /
上报), statutory and promised limits in working days, fees, the materials the citizen brings
(for 一次性告知), the queue service that leads to it and the windows that handle it. The
catalogue is changed by commands through the engine like the configuration (``SetMatters``:
one matter or a whole imported file, all or nothing; ``RemoveMatter``); a file's bad rows are
each named by row and column. Matters are found as one types: by code, name or the name's
pinyin initials (营业执照 → yyzz).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pypinyin import Style, lazy_pinyin

from controller.config import Invalid, zh_error
from controller.core.commands import Command, RemoveMatter, SetMatters
from controller.core.errors import Problem, Refused
from controller.core.events import EventKind

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from controller.core.hall import HallState

Category = Literal["licensing", "approval", "public_service", "other"]
#: 事项类别, as the catalogue's column says them
CATEGORIES: dict[str, str] = {"licensing": "行政许可", "approval": "非行政许可审批",
                              "public_service": "公共服务", "other": "其他"}
Form = Literal["instant", "promised", "joint", "upper"]
#: 办理形式: 即办件, 承诺件, 联办件, 上报件
FORMS: dict[str, str] = {"instant": "即办件", "promised": "承诺件", "joint": "联办件", "upper": "上报件"}
assert set(CATEGORIES) == set(get_args(Category)) and set(FORMS) == set(get_args(Form))
#: At most this many matters in one hall's catalogue (a district has about 900).
MAX_MATTERS = 5000


class Matter(BaseModel):
    """One matter of the catalogue (事项)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    category: Category = "licensing"
    department: str = Field(min_length=1, max_length=60)
    form: Form = "promised"
    statutory_days: int = Field(default=20, ge=0, le=365)
    promised_days: int = Field(default=10, ge=0, le=365)
    fees: str = Field(default="不收费", max_length=200)
    materials: tuple[str, ...] = Field(default=(), max_length=60)
    #: the queue service whose tickets lead to it ("" for any)
    service: str = Field(default="", pattern=r"^[A-Za-z0-9]{0,8}$")
    #: the windows that handle it (the desk hands its cases there)
    windows: tuple[str, ...] = Field(default=(), max_length=30)
    #: for 联办: the other departments that each handle a part (a sub-task each)
    partners: tuple[str, ...] = Field(default=(), max_length=10)
    enabled: bool = True

    @model_validator(mode="after")
    def _limits(self) -> "Matter":
        if self.form == "instant" and self.promised_days:
            raise Invalid.at("promised_days", "an instant matter (即办件) is decided on the spot: 0 days",
                             "即办件当场办结，承诺时限应为 0")
        if self.form != "instant" and not self.promised_days:
            raise Invalid.at("promised_days", "a promised limit of at least 1 working day is needed",
                             "承诺时限至少 1 个工作日")
        if self.statutory_days and self.promised_days > self.statutory_days:
            raise Invalid.at("promised_days", "the promised limit may not exceed the statutory one",
                             "承诺时限不能超过法定时限")
        if self.form == "joint" and not self.partners:
            raise Invalid.at("partners", "a joint matter (联办件) names its partner departments",
                             "联办件需要写明协办部门")
        texts = (self.name, self.department, self.fees, *self.materials, *self.windows, *self.partners)
        if not all(t.isprintable() for t in texts):
            raise Invalid("control characters are not allowed in a matter", "事项内容中不能有控制字符")
        if any(not m.strip() or len(m) > 100 for m in self.materials):
            raise Invalid.at("materials", "each material is 1-100 characters", "每项材料 1-100 个字")
        return self

    def view(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "category_name": CATEGORIES[self.category],
                "form_name": FORMS[self.form]}


@dataclass(slots=True)
class StoredMatter:
    """A matter as its table keeps it: the hall file's keys as a document."""

    code: str
    data: dict[str, Any]
    removed: bool = False


def initials(name: str) -> str:
    """The pinyin initials of a name, lower case (不动产登记 → bdcdj); other characters kept."""
    return "".join(p[:1] for p in lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default")).lower()


class Catalogue:
    """The hall's matters by code, with what a search as one types looks through."""

    def __init__(self) -> None:
        self.matters: dict[str, Matter] = {}
        self._keys: dict[str, tuple[str, str, str]] = {}

    def put(self, matter: Matter) -> None:
        self.matters[matter.code] = matter
        self._keys[matter.code] = (matter.code.lower(), matter.name, initials(matter.name))

    def remove(self, code: str) -> None:
        self.matters.pop(code, None)
        self._keys.pop(code, None)

    def search(self, text: str, limit: int = 20, service: str | None = None) -> list[Matter]:
        """Enabled matters whose code, name or pinyin initials contain ``text`` (best first:
        a code or initials that start with it, then the rest, each in catalogue order)."""
        q = text.strip().lower()
        first, rest = [], []
        for code, (lower_code, name, abbr) in self._keys.items():
            m = self.matters[code]
            if not m.enabled or (service and m.service and m.service != service):
                continue
            if not q or lower_code.startswith(q) or abbr.startswith(q) or name.startswith(q):
                first.append(m)
            elif q in lower_code or q in name or q in abbr:
                rest.append(m)
            if len(first) >= limit:
                break
        return (first + rest)[:limit]


def validate(rows: Iterable[Mapping[str, Any]], start: int = 1) -> tuple[list[Matter], list[Problem]]:
    """Each row as a matter, and every problem named by row (counted from ``start``) and column:
    ``第 3 行 promised_days``; codes used twice are problems too."""
    matters: list[Matter] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start):
        try:
            matter = Matter.model_validate(dict(row))
        except ValidationError as exc:
            for err in exc.errors():
                cause = (err.get("ctx") or {}).get("error")
                at = cause.problems[0][0] if isinstance(cause, Invalid) and cause.problems else ""
                key = ".".join(str(p) for p in err["loc"]) or at
                zh = cause.zh if isinstance(cause, Invalid) else zh_error(err)
                problems.append((f"row {n}: {key}".rstrip(": "), f"第 {n} 行 {key}：{zh}",
                                 err["msg"].removeprefix("Value error, ")))
            continue
        if matter.code in seen:
            other = seen[matter.code]
            problems.append((f"row {n}: code", f"第 {n} 行 code：编号 {matter.code} 与第 {other} 行重复",
                             f"code {matter.code} is also on row {other}"))
            continue
        seen[matter.code] = n
        matters.append(matter)
    return matters, problems


def set_matters(hall: HallState, cmd: SetMatters, now: datetime) -> dict[str, Any]:
    """Add or replace matters (one, or a whole file: all or nothing); with ``replace`` the
    catalogue becomes exactly these (matters left out are removed)."""
    matters, problems = validate(cmd.matters)
    if problems:
        raise Refused("invalid_matters", f"事项清单有 {len(problems)} 处错误，未作任何更改",
                      f"{len(problems)} problems in the matters; nothing changed", tuple(problems[:200]))
    cat = hall.catalogue
    new = {m.code for m in matters}
    gone = [code for code in cat.matters if code not in new] if cmd.replace else []
    if len(set(cat.matters) - set(gone) | new) > MAX_MATTERS:
        raise Refused("too_many_matters", f"事项最多 {MAX_MATTERS} 项", f"at most {MAX_MATTERS} matters")
    for code in gone:
        _remove(hall, code)
    added = [m.code for m in matters if m.code not in cat.matters]
    for m in matters:
        cat.put(m)
        hall.changes.touch(StoredMatter(m.code, m.model_dump(mode="json")))
    hall.emit(EventKind.MATTERS_CHANGED, now, added=len(added), changed=len(matters) - len(added),
              removed=len(gone), codes=[m.code for m in matters[:20]])
    return {"matters": len(cat.matters), "added": len(added), "changed": len(matters) - len(added),
            "removed": len(gone)}


def _remove(hall: HallState, code: str) -> None:
    hall.catalogue.remove(code)
    hall.changes.touch(StoredMatter(code, {}, removed=True))


def remove_matter(hall: HallState, cmd: RemoveMatter, now: datetime) -> dict[str, Any]:
    if cmd.code not in hall.catalogue.matters:
        raise Refused("unknown_matter", f"没有事项 {cmd.code}", f"no matter {cmd.code!r}")
    _remove(hall, cmd.code)
    hall.emit(EventKind.MATTERS_CHANGED, now, added=0, changed=0, removed=1, codes=[cmd.code])
    return {"matters": len(hall.catalogue.matters), "removed": 1}


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    SetMatters: set_matters, RemoveMatter: remove_matter}

"""The matter catalogue (事项清单) as a file: read from xlsx or CSV, written back as either.

A catalogue file has one header row and a matter a row. Its headers are those real catalogues
have (事项编码, 事项名称, 事项类别, 实施部门, 办理形式, 法定时限, 承诺时限, 收费标准, 申请材料,
对应业务, 办理窗口, 协办部门, 是否启用) or the model's own keys (``code``, ``name`` …). Cells are
read as people write them: 行政许可 for ``licensing``, 即办件 for ``instant``, "5个工作日" for 5,
materials one a line (or separated by ；), windows separated by 、 or commas, 是/否.

``read`` answers every row as the model's keys with the sheet's row number (the header is row
1), or raises ``CatalogueFileError`` for a file that cannot be read at all (not xlsx, empty, no
header, an unknown or missing column). ``check`` validates the rows with the core's own model
(``controller.core.matters.validate``) and names each problem by row and by the column's header
as the file wrote it; a file with any problem is imported not at all.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.core.errors import Problem, Refused
from controller.core.matters import CATEGORIES, FORMS, Matter, validate

#: A catalogue file may be at most this large.
MAX_FILE = 5 * 1024 * 1024
#: At most this many rows are read (the core keeps at most ``MAX_MATTERS``).
MAX_ROWS = 10_000
#: The columns in the order files are written: key → the Chinese header.
HEADERS: dict[str, str] = {
    "code": "事项编码", "name": "事项名称", "category": "事项类别", "department": "实施部门",
    "form": "办理形式", "statutory_days": "法定时限", "promised_days": "承诺时限", "fees": "收费标准",
    "materials": "申请材料", "service": "对应业务", "windows": "办理窗口", "partners": "协办部门",
    "enabled": "是否启用",
}
#: Other headers seen in real catalogues, for the same columns.
ALIASES: dict[str, str] = {
    "事项代码": "code", "编码": "code", "实施编码": "code", "基本编码": "code",
    "名称": "name", "类别": "category", "事项类型": "category", "部门": "department",
    "实施主体": "department", "办件类型": "form", "法定办结时限": "statutory_days",
    "承诺办结时限": "promised_days", "收费": "fees", "是否收费": "fees", "材料": "materials",
    "申请材料目录": "materials", "业务": "service", "窗口": "windows", "联办部门": "partners",
    "启用": "enabled",
}
REQUIRED = ("code", "name", "department")
LISTS = {"materials", "windows", "partners"}
DAYS = {"statutory_days", "promised_days"}
_BY_HEADER = {**{v: k for k, v in HEADERS.items()}, **{k: k for k in HEADERS}, **ALIASES}
_CATEGORY = {**{v: k for k, v in CATEGORIES.items()}, "非行政许可": "approval", "行政审批": "licensing",
             "其它": "other", "其他事项": "other", "公共服务事项": "public_service"}
_FORM = {**{v: k for k, v in FORMS.items()}, **{v.removesuffix("件"): k for k, v in FORMS.items()},
         "承诺办件": "promised", "并联审批件": "joint", "联报件": "joint", "转报件": "upper"}
_YES = {"是", "启用", "true", "yes", "y", "1", "√", "✓"}
_NO = {"否", "停用", "false", "no", "n", "0", "×", "✗"}
_DAYS_TEXT = re.compile(r"^\s*(\d+)\s*(?:个)?\s*(?:工作日|日|天)?\s*$")
_SPLIT = {"materials": re.compile(r"[\r\n；;]+"), "windows": re.compile(r"[\r\n；;、,，\s]+"),
          "partners": re.compile(r"[\r\n；;、,，]+")}


class CatalogueFileError(Refused):
    """A catalogue file that cannot be read at all; nothing was imported."""

    def __init__(self, message: str, message_en: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__("invalid_matters", message, message_en, problems)


@dataclass(slots=True)
class Sheet:
    """A catalogue file as read: each row's matter keys with its row number, and the header
    of each column as the file wrote it."""

    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Checked:
    """A sheet's matters, or every problem in it by row and column (then nothing is imported)."""

    matters: list[Matter]
    problems: list[dict[str, Any]]

    def problem_tuples(self) -> tuple[Problem, ...]:
        return tuple((p["key"], p["message"], p["message_en"]) for p in self.problems)


def _problem(row: int | None, column: str, zh: str, en: str) -> dict[str, Any]:
    where_zh = (f"第 {row} 行" if row else "表头") + (f"「{column}」" if column else "")
    where_en = (f"row {row}" if row else "header") + (f", column {column}" if column else "")
    return {"row": row, "column": column, "key": f"{'row ' + str(row) if row else 'header'}: {column}",
            "message": f"{where_zh}：{zh}", "message_en": f"{where_en}: {en}"}


# ---------------------------------------------------------------- cells
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _cell(key: str, value: Any) -> Any:
    """A cell as the model's value; what cannot be read is left as written, for the model
    to name."""
    if key in DAYS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value) if float(value).is_integer() else value
        m = _DAYS_TEXT.match(_text(value))
        return int(m.group(1)) if m else _text(value)
    text = _text(value)
    if key in LISTS:
        return [p.strip() for p in _SPLIT[key].split(text) if p.strip()]
    if key == "category":
        return _CATEGORY.get(text, text)
    if key == "form":
        return _FORM.get(text, text)
    if key == "enabled":
        if isinstance(value, bool):
            return value
        low = text.lower()
        return True if low in _YES else False if low in _NO else text
    return text


def row_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One row's cells (by key) as the model's values; empty cells are left out (the model's
    defaults), except an instant matter's limits, which are 0."""
    out = {k: _cell(k, v) for k, v in raw.items() if _text(v) != "" or isinstance(v, bool)}
    if out.get("form") == "instant":
        for k in DAYS:
            out.setdefault(k, 0)
    return out


# ---------------------------------------------------------------- reading
def _columns(header: list[Any]) -> tuple[list[str | None], dict[str, str]]:
    """Each column's key (None for an empty header), and each key's header as written."""
    keys: list[str | None] = []
    headers: dict[str, str] = {}
    unknown, twice = [], []
    for cell in header:
        title = _text(cell).lstrip("\ufeff").replace("\n", "").strip().rstrip("*").strip()
        if not title:
            keys.append(None)
            continue
        key = _BY_HEADER.get(title) or _BY_HEADER.get(title.lower())
        if key is None:
            unknown.append(title)
        elif key in headers:
            twice.append(title)
        else:
            headers[key] = title
        keys.append(key)
    problems = [_problem(None, t, "未知的列（可用：" + "、".join(HEADERS.values()) + "）",
                         "unknown column (known: " + ", ".join(HEADERS) + ")") for t in unknown]
    problems += [_problem(None, t, "列重复", "the column appears twice") for t in twice]
    problems += [_problem(None, HEADERS[k], "缺少必需的列", "a required column is missing")
                 for k in REQUIRED if k not in headers]
    if problems:
        raise CatalogueFileError(
            f"事项清单表头有 {len(problems)} 处错误，未导入任何事项",
            f"{len(problems)} problems in the catalogue's header; nothing imported",
            tuple((p["key"], p["message"], p["message_en"]) for p in problems))
    return keys, headers


def _sheet(lines: Iterator[tuple[Any, ...]] | Iterable[list[Any]]) -> Sheet:
    rows = iter(lines)
    header: list[Any] | None = None
    for first in rows:
        if any(_text(c) for c in first):
            header = list(first)
            break
    if header is None:
        raise CatalogueFileError("文件是空的，没有表头", "the file is empty: no header row")
    keys, headers = _columns(header)
    sheet = Sheet(headers=headers)
    for n, line in enumerate(rows, 2):
        if not any(_text(c) for c in line):
            continue
        if n - 1 > MAX_ROWS:
            raise CatalogueFileError(f"事项清单最多 {MAX_ROWS} 行", f"at most {MAX_ROWS} rows")
        extra = [c for k, c in zip(keys, line, strict=False) if k is None and _text(c)]
        if extra or (len(line) > len(keys) and any(_text(c) for c in list(line)[len(keys):])):
            raise CatalogueFileError(
                f"第 {n} 行有表头之外的内容", f"row {n} has cells outside the header's columns",
                ((f"row {n}: ", f"第 {n} 行：有表头之外的内容",
                  f"row {n}: cells outside the header's columns"),))
        sheet.rows.append((n, {k: v for k, v in zip(keys, line, strict=False) if k is not None}))
    if not sheet.rows:
        raise CatalogueFileError("文件中没有事项（只有表头）", "the file has a header and no matters")
    return sheet


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CatalogueFileError("CSV 文件须为 UTF-8 或 GB18030 编码", "a CSV file must be UTF-8 or GB18030")


def _read_csv(data: bytes) -> Sheet:
    text = _decode(data)
    if "\x00" in text:
        raise CatalogueFileError("这不是 CSV 文本文件", "this is not a CSV text file")
    first = text.split("\n", 1)[0]
    dialect = csv.excel_tab if "\t" in first and "," not in first else csv.excel
    try:
        return _sheet(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise CatalogueFileError(f"CSV 格式错误：{exc}", f"the CSV is malformed: {exc}") from None


def _read_xlsx(data: bytes) -> Sheet:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise CatalogueFileError("无法读取：这不是有效的 xlsx 文件",
                                 f"not a readable xlsx file: {exc}") from None
    try:
        return _sheet(book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()


def kind_of(filename: str, data: bytes) -> str:
    """``xlsx`` or ``csv``, by the name's ending (and the content for a zip)."""
    suffix = Path(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix == ".xls":
        raise CatalogueFileError("不支持旧版 .xls，请另存为 .xlsx 或 CSV",
                                 "the old .xls format is not read: save it as .xlsx or CSV")
    raise CatalogueFileError("只能导入 .xlsx 或 .csv 文件", "only .xlsx and .csv files can be imported")


def read(filename: str, data: bytes) -> Sheet:
    """``data`` (a file called ``filename``) as a sheet; a file that cannot be read at all
    raises ``CatalogueFileError``."""
    if len(data) > MAX_FILE:
        raise CatalogueFileError(f"文件过大（最大 {MAX_FILE // 1024 // 1024} MB）",
                                 f"the file is too large (at most {MAX_FILE // 1024 // 1024} MB)")
    if not data.strip():
        raise CatalogueFileError("文件是空的", "the file is empty")
    if kind_of(filename, data) == "xlsx":
        if not data.startswith(b"PK"):
            raise CatalogueFileError("无法读取：这不是有效的 xlsx 文件", "not a readable xlsx file")
        return _read_xlsx(data)
    if data.startswith(b"PK"):
        raise CatalogueFileError("这是 xlsx 文件，请以 .xlsx 为扩展名导入",
                                 "this is an xlsx file: import it with a .xlsx name")
    return _read_csv(data)


def _plainly(key: str, value: str, zh: str, en: str) -> tuple[str, str]:
    """What a cell that cannot be read should have been, in the catalogue's own words."""
    shown = value if len(value) <= 20 else value[:20] + "…"
    expected = {
        "category": ("、".join(CATEGORIES.values()), ", ".join(CATEGORIES.values())),
        "form": ("、".join(FORMS.values()), ", ".join(FORMS.values())),
        "enabled": ("是、否", "是 or 否 (yes or no)"),
        "statutory_days": ("工作日数，如 20 或 20个工作日", "a number of working days, e.g. 20"),
        "promised_days": ("工作日数，如 5 或 5个工作日", "a number of working days, e.g. 5"),
        "code": ("字母、数字、点、横线或下划线，最多 40 位", "letters, digits, . - or _, at most 40"),
        "service": ("业务编号，如 A", "a queue service's code, e.g. A"),
    }.get(key)
    if expected is None:
        return zh, en
    return f"“{shown}”不可用，应为{expected[0]}", f"{shown!r} cannot be used: {expected[1]}"


def check(sheet: Sheet) -> Checked:
    """The sheet's matters, each row validated by the core's model; every problem named by
    the sheet's row and the column's header as written; codes used twice too."""
    matters: list[Matter] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, raw in sheet.rows:
        found, wrong = validate([row_values(raw)], n)
        for key, zh, en in wrong:
            name = key.partition(": ")[2].split(".")[0]
            column = sheet.headers.get(name, HEADERS.get(name, name))
            zh, en = zh.partition("：")[2] or zh, en
            if en.startswith(("Input should be", "String should match")) and _text(raw.get(name)):
                zh, en = _plainly(name, _text(raw.get(name)), zh, en)
            problems.append(_problem(n, column, zh, en))
        for m in found:
            if m.code in seen:
                problems.append(_problem(n, sheet.headers["code"],
                                         f"编码 {m.code} 与第 {seen[m.code]} 行重复",
                                         f"code {m.code} is also on row {seen[m.code]}"))
                continue
            seen[m.code] = n
            matters.append(m)
    return Checked([] if problems else matters, problems)


def load(filename: str, data: bytes) -> list[Matter]:
    """The file's matters, or ``CatalogueFileError`` naming every problem (nothing imported)."""
    checked = check(read(filename, data))
    if checked.problems:
        raise CatalogueFileError(
            f"事项清单有 {len(checked.problems)} 处错误，未导入任何事项",
            f"{len(checked.problems)} problems in the catalogue; nothing imported", checked.problem_tuples())
    return checked.matters


# ---------------------------------------------------------------- writing
def _out(key: str, value: Any, lines: bool) -> Any:
    if key in LISTS:
        return ("\n" if lines else "；").join(value) if key == "materials" else "、".join(value)
    if key == "category":
        return CATEGORIES[value]
    if key == "form":
        return FORMS[value]
    if key == "enabled":
        return "是" if value else "否"
    return value


def table(matters: Iterable[Matter], lines: bool = True) -> list[list[Any]]:
    """The header row and a row per matter, as the files write them (the materials one a
    line, or with ``lines`` false separated by ；)."""
    rows: list[list[Any]] = [list(HEADERS.values())]
    for m in matters:
        data = m.model_dump()
        rows.append([_out(k, data[k], lines) for k in HEADERS])
    return rows


def to_csv(matters: Iterable[Matter]) -> bytes:
    """UTF-8 with a byte-order mark, which Excel needs to read Chinese from a CSV."""
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(table(matters, lines=False))
    return buf.getvalue().encode("utf-8-sig")


#: column widths in the xlsx (characters; a Chinese one counts about two)
_WIDTHS = {"code": 16, "name": 34, "category": 14, "department": 18, "form": 10, "statutory_days": 10,
           "promised_days": 10, "fees": 16, "materials": 48, "service": 10, "windows": 12,
           "partners": 22, "enabled": 10}


def to_xlsx(matters: Iterable[Matter]) -> bytes:
    """The catalogue as an xlsx workbook: the header row styled and frozen, columns sized."""
    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "事项清单"
    for row in table(matters):          # control characters cannot be in a worksheet
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row])
    bold, fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="0B57A4")
    for cell in ws[1]:
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(vertical="center", horizontal="center")
    wrap = Alignment(wrap_text=True, vertical="top")
    materials = list(HEADERS).index("materials") + 1
    for (cell,) in ws.iter_rows(min_row=2, min_col=materials, max_col=materials):
        cell.alignment = wrap
    for i, key in enumerate(HEADERS, 1):
        ws.column_dimensions[get_column_letter(i)].width = _WIDTHS[key]
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def write(path: str | Path, matters: Iterable[Matter]) -> None:
    """To ``path``, as xlsx or CSV by its ending."""
    p = Path(path)
    kind = p.suffix.lower()
    if kind not in (".xlsx", ".csv"):
        raise CatalogueFileError("只能导出为 .xlsx 或 .csv", "export to a .xlsx or .csv file")
    p.write_bytes(to_xlsx(matters) if kind == ".xlsx" else to_csv(matters))

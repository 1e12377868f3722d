"""The evaluation records for the provincial 好差评 platform (upward export), with the data
items of GB/T 39046-2020's evaluation base data set (政务服务绩效评价基础数据集): 办件编号,
评价渠道, 评价人, 评价时间, 评价次数, 满意度, 满意度代码, 文字评价, 行政区划 — as rows for CSV,
xlsx and JSON. The rater is never named (评价人 is 匿名); a follow-up rating (追评) is the
second evaluation of its service (评价次数 2); a rating taken out by an upheld appeal is
marked so (``excluded``) rather than left out, so the platform sees the whole record.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.core.commands import LEVEL_NAMES, REASON_NAMES
from controller.storage.schema import evaluations, followups

CHANNEL = "政务大厅其他终端"       # the evaluator at the window (pf 5)
COLUMNS = (("case", "办件编号"), ("channel", "评价渠道"), ("rater", "评价人"), ("time", "评价时间"),
           ("count", "评价次数"), ("satisfaction", "满意度"), ("code", "满意度代码"), ("text", "文字评价"),
           ("region", "行政区划"), ("excluded", "申诉成立"))


def _query() -> Select[Any]:
    e, f = evaluations.c, followups.c
    return (select(e.id, e.ticket, e.case, e.level, e.reasons, e.closed_at, f.state, f.rerating, f.closed_at)
            .select_from(evaluations.outerjoin(followups, (f.hall == e.hall) & (f.id == e.id)))
            .where(e.level.is_not(None)))


def _records(row: Any, region: str, tz: Any) -> list[dict[str, Any]]:
    """One rating's records: the rating (评价次数 1) and its follow-up rating if any (2)."""
    _id, ticket, case, level, reasons, closed_at, state, rerating, rerated_at = row
    base = {"case": case or ticket, "channel": CHANNEL, "rater": "匿名", "region": region,
            "excluded": state == "excluded"}
    name, code = LEVEL_NAMES[level]
    text = "、".join(REASON_NAMES.get(r, r) for r in reasons)
    out = [{**base, "time": f"{closed_at.astimezone(tz):%Y%m%dT%H%M%S}", "count": 1,
            "satisfaction": name, "code": code, "text": text}]
    if rerating and rerated_at is not None:
        name, code = LEVEL_NAMES[rerating]
        out.append({**base, "time": f"{rerated_at.astimezone(tz):%Y%m%dT%H%M%S}", "count": 2,
                    "satisfaction": name, "code": code, "text": ""})
    return out


async def records(db: AsyncEngine, hall: str, region: str, tz: Any, since: date,
                  until: date) -> list[dict[str, Any]]:
    """The period's ratings (unrated sessions are not evaluations) and follow-up ratings."""
    e = evaluations.c
    start = datetime.combine(since, time(0), tz)
    end = datetime.combine(until + timedelta(days=1), time(0), tz)
    q = _query().where(e.hall == hall, e.closed_at >= start, e.closed_at < end).order_by(e.closed_at, e.id)
    async with db.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [record for row in rows for record in _records(row, region, tz)]


def by_session(conn: Connection, hall: str, region: str, tz: Any,
               sessions: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each rating session's records, as they stand now."""
    e = evaluations.c
    out: dict[str, list[dict[str, Any]]] = {}
    for part in range(0, len(sessions), 500):
        q = _query().where(e.hall == hall, e.id.in_(sessions[part:part + 500]))
        for row in conn.execute(q):
            out[row[0]] = _records(row, region, tz)
    return out


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([zh for _, zh in COLUMNS])
    for row in rows:
        writer.writerow([_cell(row[key]) for key, _ in COLUMNS])
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def to_xlsx(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "评价记录"
    sheet.append([zh for _, zh in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell(row[key]) for key, _ in COLUMNS])
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCDEFGHIJ", (32, 18, 8, 18, 8, 10, 10, 30, 10, 8), strict=True):
        sheet.column_dimensions[letter].width = width
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _cell(value: Any) -> Any:
    return ("是" if value else "否") if isinstance(value, bool) else value

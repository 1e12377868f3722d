"""Case figures read from the cases table: the on-time completion rate (按时办结率) per window
and per department — cases decided on or before their due day over cases decided — and the
cases open past their due day, for a period."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.storage.schema import cases


async def on_time(db: AsyncEngine, hall: str, since: date, until: date) -> dict[str, list[dict[str, Any]]]:
    """Per ``window`` and per ``department``: decided, on time, the rate (None with none
    decided) and overdue (open and past due on ``until``), for cases decided or open in
    [``since``, ``until``]."""
    c = cases.c
    decided = (c.decided_on >= since) & (c.decided_on <= until)
    overdue = c.decided_on.is_(None) & c.finished_at.is_(None) & (c.due < until)
    out: dict[str, list[dict[str, Any]]] = {}
    async with db.connect() as conn:
        for key in ("window", "department"):
            column = c[key]
            q = (select(column, func.sum(case((decided, 1), else_=0)),
                        func.sum(case((decided & (c.decided_on <= c.due), 1), else_=0)),
                        func.sum(case((overdue, 1), else_=0)))
                 .where(c.hall == hall).group_by(column).order_by(column))
            rows = (await conn.execute(q)).all()
            out[key] = [{"key": k or "—", "decided": int(d or 0), "on_time": int(o or 0),
                         "rate": (int(o or 0) / int(d)) if d else None, "overdue": int(v or 0)}
                        for k, d, o, v in rows if (d or v)]
    return out

"""The outbox (发件箱): what the hall owes another system, kept until the receiver says it has it.

Rows are chosen from a batch's events by ``entries`` and written by the repository in the
batch's own transaction, so a change and the promise to report it are stored together or not
at all. A channel's rows are sent in ``id`` order (one writer per hall keeps ids in commit
order) by a delivery task; ``ack`` records the last row the receiver acknowledged, and what
comes after it is what is still owed — after the receiver was unreachable, after a restart.
Each row's message id (``{hall}-{channel}-{id}``) never changes, so a receiver that answers and
is not heard (the answer lost, the hall killed before it stored the acknowledgement) sees the
same ids again and applies them once.

Channels:

- ``province`` 好差评上报: the hall's evaluation records for the provincial platform, while the
  hall names its endpoint (``hall.evaluations_url``): a rating (``rated``), a follow-up rating
  (追评, ``followup_step`` ``rerate``) and an upheld appeal (申诉成立, ``followup_step``
  ``uphold``), each keyed by its rating session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from controller.config import HallConfig
from controller.core.events import Event, EventKind
from controller.storage.schema import deliveries, outbox

PROVINCE = "province"
#: the ``followup_step`` actions that change what the platform holds
_PROVINCE_STEPS = {"rerate": "rerating", "uphold": "appeal_upheld"}


def entries(hall: str, events: Iterable[Event], config: HallConfig | None) -> list[dict[str, Any]]:
    """The outbox rows a batch's events make."""
    if config is None or not config.hall.evaluations_url:
        return []
    out = []
    for e in events:
        kind = None
        if e.kind is EventKind.RATED:
            kind = "rating"
        elif e.kind is EventKind.FOLLOWUP_STEP:
            kind = _PROVINCE_STEPS.get(e.payload.get("action", ""))
        if kind:
            session = e.payload["session"]
            out.append({"hall": hall, "channel": PROVINCE, "kind": kind, "key": session, "at": e.at,
                        "payload": json.dumps({"session": session}, separators=(",", ":"))})
    return out


def acked(conn: Connection, hall: str, channel: str) -> int:
    d = deliveries.c
    return conn.execute(select(d.acked).where(d.hall == hall, d.channel == channel)).scalar() or 0


def pending(conn: Connection, hall: str, channel: str, limit: int) -> list[Any]:
    """The first ``limit`` rows not yet acknowledged, in order."""
    o = outbox.c
    return list(conn.execute(select(o.id, o.kind, o.key, o.at, o.payload)
                             .where(o.hall == hall, o.channel == channel, o.id > acked(conn, hall, channel))
                             .order_by(o.id).limit(limit)))


def _save(conn: Connection, hall: str, channel: str, **values: Any) -> None:
    d = deliveries.c
    if conn.execute(select(d.acked).where(d.hall == hall, d.channel == channel)).first() is None:
        conn.execute(deliveries.insert().values(hall=hall, channel=channel, **{
            "acked": 0, "delivered": 0, "last_error": "", **values}))
    else:
        conn.execute(deliveries.update().where(d.hall == hall, d.channel == channel).values(**values))


def ack(conn: Connection, hall: str, channel: str, last: int, count: int, at: datetime) -> None:
    """The receiver has every row up to ``last`` (``count`` of them newly)."""
    d = deliveries.c
    delivered = conn.execute(select(d.delivered).where(d.hall == hall, d.channel == channel)).scalar() or 0
    _save(conn, hall, channel, acked=last, delivered=delivered + count, last_ok_at=at,
          failing_since=None, last_error="")


def failed(conn: Connection, hall: str, channel: str, error: str, at: datetime) -> None:
    d = deliveries.c
    since = conn.execute(select(d.failing_since).where(d.hall == hall, d.channel == channel)).scalar()
    _save(conn, hall, channel, failing_since=since or at, last_error=error[:500])


def prune(conn: Connection, hall: str, channel: str, before: datetime) -> None:
    """Forget acknowledged rows older than ``before``."""
    o = outbox.c
    conn.execute(delete(outbox).where(o.hall == hall, o.channel == channel, o.at < before,
                                      o.id <= acked(conn, hall, channel)))


def status(conn: Connection, hall: str, channel: str) -> dict[str, Any]:
    """What is owed and how delivery goes, for the pages."""
    o, d = outbox.c, deliveries.c
    row = conn.execute(select(d.acked, d.delivered, d.last_ok_at, d.failing_since, d.last_error)
                       .where(d.hall == hall, d.channel == channel)).first()
    last = row.acked if row else 0
    owed = conn.execute(select(func.count()).where(o.hall == hall, o.channel == channel,
                                                   o.id > last)).scalar()
    return {"pending": owed or 0, "delivered": row.delivered if row else 0,
            "last_ok_at": _iso(row.last_ok_at if row else None),
            "failing_since": _iso(row.failing_since if row else None),
            "last_error": row.last_error if row else ""}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None

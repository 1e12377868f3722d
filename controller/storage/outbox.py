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
- ``up`` 上报: a case this hall sends to the hall above it (``escalate``), while it has one.
- ``down:{hall}``: each step of a case the lower hall ``hall`` forwarded here, its result
  at last, for that hall (``controller.core.tiers``).

A receiver that numbers what it applied (the tier links) is sent each row's place in its
channel: ``delivered`` + its position after the acknowledged rows, in the channel's ``epoch``.
A database brought back from a backup sends in a new epoch (``renew_epochs``), so the receiver
takes its numbers afresh rather than as repeats; a receiver brought back from one is sent again
from the last acknowledged position it has (``rewind``, from ``delivery_marks``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from controller.config import HallConfig
from controller.core.events import Event, EventKind
from controller.storage.schema import deliveries, delivery_marks, outbox

PROVINCE = "province"
UP = "up"
#: the ``followup_step`` actions that change what the platform holds
_PROVINCE_STEPS = {"rerate": "rerating", "uphold": "appeal_upheld"}


def entries(hall: str, events: Iterable[Event], config: HallConfig | None) -> list[dict[str, Any]]:
    """The outbox rows a batch's events make."""
    if config is None:
        return []
    out = []
    for e in events:
        for channel, kind, key, payload in _owed(e, config):
            out.append({"hall": hall, "channel": channel, "kind": kind, "key": key, "at": e.at,
                        "payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":"))})
    return out


def _owed(e: Event, config: HallConfig) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(channel, kind, key, payload) of what ``e`` owes to whom."""
    p = e.payload
    out = []
    if config.hall.evaluations_url:
        kind = "rating" if e.kind is EventKind.RATED else \
            _PROVINCE_STEPS.get(p.get("action", "")) if e.kind is EventKind.FOLLOWUP_STEP else None
        if kind:
            out.append((PROVINCE, kind, p["session"], {"session": p["session"]}))
    if config.tier.upper and e.kind is EventKind.CASE_STEP and p.get("action") == "escalate":
        out.append((UP, "case_forwarded", p["case"], {"case": p["case"]}))
    if e.kind in (EventKind.CASE_OPENED, EventKind.CASE_STEP) and p.get("from_hall"):
        out.append((down(p["from_hall"]), "case_status", p["case"], {
            "number": p["from_number"], "upper_number": p["case"],
            "after": p.get("upper_state") or p.get("after") or p.get("state"), "due": p["due"],
            "decision": p.get("decision"),
            "reasons": (p.get("reasons") or "")[:500]}))
    return out


def down(peer: str) -> str:
    """The channel of what goes down to the lower hall ``peer``."""
    return f"down:{peer}"


def position(conn: Connection, hall: str, channel: str) -> tuple[int, int]:
    """The last row the receiver acknowledged and how many rows it has, read together (a row's
    place in its channel is counted from these; read apart, an acknowledgement coming between
    would shift the count)."""
    d = deliveries.c
    row = conn.execute(select(d.acked, d.delivered).where(d.hall == hall, d.channel == channel)).first()
    return (row.acked, row.delivered) if row else (0, 0)


def pending(conn: Connection, hall: str, channel: str, limit: int, after: int | None = None) -> list[Any]:
    """The first ``limit`` rows after ``after`` (by default the acknowledged one), in order."""
    o = outbox.c
    start = position(conn, hall, channel)[0] if after is None else after
    return list(conn.execute(select(o.id, o.kind, o.key, o.at, o.payload)
                             .where(o.hall == hall, o.channel == channel, o.id > start)
                             .order_by(o.id).limit(limit)))


def _save(conn: Connection, hall: str, channel: str, **values: Any) -> None:
    d = deliveries.c
    if conn.execute(select(d.acked).where(d.hall == hall, d.channel == channel)).first() is None:
        conn.execute(deliveries.insert().values(hall=hall, channel=channel, **{
            "acked": 0, "delivered": 0, "last_error": "", **values}))
    else:
        conn.execute(deliveries.update().where(d.hall == hall, d.channel == channel).values(**values))


def ack(conn: Connection, hall: str, channel: str, last: int, count: int, at: datetime) -> None:
    """The receiver has every row up to ``last`` (``count`` of them newly; none for a row it
    refused, which takes no place in the channel)."""
    d, m = deliveries.c, delivery_marks.c
    delivered = (conn.execute(select(d.delivered).where(d.hall == hall, d.channel == channel)).scalar()
                 or 0) + count
    _save(conn, hall, channel, acked=last, delivered=delivered, last_ok_at=at,
          failing_since=None, last_error="")
    conn.execute(delete(delivery_marks).where(m.hall == hall, m.channel == channel, m.delivered == delivered))
    conn.execute(delivery_marks.insert().values(hall=hall, channel=channel, delivered=delivered, acked=last))


def epoch(conn: Connection, hall: str, channel: str) -> str:
    """The channel's epoch, made (with the position to rewind to) when it has none yet."""
    d = deliveries.c
    row = conn.execute(select(d.epoch, d.acked, d.delivered)
                       .where(d.hall == hall, d.channel == channel)).first()
    if row is not None and row.epoch:
        return str(row.epoch)
    made = secrets.token_hex(8)
    _save(conn, hall, channel, epoch=made)
    acked, delivered = (row.acked, row.delivered) if row else (0, 0)
    m = delivery_marks.c
    conn.execute(delete(delivery_marks).where(m.hall == hall, m.channel == channel, m.delivered == delivered))
    conn.execute(delivery_marks.insert().values(hall=hall, channel=channel, delivered=delivered, acked=acked))
    return made


def renew_epochs(conn: Connection) -> None:
    """Every channel sends in a new epoch (a database restored from a backup: the receivers
    have seen its numbers already, with other rows behind some of them)."""
    for hall, channel in conn.execute(select(deliveries.c.hall, deliveries.c.channel)).all():
        _save(conn, hall, channel, epoch=secrets.token_hex(8))


def rewind(conn: Connection, hall: str, channel: str, applied: int) -> int | None:
    """Send again after the receiver's ``applied``-th (it lost what came after: restored from
    a backup), from the last acknowledged position at or before it: how many it counts as
    delivered now, or None when the rows from there are pruned."""
    m = delivery_marks.c
    mark = conn.execute(select(m.delivered, m.acked).where(m.hall == hall, m.channel == channel,
                                                           m.delivered <= applied)
                        .order_by(m.delivered.desc()).limit(1)).first()
    if mark is None:
        return None
    _save(conn, hall, channel, acked=mark.acked, delivered=mark.delivered)
    conn.execute(delete(delivery_marks).where(m.hall == hall, m.channel == channel,
                                              m.delivered > mark.delivered))   # that timeline is gone
    return int(mark.delivered)


def failed(conn: Connection, hall: str, channel: str, error: str, at: datetime) -> None:
    d = deliveries.c
    since = conn.execute(select(d.failing_since).where(d.hall == hall, d.channel == channel)).scalar()
    _save(conn, hall, channel, failing_since=since or at, last_error=error[:500])


def prune(conn: Connection, hall: str, channel: str, before: datetime) -> None:
    """Forget acknowledged rows older than ``before``, and the positions that pointed before
    them."""
    o, m = outbox.c, delivery_marks.c
    gone = conn.execute(select(func.max(o.id)).where(o.hall == hall, o.channel == channel, o.at < before,
                                                    o.id <= position(conn, hall, channel)[0])).scalar()
    if gone is None:
        return
    conn.execute(delete(outbox).where(o.hall == hall, o.channel == channel, o.id <= gone))
    conn.execute(delete(delivery_marks).where(m.hall == hall, m.channel == channel, m.acked < gone))


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

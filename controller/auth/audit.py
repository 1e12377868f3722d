"""The audit log (审计日志): every change a person makes, who, when, from where, what.

Append only and tamper-evident: row ``seq`` carries the SHA-256 of the row before it and its
own hash over both, so an edited row breaks its own hash and a deleted one breaks the chain
(``yimen audit verify``). The primary key (hall, seq) keeps two writers (the server and the
command line) from forking the chain: the loser of a race reads the new head and tries again.
Personal data is never written here: callers pass masked values (``mask``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.clock import Clock, SystemClock
from controller.storage.schema import audit_log, utc_text

GENESIS = "0" * 64
#: Fields never written as they are: a citizen's ID token and phone digits, secrets, and a
#: ticket's status address (its holder's key to the status page).
PERSONAL = {"id_token", "id_sealed", "id_number", "phone_tail", "phone", "password", "pin",
            "status_path", "status_url", "token"}


def mask(detail: Any) -> Any:
    """``detail`` with every ``PERSONAL`` field's value replaced, at any depth."""
    if isinstance(detail, dict):
        return {k: ("***" if k in PERSONAL and v else mask(v)) for k, v in detail.items()}
    if isinstance(detail, list | tuple):
        return [mask(v) for v in detail]
    return detail


def entry_hash(hall: str, seq: int, at: datetime, actor: str, address: str, action: str,
               target: str, detail: dict[str, Any], prev_hash: str) -> str:
    body = json.dumps([hall, seq, utc_text(at), actor, address, action, target, detail, prev_hash],
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: datetime
    actor: str
    address: str
    action: str
    target: str
    detail: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor,
                "address": self.address, "action": self.action, "target": self.target,
                "detail": self.detail}


class Audit:
    def __init__(self, db: AsyncEngine, hall: str, clock: Clock | None = None) -> None:
        self.db, self.hall, self.clock = db, hall, clock or SystemClock()
        self._lock = asyncio.Lock()

    async def record(self, actor: str, address: str, action: str, target: str = "",
                     detail: dict[str, Any] | None = None) -> int:
        """Append one entry; its sequence number."""
        detail = json.loads(json.dumps(mask(detail or {}), ensure_ascii=False, default=str))
        async with self._lock:
            for _ in range(20):
                try:
                    async with self.db.begin() as conn:
                        head = (await conn.execute(
                            select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.hall == self.hall)
                            .order_by(audit_log.c.seq.desc()).limit(1))).first()
                        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
                        row: dict[str, Any] = dict(
                            hall=self.hall, seq=seq, at=self.clock.now(), actor=actor[:96],
                            address=address[:64], action=action[:48], target=target[:160],
                            detail=detail, prev_hash=prev)
                        row["hash"] = entry_hash(**row)
                        await conn.execute(insert(audit_log).values(**row))
                except IntegrityError:           # another process appended first: read again
                    continue
                return seq
        raise RuntimeError("the audit log is being written too fast to append to")

    async def entries(self, actor: str | None = None, action: str | None = None,
                      since: datetime | None = None, until: datetime | None = None,
                      limit: int = 200, before_seq: int | None = None,
                      target: str | None = None) -> list[Entry]:
        """Newest first, filtered; ``target`` is a prefix of what was changed (a section's
        ``/api/config/services``)."""
        q = select(audit_log).where(audit_log.c.hall == self.hall)
        if actor:
            q = q.where(audit_log.c.actor == actor)
        if action:
            q = q.where(audit_log.c.action == action)
        if since:
            q = q.where(audit_log.c.at >= since)
        if until:
            q = q.where(audit_log.c.at < until)
        if before_seq:
            q = q.where(audit_log.c.seq < before_seq)
        if target:
            q = q.where(audit_log.c.target.startswith(target, autoescape=True))
        async with self.db.connect() as conn:
            rows = (await conn.execute(q.order_by(audit_log.c.seq.desc()).limit(limit))).mappings().all()
        return [Entry(**{k: r[k] for k in Entry.__slots__}) for r in rows]


async def verify(db: AsyncEngine, hall: str) -> tuple[int, list[str], str]:
    """(entries checked, problems, the last entry's hash): each broken hash, gap or broken
    link, by sequence number. Entries deleted from the end leave an intact shorter chain:
    keep the last hash printed (a report, another machine) and compare it next time."""
    problems: list[str] = []
    prev, expected, count = GENESIS, 1, 0
    async with db.connect() as conn:
        result = await conn.stream(select(audit_log).where(audit_log.c.hall == hall)
                                   .order_by(audit_log.c.seq))
        async for row in result.mappings():
            count += 1
            fields = {k: row[k] for k in ("hall", "seq", "at", "actor", "address", "action", "target",
                                          "detail", "prev_hash")}
            if row["seq"] != expected:
                problems.append(f"#{expected}–#{row['seq'] - 1}: missing (deleted?)")
            if row["prev_hash"] != prev:
                problems.append(f"#{row['seq']}: does not follow the entry before it")
            if entry_hash(**fields) != row["hash"]:
                problems.append(f"#{row['seq']}: changed after it was written")
            prev, expected = row["hash"], row["seq"] + 1
    return count, problems, prev

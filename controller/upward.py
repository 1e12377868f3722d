"""Upward delivery (好差评上报): the hall's evaluation records sent to the provincial platform.

While the hall names an endpoint (``hall.evaluations_url``), the outbox's ``province`` channel
(``controller.storage.outbox``) is sent to it in order, up to ``BATCH`` messages per request,
as JSON::

    {"hall": "…", "region": "…", "messages": [
        {"id": "{hall}-province-{n}", "kind": "rating" | "rerating" | "appeal_upheld",
         "session": "…", "records": [<GB/T 39046 evaluation records, as the export's JSON>]}]}

with ``Idempotency-Key: {hall}-province-{first}-{last}`` and, when the data folder holds
``province-token``, ``Authorization: Bearer …``. A 2xx answer acknowledges the whole batch; then,
and only then, the hall stores that it was delivered. Anything else — refused, unreachable, a
time-out — is kept, recorded (``failing_since``, ``last_error``, on the statistics page) and
tried again after 1, 2, 4 … up to 60 seconds, the same batch with the same key. A receiver
applies a message id once: an answer that was lost is the only way it sees one again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from controller.config import Hall
from controller.engine import Committed, Engine
from controller.storage import outbox
from controller.storage.evaluation_export import by_session

log = logging.getLogger("yimen.upward")
BATCH = 200
TIMEOUT_S = 15.0
RETRY_S = (1.0, 60.0)
#: acknowledged rows are forgotten after this long
KEEP = timedelta(days=30)
TOKEN_FILE = "province-token"


class Upward:
    """Sends the ``province`` channel while the hall names an endpoint."""

    def __init__(self, engine: Engine, data_dir: str | Path | None = None,
                 retry: tuple[float, float] | None = None) -> None:
        self.engine = engine
        self.hall = engine.config.hall.id
        self.retry = retry or RETRY_S
        token = Path(data_dir, TOKEN_FILE) if data_dir is not None else None
        self.token = token.read_text().strip() if token is not None and token.is_file() else ""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.engine.subscribe(self._committed)
        self._task = asyncio.create_task(self.run(), name="yimen-upward")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _committed(self, committed: Committed) -> None:
        self._wake.set()

    async def run(self) -> None:
        delay = self.retry[0]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http:
            batch: list[Any] = []
            while True:
                self._wake.clear()
                try:
                    hall = (await self.engine.settled()).config.hall
                    url = hall.evaluations_url
                    if url and not batch:
                        batch = await self._read(outbox.pending, outbox.PROVINCE, BATCH)
                    if not url or not batch:
                        await self._wake.wait()
                        continue
                    await self._send(http, hall, batch)
                except Exception as exc:  # noqa: BLE001 - kept, said, tried again
                    await self._failed(exc, len(batch))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.retry[1])
                    continue
                last, now = batch[-1].id, self.engine.clock.now()
                try:
                    await self._write(outbox.ack, outbox.PROVINCE, last, len(batch), now)
                except Exception as exc:  # noqa: BLE001 - not stored: sent again, the same ids
                    log.warning("delivered but not stored, to be sent again: %s", _describe(exc))
                    await asyncio.sleep(delay)
                    continue
                log.info("delivered %d evaluation records up to #%d", len(batch), last)
                batch, delay = [], self.retry[0]
                with contextlib.suppress(Exception):     # tidying only
                    await self._write(outbox.prune, outbox.PROVINCE, now - KEEP)

    async def _failed(self, exc: Exception, waiting: int) -> None:
        error = _describe(exc)
        log.warning("evaluation records not delivered (%d in this batch): %s", waiting, error)
        with contextlib.suppress(Exception):             # storage down too: said above
            await self._write(outbox.failed, outbox.PROVINCE, error, self.engine.clock.now())

    async def _send(self, http: aiohttp.ClientSession, config: Hall, batch: list[Any]) -> None:
        sessions = sorted({row.key for row in batch})
        records = await self._read(partial(by_session, region=config.region, tz=config.tz, sessions=sessions))
        body = {"hall": self.hall, "region": config.region, "messages": [
            {"id": f"{self.hall}-{outbox.PROVINCE}-{row.id}", "kind": row.kind, "session": row.key,
             "records": _for(row.kind, records.get(row.key, []))} for row in batch]}
        headers = {"Idempotency-Key": f"{self.hall}-{outbox.PROVINCE}-{batch[0].id}-{batch[-1].id}",
                   "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body, ensure_ascii=False).encode()
        async with http.post(config.evaluations_url, data=data, headers=headers) as r:
            if r.status // 100 != 2:
                raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:200]}")

    async def _read(self, work: Callable[..., Any], *args: Any) -> Any:
        """``work(conn, hall, *args)`` on a connection of its own."""
        async with self.engine.db.connect() as conn:
            return await conn.run_sync(work, self.hall, *args)

    async def _write(self, work: Callable[..., Any], *args: Any) -> None:
        async with self.engine.db.begin() as conn:
            await conn.run_sync(work, self.hall, *args)


def _for(kind: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records a message carries: a rating its first, a follow-up rating its second, an
    upheld appeal the first again, now marked ``excluded``."""
    count = 2 if kind == "rerating" else 1
    return [r for r in records if r["count"] == count]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer within {TIMEOUT_S:.0f} s"
    return str(exc) or type(exc).__name__

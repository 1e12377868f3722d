"""The hall engine (大厅引擎): one serialised writer per hall.

Every command, whichever door it came in by, is queued here. One task takes what is queued,
applies it to the pure core, writes everything the batch changed in one transaction, commits,
and only then answers the callers and tells the listeners. Several queued commands share a
commit (group commit), so durability costs one fsync per batch, not per command.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.clock import Clock, SystemClock
from controller.config import HallConfig
from controller.core.commands import Command, apply
from controller.core.errors import Refused
from controller.core.hall import Changes, HallState
from controller.core.model import Event
from controller.storage.repository import Repository, Rows
from controller.storage.runner import Runner, runner_for

log = logging.getLogger("yimen.engine")

#: How long a device's ``event_id`` is remembered (the protocol asks for at least 10 minutes).
REPLY_RETENTION = timedelta(hours=24)
PRUNE_EVERY = timedelta(minutes=10)

Listener = Callable[[list[Event]], None]


class EngineStopped(RuntimeError):
    """The engine is not running; the command was not taken."""


class StorageUnavailable(RuntimeError):
    """The command could not be committed; it had no effect and may be retried."""


@dataclass(slots=True)
class _Pending:
    command: Command
    key: str | None
    future: asyncio.Future = field(repr=False)
    answered: bool = False


@dataclass(slots=True)
class Stats:
    commands: int = 0
    refused: int = 0
    batches: int = 0
    replayed: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Prepared:
    """A batch applied to the core, waiting for its commit."""

    batch: list[_Pending]
    results: list[str | dict]
    replies: dict[str, tuple[datetime, str]]
    changes: Changes
    rows: Rows
    prune_at: datetime | None
    generation: int


class _Poisoned(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        self.index, self.error = index, error


class Engine:
    """Runs one hall: ``await engine.execute(Command(...))`` returns the reply once committed,
    or raises ``Refused`` (nothing changed) or ``StorageUnavailable`` (nothing committed)."""

    def __init__(self, config: HallConfig, db: AsyncEngine, clock: Clock | None = None,
                 max_batch: int | None = None) -> None:
        self.config = config
        self.db = db
        self.clock = clock or SystemClock()
        self.max_batch = max_batch or config.storage.max_batch
        self.repo = Repository(config.hall.id)
        self.stats = Stats()
        self._hall: HallState | None = None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._replies: dict[str, tuple[datetime, str]] = {}
        self._listeners: list[Listener] = []
        self.store: Runner = runner_for(db)
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self._last_prune: datetime | None = None
        self._generation = 0   # bumped by every failed commit

    # ------------------------------------------------------------------ life cycle
    @property
    def hall(self) -> HallState:
        """The live state, for reading only; replaced when rebuilt from storage."""
        if self._hall is None:
            if self._running:
                raise StorageUnavailable("the hall is being reloaded from storage")
            raise EngineStopped("the engine has not started")
        return self._hall

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        await self._rebuild()
        self._running = True
        self._tasks = [asyncio.create_task(self._writer(), name="yimen-writer"),
                       asyncio.create_task(self._midnight(), name="yimen-midnight")]
        await self.execute(Command("rollover"))  # closes days that passed while stopped

    async def stop(self) -> None:
        """Stop taking commands, finish what is queued, close the writer connection."""
        if not self._running:
            return
        self._running = False
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.store.close()

    async def __aenter__(self) -> "Engine":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(events)`` after each commit; a failing listener hurts no other."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ the one door
    async def execute(self, command: Command, key: str | None = None) -> dict[str, Any]:
        """Run ``command``; with ``key`` (e.g. ``device:event_id``) a repeat gets the first
        reply again and has no second effect."""
        if not self._running:
            raise EngineStopped("the hall engine is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(command, key, future))
        return _unpack(await future)

    # ------------------------------------------------------------------ the writer
    async def _writer(self) -> None:
        """Take what is queued, apply it, commit it. The next batch is applied while the
        previous one commits; answers still go out in order, each after its own commit."""
        inflight: asyncio.Task | None = None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                prepared = await self._prepare(batch, inflight)
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one batch
                log.error("storage unavailable: %s", exc)
                self._hall = None
                self._fail(batch, StorageUnavailable("storage unavailable"))
                continue
            finally:
                if inflight is not None:
                    await inflight           # never raises: _commit answers its own callers
                    inflight = None
            if prepared.generation != self._generation:
                # the previous commit failed after this batch was applied on top of it
                self._fail(prepared.batch, StorageUnavailable("storage unavailable"))
                continue
            inflight = asyncio.create_task(self._commit(prepared))

    async def _prepare(self, batch: list[_Pending], inflight: asyncio.Task | None) -> _Prepared:
        if self._hall is None:
            if inflight is not None:
                await inflight
            await self._rebuild()
        while True:
            generation = self._generation
            try:
                results, replies = self._apply_all(batch)
                break
            except _Poisoned as p:  # a bug in the core: drop that command, redo the rest
                log.error("command %r failed: %r", batch[p.index].command, p.error)
                self._fail([batch[p.index]], StorageUnavailable("internal error"))
                batch = batch[:p.index] + batch[p.index + 1:]
                if inflight is not None:
                    await inflight
                await self._rebuild()
        # visible to the next batch at once; a failed commit rebuilds them from storage
        self._replies.update(replies)
        now = self.clock.now()
        prune = self._last_prune is None or now - self._last_prune > PRUNE_EVERY
        changes = self._hall.drain()
        rows = self.repo.rows(self.db.dialect.name, changes, replies)
        return _Prepared(batch, results, replies, changes, rows, now if prune else None,
                         generation)

    async def _commit(self, p: _Prepared) -> None:
        try:
            if p.rows or p.prune_at:
                await self.store.run(lambda conn: self._write(conn, p))
        except Exception as exc:  # noqa: BLE001 - nothing of the batch was committed
            log.error("commit failed, rebuilding from storage: %s", exc)
            self._hall = None
            self._generation += 1
            self._fail(p.batch, StorageUnavailable("storage unavailable"))
            return
        if p.prune_at:
            self._prune_memory(p.prune_at)
        self.stats.batches += 1
        for item, result in zip(p.batch, p.results, strict=True):
            self._answer(item, result)
        if p.changes.events:
            self._notify(p.changes.events)

    def _apply_all(self, batch: list[_Pending]) -> tuple[list[str | dict], dict]:
        hall = self._hall
        results: list[str | dict] = []
        replies: dict[str, tuple[datetime, str]] = {}
        for i, item in enumerate(batch):
            key = item.key
            if key is not None:
                seen = replies.get(key) or self._replies.get(key)
                if seen is not None:
                    self.stats.replayed += 1
                    results.append(seen[1])
                    continue
            now = self.clock.now()
            try:
                result: dict = {"ok": True, "reply": apply(hall, item.command, now)}
                self.stats.commands += 1
            except Refused as r:
                self.stats.refused += 1
                result = {"ok": False, "error": r.as_dict()}
            except Exception as exc:  # noqa: BLE001
                raise _Poisoned(i, exc) from exc
            if key is not None:
                encoded = json.dumps(result, ensure_ascii=False, default=str)
                replies[key] = (now, encoded)
                results.append(encoded)
            else:
                results.append(result)
        return results, replies

    def _fail(self, batch: list[_Pending], error: Exception) -> None:
        for item in batch:
            if not item.answered:
                self.stats.failed += 1
                self._answer(item, error=error)

    def _answer(self, item: _Pending, result: str | dict | None = None,
                error: Exception | None = None) -> None:
        """Answer a queued command exactly once (its caller may have gone away meanwhile)."""
        if item.answered:
            return
        item.answered = True
        if not item.future.done():
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)
        self._queue.task_done()

    def _notify(self, events: list[Event]) -> None:
        for listener in self._listeners:
            try:
                listener(events)
            except Exception:  # noqa: BLE001
                log.exception("listener %r failed", listener)

    # ------------------------------------------------------------------ storage
    def _write(self, conn: Connection, p: _Prepared) -> None:
        """One batch, in the storage runner's transaction."""
        self.repo.write(conn, p.rows)
        if p.prune_at:
            self.repo.prune_replies(conn, p.prune_at - REPLY_RETENTION)

    async def _rebuild(self) -> None:
        """Load the hall's state and remembered replies from storage (after a start, a
        failed commit, or a crash)."""
        self._hall = None
        now = self.clock.now()
        today = now.astimezone(self.config.hall.tz).date()
        hall, self._replies = await self.store.run(lambda conn: (
            self.repo.load(conn, self.config, today),
            self.repo.load_replies(conn, now - REPLY_RETENTION)))
        self._hall = hall

    def _prune_memory(self, now: datetime) -> None:
        self._last_prune = now
        cutoff = now - REPLY_RETENTION
        self._replies = {k: v for k, v in self._replies.items() if v[0] >= cutoff}

    # ------------------------------------------------------------------ the day
    async def _midnight(self) -> None:
        """Roll the day over at the hall's local midnight, even when nobody presses a key."""
        tz = self.config.hall.tz
        while True:
            local = self.clock.now().astimezone(tz)
            await self.clock.sleep_until(
                datetime.combine(local.date() + timedelta(days=1), time(0), tz))
            try:
                await self.execute(Command("rollover"))
            except (EngineStopped, StorageUnavailable) as exc:
                log.warning("rollover not done: %s", exc)


def _unpack(result: str | dict) -> dict[str, Any]:
    if isinstance(result, str):
        result = json.loads(result)
    if result["ok"]:
        return result["reply"]
    err = result["error"]
    raise Refused(err["code"], err["message"], err.get("message_en", ""))

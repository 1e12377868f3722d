"""The hall engine (大厅引擎): one serialised writer per hall.

Every command, whichever door it came in by, is queued here with who sent it and by which
door. One task takes what is queued, applies it to the pure core, writes everything the batch
changed in one transaction, commits, and only then answers the callers and tells the
listeners. Several queued commands share a commit (group commit), so durability costs one
fsync per batch, not per command.

Readers see committed state only: while a batch is applied but not yet committed the state is
"unsettled", and ``settled()`` waits until it is not. If a commit fails, the state is rebuilt
from storage, the listeners are told to show everything anew, and the batch's commands are
retried one by one, so that a command storage refuses hurts no other. The engine's scheduler
runs the timers the state asks for (rollover, rating time-outs) as commands.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.clock import Clock, SystemClock
from controller.config import HallConfig
from controller.core.commands import SYSTEM, Command, Rollover, Source
from controller.core.errors import EngineStopped, Refused, StorageUnavailable
from controller.core.events import Event, EventKind
from controller.core.hall import HallState
from controller.core.status_link import StatusLinks
from controller.logs import RateLimitedLog, describe_error
from controller.scheduler import Scheduler
from controller.storage.hall_lock import hold_hall
from controller.storage.repository import Repository, Rows
from controller.storage.runner import Runner, runner_for

log = logging.getLogger("yimen.engine")

#: How long a device's ``event_id`` is remembered (the protocol asks for at least 10 minutes).
REPLY_RETENTION = timedelta(hours=24)
PRUNE_EVERY = timedelta(minutes=10)
#: While storage cannot be read, how often the writer tries again (seconds).
RETRY_S = 1.0
#: How long a reader waits for the settled state before it is told storage is unavailable.
READ_TIMEOUT_S = 10.0
#: Events after which the timers the state needs may have changed.
_TIMER_EVENTS = frozenset({EventKind.ROLLOVER, EventKind.EVALUATION_OPENED, EventKind.RATED,
                           EventKind.UNRATED, EventKind.CONFIG_CHANGED, EventKind.CASE_OPENED,
                           EventKind.CASE_STEP, EventKind.CASE_WARNING, EventKind.FOLLOWUP_OPENED,
                           EventKind.FOLLOWUP_STEP, EventKind.FOLLOWUP_WARNING})


@dataclass(frozen=True, slots=True)
class Committed:
    """What listeners are told after each commit: its events, or ``rebuilt`` when the state
    was reloaded from storage (after a failed commit) and everything must be shown anew."""

    events: list[Event]
    rebuilt: bool = False


Listener = Callable[[Committed], None]


@dataclass(slots=True)
class _Pending:
    command: Command
    source: Source
    key: str | None
    future: asyncio.Future = field(repr=False)
    answered: bool = False
    fingerprint: str = ""            # of a keyed command: a reused key with another one is refused


@dataclass(slots=True)
class Stats:
    commands: int = 0
    refused: int = 0
    batches: int = 0
    replayed: int = 0
    failed: int = 0
    isolated: int = 0        # batches retried one command at a time after a failed commit


@dataclass(slots=True)
class _Prepared:
    """A batch applied to the core, its rows copied out, waiting for its commit."""

    batch: list[_Pending]
    results: list[str | dict]
    events: list[Event]
    rows: Rows
    prune: datetime | None
    generation: int                  # of the state it was applied to
    config: HallConfig               # the live configuration once it is committed


class _Poisoned(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        self.index, self.error = index, error


class Engine:
    """Runs one hall: ``await engine.execute(command, source)`` returns the reply once
    committed, or raises ``Refused`` (nothing changed) or ``StorageUnavailable`` (nothing
    committed)."""

    def __init__(self, config: HallConfig, db: AsyncEngine, clock: Clock | None = None,
                 max_batch: int | None = None, status_key: bytes | None = None) -> None:
        self.config = config
        #: the key of the tickets' status page addresses (``core/status_link.py``): the hall's,
        #: kept in its data folder; else one of this engine's own
        self.status_key = status_key or secrets.token_bytes(32)
        self.db = db
        self.clock = clock or SystemClock()
        self.noisy = RateLimitedLog(log)          # this engine's repeated failures, rate-limited
        self.max_batch = max_batch or config.storage.max_batch
        self.repo = Repository(config.hall.id)
        self.stats = Stats()
        self.store: Runner = runner_for(db)
        self.scheduler = Scheduler(self.clock, self._fire)
        self._hall: HallState | None = None
        self._settled = asyncio.Event()
        self._unsettled = 0          # batches applied and not yet committed
        self._generation = 0         # the live state's: a new one after every rebuild
        self._waiting = 0            # readers waiting for the settled state
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._replies: dict[str, tuple[datetime, str]] = {}
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self._last_prune: datetime | None = None
        self._lock: AsyncConnection | None = None

    # ------------------------------------------------------------------ life cycle
    @property
    def hall(self) -> HallState:
        """The committed state, for reading only, without waiting: after ``await settled()``
        with no ``await`` in between. (A listener is told of a commit while the next batch may
        already be applied on top: it reads the events it is given, not this.)"""
        if self._hall is None:
            if self._running:
                raise StorageUnavailable("the hall is being reloaded from storage")
            raise EngineStopped("the engine has not started")
        if not self._settled.is_set():
            raise StorageUnavailable("a batch is being committed; await settled() first")
        return self._hall

    async def settled(self, timeout: float = READ_TIMEOUT_S) -> HallState:
        """The committed state, once no batch is between apply and commit; after ``timeout``
        seconds (storage unreadable) ``StorageUnavailable``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if not self._running and self._hall is None:
                raise EngineStopped("the engine has not started")
            if not self._settled.is_set():
                self._waiting += 1
                try:
                    left = deadline - asyncio.get_running_loop().time()
                    await asyncio.wait_for(self._settled.wait(), max(0.0, left))
                except TimeoutError:
                    raise StorageUnavailable("the hall's state is not available") from None
                finally:
                    self._waiting -= 1
            # woken by a commit, but the next batch may have been applied since: look again
            if self._settled.is_set() and self._hall is not None:
                return self._hall

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Load the hall and start taking commands; on a shared database, only when no other
        server runs this hall (``HallInUse``)."""
        self._lock = await hold_hall(self.db, self.config.hall.id)
        await self._rebuild()
        self._running = True
        self._tasks = [asyncio.create_task(self._writer(), name="yimen-writer"),
                       asyncio.create_task(self.scheduler.run(), name="yimen-scheduler")]
        await self.execute(Rollover(), SYSTEM)   # closes days that passed while stopped

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
        if self._lock is not None:
            await self._lock.invalidate()     # its session ends, not back to the pool: the lock goes
            self._lock = None

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(committed)`` after each commit; a failing listener hurts no other."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ the one door
    async def execute(self, command: Command, source: Source, key: str | None = None) -> dict[str, Any]:
        """Run ``command`` for ``source``; with ``key`` (e.g. ``dev:{device}:{event_id}``) a
        repeat gets the first reply again and has no second effect."""
        if not self._running:
            raise EngineStopped("the hall engine is not running")
        future = asyncio.get_running_loop().create_future()
        fingerprint = _fingerprint(command) if key is not None else ""   # outside the writer
        self._queue.put_nowait(_Pending(command, source, key, future, fingerprint=fingerprint))
        return _unpack(await future)

    async def _fire(self, command: Command) -> bool:
        """A due timer's command, sent by the system through the scheduler."""
        try:
            await self.execute(command, SYSTEM)
        except Refused as r:
            log.warning("timer %s refused: %s", command.name, r)
        except (StorageUnavailable, EngineStopped) as exc:
            log.warning("timer %s not done: %s", command.name, exc)
            return False
        return True

    # ------------------------------------------------------------------ the writer
    async def _writer(self) -> None:
        """Take what is queued, apply it, commit it, answer, tell the listeners. While a batch
        commits, the next one is applied on top of it — unless readers are waiting for the
        settled state: then they go first. The writer outlives any one batch."""
        inflight: asyncio.Task[bool] | None = None       # the previous batch's commit
        batch: list[_Pending] = []
        while True:
            try:
                batch = await self._next_batch()
                if not batch:
                    continue
                if inflight is not None and (self._waiting or self._hall is None):
                    await inflight
                    inflight = None
                    await asyncio.sleep(0)             # the readers woken by the commit
                prepared = await self._prepare(batch, inflight)
                if inflight is not None:
                    await inflight
                    inflight = None
                if prepared is not None and prepared.generation != self._generation:
                    # the state under this batch was rolled back: apply it to the stored one
                    prepared = await self._prepare(prepared.batch, None)
                if prepared is not None:
                    inflight = asyncio.create_task(self._commit(prepared, len(prepared.batch) > 1))
                    if self._queue.empty():
                        await inflight                 # nothing to overlap: settle now
                        inflight = None
                        await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug here must not stop the hall
                self.noisy.exception("writer", "the writer failed on a batch; rebuilding from storage")
                if inflight is not None:
                    await asyncio.gather(inflight, return_exceptions=True)
                    inflight = None
                self._fail(batch, StorageUnavailable("internal error"))
                await self._recover()

    async def _next_batch(self) -> list[_Pending]:
        """What is queued, up to ``max_batch``; while the state cannot be loaded, retry that
        every ``RETRY_S`` even if nothing comes (readers are waiting for it)."""
        if self._hall is None:
            try:
                first = await asyncio.wait_for(self._queue.get(), RETRY_S)
            except TimeoutError:
                await self._recover()
                return []
        else:
            first = await self._queue.get()
        batch = [first]
        while len(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _prepare(self, batch: list[_Pending], inflight: asyncio.Task[bool] | None
                       ) -> _Prepared | None:
        """Apply ``batch`` and copy out its rows; None when it was answered already."""
        if self._hall is None and not await self._recover(notify=False):
            self._fail(batch, StorageUnavailable("storage unavailable"))
            return None
        try:
            results, replies = self._apply_all(batch)
            assert self._hall is not None
            changes = self._hall.drain()
            now = self.clock.now()
            prune = now if self._last_prune is None or now - self._last_prune > PRUNE_EVERY else None
            rows = self.repo.rows(self.db.dialect.name, changes, replies, self._hall.config)
        except _Poisoned as p:    # a bug in the core: that command alone fails
            log.error("command %s failed", batch[p.index].command.name, exc_info=p.error)
            self._fail([batch[p.index]], StorageUnavailable("internal error"))
            rest = batch[:p.index] + batch[p.index + 1:]
        except Exception as exc:  # noqa: BLE001 - a bug: the batch's rows cannot be built
            self.noisy.exception("prepare", "batch of %d commands not applied: %s", len(batch), exc)
            self._fail(batch, StorageUnavailable("internal error"))
            rest = []
        else:
            self._replies.update(replies)  # seen by the next batch; a failed commit reloads them
            return _Prepared(batch, results, changes.events, rows, prune, self._generation,
                             self._hall.config)
        # half applied: what is being committed first, then the rest on the stored state
        if inflight is not None:
            await asyncio.gather(inflight, return_exceptions=True)
        if not await self._recover(notify=False):
            self._fail(rest, StorageUnavailable("storage unavailable"))
            return None
        return await self._prepare(rest, None) if rest else None

    async def _commit(self, p: _Prepared, isolate: bool) -> bool:
        """Commit a prepared batch, answer it and tell the listeners. If the commit fails, the
        state is rebuilt from storage and, with ``isolate``, the batch's commands are run again
        one by one so that only a command storage refuses is refused. False: the state was
        rolled back to what is stored."""
        try:
            if p.rows or p.prune:
                await self.store.run(lambda conn: self._write(conn, p.rows, p.prune))
        except Exception as exc:  # noqa: BLE001 - nothing of the batch was committed
            self.noisy.error("commit", "commit of %d commands failed, rebuilding from storage: %s",
                        len(p.batch), describe_error(exc))
            if not await self._recover():
                self._fail(p.batch, StorageUnavailable("storage unavailable"))
            elif isolate:
                self.stats.isolated += 1
                for item in p.batch:
                    again = await self._prepare([item], None)
                    if again is not None:
                        await self._commit(again, False)
            else:
                self._fail(p.batch, StorageUnavailable("storage unavailable"))
            return False
        if p.prune:
            self._prune_memory(p.prune)
        self.stats.batches += 1
        if p.generation == self._generation:
            self._unsettled -= 1
            if self._unsettled == 0:
                self._settled.set()
        if p.generation == self._generation:
            self.config = p.config           # listeners see the configuration committed
        for item, result in zip(p.batch, p.results, strict=True):
            self._answer(item, result)
        if p.events:
            self._notify(Committed(p.events))
            if any(e.kind in _TIMER_EVENTS for e in p.events) and self._hall is not None:
                try:
                    self.scheduler.follow(self._hall.deadlines())
                except Exception:  # noqa: BLE001 - the next rebuild sets them again
                    self.noisy.exception("timers", "the timers could not be followed")
        return True

    def _apply_all(self, batch: list[_Pending]) -> tuple[list[str | dict], dict]:
        hall = self._hall
        assert hall is not None
        self._unsettled += 1
        self._settled.clear()                 # applied but not committed: readers wait
        results: list[str | dict] = []
        replies: dict[str, tuple[datetime, str]] = {}
        for i, item in enumerate(batch):
            key, fingerprint = item.key, item.fingerprint
            if key is not None:
                seen = replies.get(key) or self._replies.get(key)
                if seen is not None:
                    self.stats.replayed += 1
                    results.append(seen[1] if json.loads(seen[1]).get("fp", fingerprint) == fingerprint
                                   else _REUSED)
                    continue
            now = self.clock.now()
            try:
                result: dict = {"ok": True, "reply": hall.apply(item.command, now, item.source)}
                self.stats.commands += 1
            except Refused as r:
                self.stats.refused += 1
                result = {"ok": False, "error": r.as_dict()}
            except Exception as exc:  # noqa: BLE001
                raise _Poisoned(i, exc) from exc
            if key is not None:
                encoded = json.dumps({**result, "fp": fingerprint}, ensure_ascii=False, default=str)
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

    def _notify(self, committed: Committed) -> None:
        for listener in self._listeners:
            try:
                listener(committed)
            except Exception:  # noqa: BLE001 - one failing listener hurts no other
                self.noisy.exception(f"listener:{listener!r}", "listener %r failed", listener)

    # ------------------------------------------------------------------ storage
    def _write(self, conn: Connection, rows: Rows, prune: datetime | None) -> None:
        """One batch, in the storage runner's transaction."""
        self.repo.write(conn, rows)
        if prune:
            self.repo.prune_replies(conn, prune - REPLY_RETENTION)

    async def _recover(self, notify: bool = True) -> bool:
        """The state as stored (after a failed commit or a bug), and, with ``notify``, every
        listener told to show it anew; False when storage cannot be read (the writer tries
        again every ``RETRY_S``)."""
        try:
            await self._rebuild()
        except Exception as exc:  # noqa: BLE001 - tried again
            self.noisy.error("storage", "storage unavailable: %s", describe_error(exc))
            return False
        if notify:
            self._notify(Committed([], rebuilt=True))
        return True

    async def _rebuild(self) -> None:
        """Load the hall's state and remembered replies from storage (after a start, a
        failed commit, or a crash), and the timers that state needs."""
        self._hall = None
        self._generation += 1          # whatever was applied and not committed is gone
        self._settled.clear()
        self._unsettled = 0
        now = self.clock.now()
        today = now.astimezone(self.config.hall.tz).date()
        hall, self._replies = await self.store.run(lambda conn: (
            self.repo.load(conn, self.config, today, now),
            self.repo.load_replies(conn, now - REPLY_RETENTION)))
        hall.links = StatusLinks(self.status_key)
        self._hall = hall
        self.config = hall.config       # the database's, once stored (the file's only seeds it)
        self._settled.set()
        self.scheduler.follow(hall.deadlines())

    def _prune_memory(self, now: datetime) -> None:
        self._last_prune = now
        cutoff = now - REPLY_RETENTION
        self._replies = {k: v for k, v in self._replies.items() if v[0] >= cutoff}


#: A key used again for another command (not remembered: the first reply stays the key's).
_REUSED = {"ok": False, "error": Refused(
    "idempotency_key_reused", "该请求编号已用于另一请求",
    "this key was used for another request").as_dict()}


def _fingerprint(command: Command) -> str:
    """What a keyed command was, remembered with its reply: a key that comes again with
    another command is refused, not answered with the first one's reply."""
    body = json.dumps(command.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{command.name}:{body}".encode()).hexdigest()[:16]


def _unpack(result: str | dict) -> dict[str, Any]:
    if isinstance(result, str):
        result = json.loads(result)
    assert isinstance(result, dict)
    if result["ok"]:
        return result["reply"]
    err = result["error"]
    raise Refused(err["code"], err["message"], err.get("message_en", ""),
                  tuple((p["key"], p["message"], p["message_en"]) for p in err.get("problems", ())))

"""SQLite's write-ahead log checkpointed off the commit path (检查点)."""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("yimen.storage")

#: How often the checkpointer copies the WAL into the database, off the commit path.
CHECKPOINT_EVERY_S = 1.0
#: WAL pages past which the checkpointer also restarts the log (a short wait for the writer).
RESTART_PAGES = 4096


class Checkpointer:
    """WAL checkpoints in a thread and on a connection of their own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, so
    every few hundred batches one commit also copied the WAL into the database and fsynced
    both: a 1-15 ms stall for that batch and everything queued behind it. The writer's
    automatic checkpoint is off; this thread runs a PASSIVE checkpoint (it never takes the
    write lock, so commits go on meanwhile) every ``every`` seconds. Under a steady stream of
    commits a passive checkpoint never finds the log idle enough to start it over, so once
    the log passes ``RESTART_PAGES`` and the passive one copied all of it, a RESTART checkpoint
    follows, so the next commit starts the log from the top. It never waits (busy time-out
    zero): while a reader holds an old snapshot (a long report, say) it gives up at once and
    tries on the next tick, instead of holding the engine's commits behind it."""

    def __init__(self, path: str, every: float = CHECKPOINT_EVERY_S) -> None:
        self._path, self._every = path, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="yimen-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        con: sqlite3.Connection | None = None
        while not self._stop.wait(self._every):
            try:
                if con is None:
                    con = sqlite3.connect(self._path, isolation_level=None,
                                          check_same_thread=False)
                    con.execute("PRAGMA busy_timeout=0")
                _busy, pages, done = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if pages >= RESTART_PAGES and done == pages:
                    con.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            except sqlite3.Error as exc:    # retried on the next tick, on a new connection
                log.warning("WAL checkpoint failed: %s", exc)
                if con is not None:
                    con.close()
                con = None
        if con is not None:
            try:
                con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()   # a last one
            except sqlite3.Error:
                pass
            con.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

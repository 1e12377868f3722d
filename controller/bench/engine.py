"""``yimen bench engine``: durable commands per second through the engine, next to two
baselines measured in the same run (a bare SQLAlchemy async loop and a plain sqlite3 loop,
each one insert and one commit per ticket) on the same disk with the same durability."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import DateTime, Integer, String, delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from controller.config import HallConfig, parse_config
from controller.core.commands import CallNext, Command, Login, Origin, Source, Take
from controller.engine import Engine
from controller.storage.db import database_url, open_database, upgrade
from controller.storage.schema import metadata

BENCH = Source("bench", Origin.CLI)


def bench_config(windows: int = 50, services: str = "ABCDE", hall: str = "bench") -> HallConfig:
    """A generated hall big enough for the benchmark: caps out of the way, open all day."""
    return parse_config({
        "hall": {"id": hall, "name": "压测大厅", "national_calendar": False},
        "services": [{"code": s, "name": f"业务{s}", "daily_cap": 99999} for s in services],
        "windows": [{"id": str(w), "services": [services[(w - 1) % len(services)]]}
                    for w in range(1, windows + 1)],
        "clerks": [{"id": f"{9000 + w}", "name": f"员{w}", "windows": [str(w)]}
                   for w in range(1, windows + 1)],
    }, "<bench>")


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(p) - 1] \
            if len(self.latencies_ms) > 1 else self.latencies_ms[0]


# ---------------------------------------------------------------------- baselines
def plain_sqlite3(folder: Path, count: int, synchronous: str) -> Result:
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / "plain.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute("CREATE TABLE t (id TEXT PRIMARY KEY, service TEXT, seq INTEGER, issued_at TEXT)")
    lat = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        con.execute("BEGIN")
        con.execute("INSERT INTO t VALUES (?, ?, ?, ?)",
                    (f"A{i}", "A", i, datetime.now(UTC).isoformat()))
        con.execute("COMMIT")
        lat.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - start
    con.close()
    return Result("plain sqlite3 loop", count, seconds, lat)


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    """The baseline's ticket row: one ORM object, one insert, one commit."""

    __tablename__ = "t"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    service: Mapped[str] = mapped_column(String)
    seq: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


async def bare_sqlalchemy(folder: Path, count: int, synchronous: str) -> Result:
    engine = open_database(database_url(None, folder / "orm"), synchronous)
    async with engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    lat = []
    start = time.perf_counter()
    async with sessions() as session:
        for i in range(count):
            t0 = time.perf_counter()
            session.add(_Row(id=f"A{i}", service="A", seq=i, issued_at=datetime.now(UTC)))
            await session.commit()
            lat.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - start
    await engine.dispose()
    return Result("bare SQLAlchemy async loop", count, seconds, lat)


# ---------------------------------------------------------------------- the engine
async def _drive(engine: Engine, name: str, commands: list[Command], concurrency: int) -> Result:
    """``concurrency`` devices, each sending its share of commands one after another."""
    lat: list[float] = []
    refused = 0

    async def device(mine: list[Command]) -> None:
        nonlocal refused
        for command in mine:
            t0 = time.perf_counter()
            try:
                await engine.execute(command, BENCH)
            except Exception:  # noqa: BLE001 - a refusal still went through the engine
                refused += 1
            lat.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*[device(commands[i::concurrency]) for i in range(concurrency)])
    seconds = time.perf_counter() - start
    if refused:
        raise RuntimeError(f"{name}: {refused} commands were refused")
    return Result(name, len(commands), seconds, lat)


async def _paced(engine: Engine, rate: float, seconds: float, windows: int) -> Result:
    """Commands arriving at a steady ``rate`` per second: take, and call-next at a window."""
    lat: list[float] = []
    total = int(rate * seconds)

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        if i % 2 == 0:
            await engine.execute(Take(service="ABCDE"[i // 2 % 5]), BENCH)
        else:
            try:
                await engine.execute(CallNext(window=str(1 + i // 2 % windows)), BENCH)
            except Exception:  # noqa: BLE001 - an empty line is still a command
                pass
        lat.append((time.perf_counter() - t0) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return Result(f"paced mix at {rate:.0f}/s", total, time.perf_counter() - start, lat)


async def engine_runs(folder: Path, tickets: int, concurrency: int, synchronous: str,
                      db_url: str | None, windows: int = 50) -> list[Result]:
    config = bench_config(windows, hall=f"bench-{uuid.uuid4().hex[:8]}")
    db = open_database(database_url(db_url, folder / "engine"), synchronous)
    await upgrade(db)
    engine = Engine(config, db)
    await engine.start()
    try:
        for w in range(1, windows + 1):
            await engine.execute(Login(window=str(w), staff=str(9000 + w)), BENCH)
        gc.collect()
        gc.freeze()   # as the server does after start-up: what was loaded is not rescanned
        paced = await _paced(engine, 200, 5, windows)
        takes: list[Command] = [Take(service="ABCDE"[i % 5]) for i in range(tickets)]
        issue = await _drive(engine, "engine: take (issue ticket)", takes, concurrency)
        per_window = (tickets // windows) - 1
        calls: list[Command] = [CallNext(window=str(1 + i % windows))
                                for i in range(per_window * windows)]
        call = await _drive(engine, "engine: call_next", calls, windows)
    finally:
        await engine.stop()
        if db_url:   # leave a shared database as it was
            async with db.begin() as conn:
                for table in metadata.sorted_tables:
                    await conn.execute(delete(table).where(table.c.hall == config.hall.id))
        await db.dispose()
    return [issue, call, paced]


# ---------------------------------------------------------------------- report
async def run(tickets: int = 20000, concurrency: int = 200, baseline_count: int = 2000,
              synchronous: str = "FULL", db_url: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="yimen-bench-", dir=".") as tmp:
        folder = Path(tmp)
        before = plain_sqlite3(folder / "before", baseline_count, synchronous)
        orm = await bare_sqlalchemy(folder, max(200, baseline_count // 4), synchronous)
        issue, call, paced = await engine_runs(folder, tickets, concurrency, synchronous, db_url)
        after = plain_sqlite3(folder / "after", baseline_count, synchronous)
    # the machine's speed drifts: the baseline is taken before and after the engine's runs
    plain = Result("plain sqlite3 loop (before and after)", before.count + after.count,
                   before.seconds + after.seconds, before.latencies_ms + after.latencies_ms)
    durable = min(issue.rate, call.rate)
    checks = [
        ("≥ 5,000 durable commands/s", durable >= 5000, f"{durable:,.0f}/s"),
        ("≥ 3× the bare SQLAlchemy loop", durable >= 3 * orm.rate, f"{durable / orm.rate:.1f}×"),
        ("≥ 1.2× the plain sqlite3 loop", durable >= 1.2 * plain.rate, f"{durable / plain.rate:.2f}×"),
        ("p99 < 10 ms at 200 commands/s", paced.pct(99) < 10, f"{paced.pct(99):.2f} ms"),
    ]
    return {"results": [plain, orm, issue, call, paced], "checks": checks,
            "synchronous": synchronous, "db": db_url or "sqlite (WAL)"}


def report(out: dict) -> str:
    lines = [f"storage: {out['db']}, synchronous={out['synchronous']}", "",
             "| run | commands | per second | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|"]
    for r in out["results"]:
        lines.append(f"| {r.name} | {r.count:,} | {r.rate:,.0f} | {r.pct(50):.2f} | {r.pct(99):.2f} |")
    lines += ["", "| target | met | measured |", "|---|---|---|"]
    for name, ok, measured in out["checks"]:
        lines.append(f"| {name} | {'yes' if ok else 'NO'} | {measured} |")
    return "\n".join(lines)

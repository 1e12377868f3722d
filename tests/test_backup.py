"""``yimen backup`` and ``yimen restore``: a backup taken while tickets are being taken
restores to a hall with every ticket acknowledged before it began, and numbering goes on from
there; restore refuses what it should, in one line."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main
from controller.clock import FakeClock
from controller.core.commands import Origin, Source, Take
from controller.core.errors import Refused
from controller.engine import Engine
from controller.startup import data_folder_lock
from controller.storage import backup
from controller.storage.db import open_database, upgrade
from tests.conftest import PG_REQUIRED, pg_database
from tests.helpers import MONDAY_9, demo_config
from tests.waiting import wait_for

SRC = Source("user:t", Origin.CLI)
SERVICES = "ABCDE"
STAMPED = re.compile(r"yimen-\d{8}-\d{6}(-\d+)?\.(db|dump)$")


class Burst:
    """One kiosk per service taking tickets as fast as the engine acknowledges them, until
    ``stop()``; ``acked`` are the numbers acknowledged, in order."""

    def __init__(self, engine: Engine, pause: float = 0.0) -> None:
        self.engine, self.pause = engine, pause
        self.acked: list[str] = []
        self._going = True
        self._tasks = [asyncio.create_task(self._take(s)) for s in SERVICES]

    async def _take(self, service: str) -> None:
        while self._going:
            try:
                out = await self.engine.execute(Take(service=service), SRC)
            except Refused:                                   # the day's cap: this kiosk is done
                return
            self.acked.append(out["ticket"]["number"])
            await asyncio.sleep(self.pause)

    async def stop(self) -> None:
        self._going = False
        await asyncio.gather(*self._tasks)


async def open_hall(url: str, clock) -> Engine:  # noqa: ANN001
    db = open_database(url)
    await upgrade(db)
    engine = Engine(demo_config(), db, clock)
    await engine.start()
    return engine


async def close_hall(engine: Engine) -> None:
    await engine.stop()
    await engine.db.dispose()


async def during_a_burst(url: str, clock, take_backup, pause: float = 0.0):  # noqa: ANN001
    """Take tickets on the hall at ``url``; once 100 are acknowledged, note them and await
    ``take_backup()`` while the burst goes on. (numbers acknowledged before the backup began,
    numbers acknowledged while it ran, every number acknowledged, what take_backup returned)"""
    engine = await open_hall(url, clock)
    burst = Burst(engine, pause)
    try:
        await wait_for(lambda: len(burst.acked) >= 100, 10, "100 acknowledged tickets",
                       interval=0.005)
        before = list(burst.acked)
        made = await take_backup()
        during = burst.acked[len(before):]
        await wait_for(lambda: len(burst.acked) >= len(before) + len(during) + 20, 10,
                       "the burst to go on after the backup", interval=0.005)
    finally:
        await burst.stop()
        await close_hall(engine)
    return before, during, burst.acked, made


async def check_restored(url: str, clock, before: list[str], acked: list[str]) -> None:  # noqa: ANN001
    """The restored hall has every ticket acknowledged before the backup, nothing that was
    never acknowledged, no gap in any service's numbers, and numbering goes on after them."""
    engine = await open_hall(url, clock)
    try:
        numbers = {t.number for t in engine.hall.queue.all.values()}
        assert set(before) <= numbers, sorted(set(before) - numbers)[:10]
        assert numbers <= set(acked)
        for service in SERVICES:
            seqs = sorted(t.seq for t in engine.hall.queue.all.values()
                          if t.origin_service == service)
            assert seqs == list(range(1, len(seqs) + 1)), f"a gap in {service}'s numbers"
            out = await engine.execute(Take(service=service), SRC)
            assert out["ticket"]["number"] == f"{service}{len(seqs) + 1:03d}"
            assert out["ticket"]["number"] not in numbers
    finally:
        await close_hall(engine)


def one_line(err: str) -> str:
    """What ``yimen`` said on a failure: exactly one line, no traceback, zh-CN and English."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(r"[\u4e00-\u9fff]", lines[0]) and re.search(r" / [a-z]", lines[0]), err
    return lines[0]


async def ayimen(*args: str) -> tuple[int, str, str]:
    """``python -m controller.cli *args`` in a process of its own, without blocking the loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def pg_tools() -> None:
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            if PG_REQUIRED:
                pytest.fail(f"{tool} is required here (YIMEN_REQUIRE_SERVICES) but not installed")
            pytest.skip(f"{tool} is not installed")


def plain(url: str) -> str:
    """The URL as an operator types it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


# ---------------------------------------------------------------- during a burst


async def test_sqlite_backup_during_a_burst_restores_every_acknowledged_ticket(tmp_path, clock):
    url = backup.hall_url(None, tmp_path / "hall")
    before, _, acked, written = await during_a_burst(
        url, clock, lambda: asyncio.to_thread(backup.backup, url, f"{tmp_path}/backups/"))
    assert STAMPED.search(written.path.name) and written.size == written.path.stat().st_size
    assert os.listdir(tmp_path / "backups") == [written.path.name]     # no temporary file left

    fresh = backup.hall_url(None, tmp_path / "restored")
    restored = await backup.restore(written.path, fresh)
    assert restored.revision is not None
    assert sorted(os.listdir(tmp_path / "restored")) == ["yimen.db", "yimen.lock"]
    await check_restored(fresh, clock, before, acked)


@pytest.mark.slow                            # two yimen processes and pg_dump: ~3 s
async def test_postgresql_backup_during_a_burst_restores_every_acknowledged_ticket(
        tmp_path, clock, pg_url):
    pg_tools()
    before, during, acked, (rc, out, err) = await during_a_burst(
        pg_url, clock, lambda: ayimen("backup", str(tmp_path), "--db", plain(pg_url)),
        pause=0.003)
    assert rc == 0, err
    assert during, "the burst must go on while the backup runs"
    [dump] = list(tmp_path.iterdir())
    assert STAMPED.search(dump.name) and dump.suffix == ".dump" and str(dump) in out

    async with pg_database() as fresh:
        other = open_database(fresh)                  # a server still connected to it
        try:
            async with other.connect():
                rc, _, err = await ayimen("restore", str(dump), "--db", plain(fresh))
                assert rc != 0 and "in use by 1 other connections" in one_line(err)
        finally:
            await other.dispose()
        rc, out, err = await ayimen("restore", str(dump), "--db", plain(fresh))
        assert rc == 0 and "revision" in out, err
        await check_restored(fresh, clock, before, acked)
        rc, _, err = await ayimen("restore", str(dump), "--db", plain(fresh))
        assert rc != 0 and "--force" in one_line(err)


@pytest.mark.slow                            # three yimen processes: ~3 s
async def test_cli_backup_of_a_running_hall_and_restore(tmp_path, clock):
    data, restored = tmp_path / "hall", tmp_path / "restored"
    url = backup.hall_url(None, data)
    with data_folder_lock(data):                               # as `yimen serve` holds it
        before, during, acked, (rc, out, err) = await during_a_burst(
            url, clock, lambda: ayimen("backup", f"{tmp_path}/nightly/", "--data", str(data)),
            pause=0.003)
        assert rc == 0 and err == "", err
        assert during, "the burst must go on while the backup runs"
        [copy] = list((tmp_path / "nightly").iterdir())
        assert STAMPED.search(copy.name) and f"{copy} " in out
        assert re.search(r"\(\d[\d,]* B\)", out), out                        # and its size

        # the hall's own folder, while its server runs
        rc, _, err = await ayimen("restore", str(copy), "--data", str(data), "--force")
        assert rc != 0 and "stop it first" in one_line(err)

    rc, out, err = await ayimen("restore", str(copy), "--data", str(restored))
    assert rc == 0 and str(restored / "yimen.db") in out, err
    await check_restored(backup.hall_url(None, restored), clock, before, acked)


# ---------------------------------------------------------------- what restore refuses


@pytest.fixture(scope="module")
def a_hall(tmp_path_factory) -> Path:
    """A hall with one ticket, and its backup ``hall.db`` beside it."""
    folder = tmp_path_factory.mktemp("a_hall")

    async def one_ticket() -> None:
        engine = await open_hall(backup.hall_url(None, folder / "hall"), FakeClock(MONDAY_9))
        await engine.execute(Take(service="A"), SRC)
        await close_hall(engine)

    asyncio.run(one_ticket())
    backup.backup(backup.hall_url(None, folder / "hall"), folder / "hall.db")
    return folder


@pytest.fixture
def hall_backup(tmp_path, a_hall) -> Path:
    """``tmp_path/hall``: a hall with one ticket; returns its backup, ``tmp_path/hall.db``."""
    shutil.copytree(a_hall / "hall", tmp_path / "hall")
    shutil.copyfile(a_hall / "hall.db", tmp_path / "hall.db")
    return tmp_path / "hall.db"


def tickets(folder: Path) -> list[str]:
    with sqlite3.connect(folder / "yimen.db") as conn:
        return [row[0] for row in conn.execute("SELECT number FROM tickets ORDER BY number")]


def test_backup_into_a_folder_makes_a_timestamped_file(tmp_path, hall_backup, capsys):
    (tmp_path / "backups").mkdir()
    for _ in range(2):
        assert main(["backup", str(tmp_path / "backups"), "--data", str(tmp_path / "hall")]) == 0
    out = capsys.readouterr().out
    made = sorted((tmp_path / "backups").iterdir())
    assert len(made) == 2 and all(STAMPED.search(p.name) for p in made)   # never overwritten
    assert all(f"{p} " in out for p in made)
    assert f"({made[0].stat().st_size:,} B)" in out


def test_backup_of_a_folder_without_a_hall_says_so(tmp_path, capsys):
    assert main(["backup", str(tmp_path / "out.db"), "--data", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "out.db").exists()


def test_restore_refuses_an_existing_database_without_force(tmp_path, hall_backup, capsys):
    target = tmp_path / "other"
    assert main(["restore", str(hall_backup), "--data", str(target)]) == 0
    with sqlite3.connect(target / "yimen.db") as conn:
        conn.execute("DELETE FROM tickets")
    capsys.readouterr()

    assert main(["restore", str(hall_backup), "--data", str(target)]) == 1
    assert "--force" in one_line(capsys.readouterr().err)
    assert tickets(target) == []                                   # left as it was

    assert main(["restore", str(hall_backup), "--data", str(target), "--force"]) == 0
    assert tickets(target) == ["A001"]


@pytest.mark.parametrize("kind", ["text", "sqlite", "damaged", "empty"])
def test_restore_refuses_what_is_not_a_yimen_database(tmp_path, hall_backup, capsys, kind):
    src = tmp_path / "src.db"
    if kind == "text":
        src.write_text("hello, this is no database\n" * 100)
    elif kind == "sqlite":
        with sqlite3.connect(src) as conn:
            conn.execute("CREATE TABLE tickets (number TEXT)")
        conn.close()
    elif kind == "damaged":
        data = bytearray(hall_backup.read_bytes())
        data[4096 * 3: 4096 * 6] = b"\xa5" * (4096 * 3)            # tables' pages overwritten
        src.write_bytes(bytes(data))
    else:
        src.write_bytes(b"")
    target = tmp_path / "hall"                                   # a hall that must survive it
    assert main(["restore", str(src), "--data", str(target), "--force"]) == 1
    line = one_line(capsys.readouterr().err)
    assert str(src) in line and ("not a Yimen database" in line or "damaged" in line), line
    assert tickets(target) == ["A001"]
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]


def test_restore_refuses_while_a_server_runs_on_the_folder(tmp_path, hall_backup, capsys):
    with data_folder_lock(tmp_path / "hall"):
        assert main(["restore", str(hall_backup), "--data", str(tmp_path / "hall"),
                     "--force"]) == 1
    assert f"process {os.getpid()}" in one_line(capsys.readouterr().err)
    assert tickets(tmp_path / "hall") == ["A001"]


def test_restore_replaces_a_database_whose_server_was_killed(tmp_path, hall_backup, capsys):
    """The write-ahead log a killed server leaves beside its database is not replayed onto
    the restored file."""
    target = tmp_path / "killed"
    assert main(["restore", str(hall_backup), "--data", str(target)]) == 0
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, sqlite3\n"
        f"conn = sqlite3.connect({str(target / 'yimen.db')!r}, isolation_level=None)\n"
        "conn.execute('PRAGMA journal_mode=WAL'); conn.execute('PRAGMA wal_autocheckpoint=0')\n"
        "conn.execute('DELETE FROM tickets')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")], timeout=30)
    assert killed.returncode == -signal.SIGKILL
    assert (target / "yimen.db-wal").stat().st_size > 0

    assert main(["restore", str(hall_backup), "--data", str(target), "--force"]) == 0
    assert tickets(target) == ["A001"]
    with sqlite3.connect(target / "yimen.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_postgresql_backup_is_not_restored_into_sqlite(tmp_path, capsys):
    src = tmp_path / "hall.dump"
    src.write_bytes(b"PGDMP\x01\x0f\x00" + b"\x00" * 100)
    assert main(["restore", str(src), "--data", str(tmp_path / "hall")]) == 1
    assert "--db postgresql://" in one_line(capsys.readouterr().err)

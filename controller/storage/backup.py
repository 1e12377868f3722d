"""Backups of a hall's database (备份与恢复): ``yimen backup`` and ``yimen restore``.

SQLite: SQLite's online backup API copies the hall's file, write-ahead log included, in one
step under one read transaction, so the copy holds every transaction committed before it
began while the server goes on committing (WAL readers never block the writer). PostgreSQL:
``pg_dump --format=custom``, whose snapshot is taken when it starts.

Every copy is written under a temporary name beside its destination, synced and renamed into
place, so a destination is either the old file or the whole new one. A restore checks that
what it brings back is a Yimen database, refuses to replace an existing database without
``force`` and, on SQLite, while a server holds the data folder's lock; then it brings the
schema up to the head as the server does at start.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from controller.core.errors import YimenError
from controller.storage.db import database_url
from controller.storage.private import private_file, private_folder

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
#: How long the backup's read transaction waits for a lock (a WAL reader rarely waits at all).
BUSY_TIMEOUT_MS = 10_000


class BackupError(YimenError, RuntimeError):
    """A backup or restore that did not happen; ``message`` (zh-CN) and ``message_en`` say
    why in one line each. Nothing was replaced, unless the message says otherwise."""

    def __init__(self, message: str, message_en: str) -> None:
        super().__init__(f"{message} / {message_en}")
        self.message = message
        self.message_en = message_en


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class Restored:
    target: str              # the file, or the PostgreSQL URL without its password
    revision: str | None     # the schema's revision after the upgrade


def hall_url(url: str | None, data_dir: str | Path, create: bool = True) -> str:
    """The hall's database URL as ``yimen serve`` finds it: ``url``, else the SQLite file in
    ``data_dir``. With ``create`` false a missing data folder is an error, not a new folder."""
    if not url and not create and not Path(data_dir).is_dir():
        raise BackupError(f"没有数据文件夹 {data_dir}", f"there is no data folder {data_dir}")
    return database_url(url, data_dir)


def human_size(size: int) -> str:
    """``812 B``, ``3.4 MB (3,565,158 B)``."""
    if size < 1024:
        return f"{size} B"
    value, units = size / 1024, ["KB", "MB", "GB", "TB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.1f} {units[0]} ({size:,} B)"


# ---------------------------------------------------------------- backup


def backup(url: str, dest: str | Path, now: datetime | None = None) -> Written:
    """Copy the hall's database at ``url`` (as ``database_url`` gives it) to ``dest``: a
    file, or a folder to hold ``yimen-YYYYMMDD-HHMMSS.db`` (``.dump`` for PostgreSQL)."""
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    path = _destination(dest, ".db" if sqlite else ".dump", now or datetime.now())
    if sqlite:
        source = _sqlite_file(parsed)
        if path.exists() and path.resolve() == source.resolve():
            raise BackupError(f"备份不能写到数据库本身 {path}",
                              f"the backup cannot overwrite the database itself: {path}")
        _atomically(path, lambda tmp: _sqlite_copy(source, tmp, check_source=True))
    else:
        _atomically(path, lambda tmp: _pg_dump(parsed, tmp))
    return Written(path, path.stat().st_size)


def _destination(dest: str | Path, suffix: str, now: datetime) -> Path:
    path = Path(dest)
    if path.is_dir() or str(dest).endswith(("/", os.sep)):
        try:
            private_folder(path)
        except OSError as exc:
            raise _os_error(exc, "无法创建备份文件夹", "cannot create the backup folder") from None
        stem = f"yimen-{now:%Y%m%d-%H%M%S}"
        named, n = path / f"{stem}{suffix}", 1
        while named.exists():                      # two backups within one second
            named, n = path / f"{stem}-{n}{suffix}", n + 1
        return named
    if not path.parent.is_dir():
        raise BackupError(f"没有文件夹 {path.parent}", f"there is no folder {path.parent}")
    return path


def _atomically(path: Path, write: Callable[[Path], None],
                before: Callable[[Path], None] | None = None) -> None:
    """``write(tmp)`` a file beside ``path`` (made 0600 first: it holds the hall's data), sync
    it, ``before(path)`` and rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        private_file(tmp)
        write(tmp)
        _sync(tmp)
        if before is not None:
            before(path)
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except OSError as exc:
        raise _os_error(exc, f"无法写入 {path}", f"cannot write {path}") from None
    finally:
        for leftover in (tmp, *_sidecars(tmp)):
            with suppress(FileNotFoundError):
                leftover.unlink()


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError(f"不能用于备份或恢复的数据库地址：{url}",
                          f"a database URL that cannot be backed up or restored: {url}")
    return Path(url.database)


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _sqlite_copy(source: Path, tmp: Path, check_source: bool) -> None:
    """SQLite's online backup of ``source`` into the new file ``tmp``, in one step: one read
    transaction, so one consistent snapshot that includes the write-ahead log."""
    if not source.is_file():
        raise BackupError(f"找不到数据库 {source}", f"there is no database at {source}")
    if check_source:
        mode = "mode=rw"                 # the hall's live database, read as any reader reads it
    elif _sidecars(source)[0].exists():
        mode = "mode=ro"                 # a database with its write-ahead log beside it
    else:
        mode = "mode=ro&immutable=1"     # a backup file: no locks, no -wal/-shm left beside it
    uri = f"{source.resolve().as_uri()}?{mode}"  # never creates a file
    try:
        with _closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as src:
            src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if check_source and not _is_yimen(src):
                raise _not_yimen(source, "没有 alembic_version 表", "it has no alembic_version table")
            with _closing(sqlite3.connect(tmp, isolation_level=None)) as dst:
                src.backup(dst)                       # pages=-1: the whole file in one step
                ok = dst.execute("PRAGMA quick_check").fetchone()
                if not ok or ok[0] != "ok":
                    raise BackupError(f"备份副本检查未通过：{ok}", f"the copy failed its check: {ok}")
    except sqlite3.DatabaseError as exc:
        if not check_source:                         # restoring: what was given is no database
            raise _not_yimen(source, str(exc), str(exc)) from None
        raise BackupError(f"无法读取数据库 {source}：{exc}",
                          f"cannot read the database {source}: {exc}") from None
    wal_tmp, shm_tmp = _sidecars(tmp)
    with suppress(FileNotFoundError):
        shm_tmp.unlink()
    if wal_tmp.exists() and wal_tmp.stat().st_size:   # the last close leaves no log behind
        raise BackupError("备份副本的预写日志未合并", "the copy's write-ahead log was not merged")


@contextmanager
def _closing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield conn
    finally:
        conn.close()


def _is_yimen(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                       "AND name = 'alembic_version'").fetchone()
    return row is not None


def _not_yimen(what: object, why: str, why_en: str) -> BackupError:
    return BackupError(f"{what} 不是 Yimen 数据库（{why}）", f"{what} is not a Yimen database ({why_en})")


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc: OSError, message: str, message_en: str) -> BackupError:
    why = exc.strerror or str(exc)
    return BackupError(f"{message}：{why}", f"{message_en}: {why}")


# ---------------------------------------------------------------- PostgreSQL tools


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for ``url`` and the environment for the client tools: the
    password goes by ``PGPASSWORD``, never on a command line other users can read."""
    plain = url.set(drivername="postgresql", password=None)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return plain.render_as_string(hide_password=False), env


def _shown(url: URL) -> str:
    """The database's URL as an operator wrote it, without its password."""
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"找不到 {name}，请安装 PostgreSQL 客户端（postgresql-client）",
                          f"{name} is not installed; install the PostgreSQL client tools "
                          f"(postgresql-client)")
    return found


def _run(name: str, args: list[str], env: dict[str, str] | None = None) -> str:
    """Run a PostgreSQL client tool; its complaint, if it fails, in one line."""
    try:
        done = subprocess.run([_tool(name), *args], capture_output=True, text=True, env=env,
                              check=False)
    except OSError as exc:
        raise _os_error(exc, f"无法运行 {name}", f"cannot run {name}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        why = " ".join(lines)[:400] or f"exit status {done.returncode}"
        raise BackupError(f"{name} 失败：{why}", f"{name} failed: {why}")
    return done.stdout


def _pg_dump(url: URL, tmp: Path) -> None:
    conninfo, env = _libpq(url)
    _run("pg_dump", ["--format=custom", f"--file={tmp}", f"--dbname={conninfo}"], env)
    if not _dump_is_yimen(tmp):
        raise _not_yimen(_shown(url), "没有 alembic_version 表",
                         "it has no alembic_version table")


def _dump_is_yimen(path: Path) -> bool:
    listing = _run("pg_restore", ["--list", str(path)])
    return re.search(r"\bTABLE \S+ alembic_version\b", listing) is not None


# ---------------------------------------------------------------- restore


async def restore(src: str | Path, url: str, force: bool = False) -> Restored:
    """Bring the backup ``src`` back as the hall's database at ``url``, then migrate it to
    the head. Raises ``BackupError`` (nothing replaced) when it should not or cannot."""
    parsed = make_url(url)
    source = Path(src)
    if not source.is_file():
        raise BackupError(f"找不到备份文件 {source}", f"there is no backup file {source}")
    magic = _magic(source)
    if parsed.get_backend_name() == "sqlite":
        if magic.startswith(PG_DUMP_MAGIC):
            raise BackupError(f"{source} 是 PostgreSQL 备份，请用 --db postgresql://… 恢复",
                              f"{source} is a PostgreSQL backup: restore it with --db "
                              f"postgresql://…")
        if magic and not magic.startswith(SQLITE_MAGIC):
            raise _not_yimen(source, "不是 SQLite 数据库", "not a SQLite database")
        target = _sqlite_file(parsed)
        with _no_server(target.parent):      # none runs, or starts, until the hall is migrated
            await asyncio.to_thread(_sqlite_replace, source, target, force)
            return Restored(str(target), await _upgrade(url))
    else:
        if magic.startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} 是 SQLite 备份，请用 --data DIR 恢复",
                              f"{source} is a SQLite backup: restore it with --data DIR")
        if not magic.startswith(PG_DUMP_MAGIC):
            raise _not_yimen(source, "不是 pg_dump 备份", "not a pg_dump archive")
        await _pg_restore(source, parsed, force)
        return Restored(_shown(parsed), await _upgrade(url))


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise _os_error(exc, f"无法读取 {path}", f"cannot read {path}") from None


@contextmanager
def _no_server(folder: Path) -> Iterator[None]:
    """Hold the data folder's lock, the one ``yimen serve`` holds while it runs."""
    from controller.startup import LOCK_FILE, StartupError, data_folder_lock

    with ExitStack() as held:
        try:
            held.enter_context(data_folder_lock(folder))
        except StartupError:
            owner = (folder / LOCK_FILE).read_text(errors="replace").strip() or "?"
            raise BackupError(f"Yimen 服务器（进程 {owner}）正在使用数据文件夹 {folder}，请先停止它",
                              f"a Yimen server (process {owner}) is running on the data folder "
                              f"{folder}; stop it first") from None
        except OSError as exc:
            raise _os_error(exc, f"无法写入 {folder}", f"cannot write to {folder}") from None
        yield


def _sqlite_replace(source: Path, target: Path, force: bool) -> None:
    if target.exists() and target.stat().st_size and not force:
        raise BackupError(f"{target} 已有数据库；确认要覆盖请加 --force",
                          f"there is already a database at {target}; add --force to replace it")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("备份文件就是目标数据库本身", "the backup file is the target database itself")
    _atomically(target, lambda tmp: _checked_copy(source, tmp), _clear_old_log)


def _checked_copy(source: Path, tmp: Path) -> None:
    _sqlite_copy(source, tmp, check_source=False)
    try:
        with _closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
            if not _is_yimen(conn):
                raise _not_yimen(source, "没有 alembic_version 表", "it has no alembic_version table")
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"{source} 已损坏：{problems[0]}", f"{source} is damaged: "
                                                                   f"{problems[0]}")
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _not_yimen(source, str(exc), str(exc)) from None
    _known_revision(source, revision[0] if revision else None)
    with suppress(FileNotFoundError):
        _sidecars(tmp)[1].unlink()


def _known_revision(source: Path, revision: str | None) -> None:
    """A backup from a newer Yimen would be a database this program cannot migrate."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from controller.storage.db import MIGRATIONS

    if revision is None:
        return
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        ScriptDirectory.from_config(cfg).get_revision(revision)
    except CommandError:
        raise BackupError(f"{source} 的结构版本 {revision} 无法识别，可能由更新版本的 Yimen 写入",
                          f"{source} has schema revision {revision}, which this program does "
                          f"not know; was it written by a newer Yimen?") from None


def _clear_old_log(target: Path) -> None:
    """Before the new file takes ``target``'s name: the old database's write-ahead log must
    go, or SQLite would replay its frames onto the new file. Merge it if the old database
    can still be read, then remove what is left."""
    wal, shm = _sidecars(target)
    if wal.exists():
        with suppress(sqlite3.Error):
            uri = f"{target.resolve().as_uri()}?mode=rw"
            with _closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as old:
                old.execute("PRAGMA busy_timeout=0")
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    for leftover in (wal, shm):
        with suppress(FileNotFoundError):
            leftover.unlink()


async def _pg_restore(source: Path, url: URL, force: bool) -> None:
    await asyncio.to_thread(_tool, "pg_restore")
    if not await asyncio.to_thread(_dump_is_yimen, source):
        raise _not_yimen(source, "没有 alembic_version 表", "it has no alembic_version table")
    others, tables = await _pg_target(url)
    where = _shown(url)
    if others:
        raise BackupError(f"数据库 {where} 正被 {others} 个其他连接使用（服务器在运行？），请先停止它们",
                          f"the database {where} is in use by {others} other connections "
                          f"(a running server?); stop them first")
    if tables and not force:
        raise BackupError(f"{where} 已有数据库（{tables} 张表）；确认要覆盖请加 --force",
                          f"there is already a database at {where} ({tables} tables); add "
                          f"--force to replace it")
    conninfo, env = _libpq(url)
    # one transaction: the database is either as it was or the whole backup
    await asyncio.to_thread(_run, "pg_restore", [
        "--clean", "--if-exists", "--single-transaction", "--no-owner",
        f"--dbname={conninfo}", str(source)], env)


async def _pg_target(url: URL) -> tuple[int, int]:
    """Other sessions on the target database, and the tables it already has."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from controller.storage.db import open_database

    db = open_database(url.render_as_string(hide_password=False))
    try:
        async with db.connect() as conn:
            others = await conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"))
            tables = await conn.scalar(text(
                "SELECT count(*) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"))
    except (DBAPIError, OSError) as exc:
        why = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise BackupError(f"无法连接数据库：{why}", f"cannot connect to the database: {why}") from None
    finally:
        await db.dispose()
    return int(others or 0), int(tables or 0)


async def _upgrade(url: str) -> str | None:
    """Migrations to the head, as the server runs them at start; and the tier links' new
    epochs (the halls around have seen this database's numbers go further)."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    from controller.storage import outbox
    from controller.storage.db import current_revision, open_database, upgrade

    db = open_database(url)
    try:
        await upgrade(db)
        async with db.begin() as conn:
            await conn.run_sync(outbox.renew_epochs)
        return await current_revision(db)
    except (DBAPIError, OSError, CommandError) as exc:
        why = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise BackupError(f"已恢复，但迁移到最新结构失败：{why}",
                          f"restored, but migrating it to the current schema failed: {why}") \
            from None
    finally:
        await db.dispose()

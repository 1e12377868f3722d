"""What keeps a hall server from starting (启动检查), said in one line instead of a traceback.

``yimen serve`` and ``yimen demo`` lock their data folder for the server's life, so a second
server on the same folder cannot issue the same numbers again; bind the HTTP port before the
hall starts; and turn a busy port or a database that cannot be opened into a
``StartupError``: one line, zh-CN then English, and a non-zero exit status.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from controller.core.errors import YimenError
from controller.storage.private import private_folder

if TYPE_CHECKING:                 # the broker's process imports this module, without a database
    from sqlalchemy.ext.asyncio import AsyncEngine

LOCK_FILE = "yimen.lock"


class StartupError(YimenError, RuntimeError):
    """The server cannot start; ``str()`` is the one line to show: zh-CN / English."""

    def __init__(self, message: str, message_en: str) -> None:
        super().__init__(f"{message} / {message_en}")
        self.message = message
        self.message_en = message_en


class FolderInUse(StartupError):
    """Another server holds the data folder."""


@contextmanager
def data_folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created 0700 if missing) until the block ends.

    The lock is ``flock`` on ``DATA/yimen.lock``, which holds the owner's process id; the
    kernel drops it when the process ends, however it ends, so a killed server never leaves
    its folder locked. Raises ``StartupError`` when another process holds it."""
    path = private_folder(folder)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise FolderInUse(
                f"数据文件夹 {path} 正由另一个 Yimen 服务器使用（进程 {owner}），请用 --data 另选文件夹",
                f"the data folder is in use by another Yimen server (process {owner}); "
                f"give this one its own --data DIR") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)                      # releases the lock; the file stays (no unlink race)


def busy_port(what: str, host: str, port: int, option: str) -> StartupError:
    """``what`` (``HTTP``, ``MQTT``) cannot listen on ``host:port`` because it is taken."""
    return StartupError(f"{what} 端口 {port} 已被占用（{host}:{port}），请用 {option} 另选端口",
                        f"{what} port {port} on {host} is already in use; choose another "
                        f"with {option} HOST:PORT")


def bind_http(host: str, port: int) -> socket.socket:
    """The HTTP listener's socket, bound before anything else starts, so a busy port costs
    nothing and is said in one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise busy_port("HTTP", host, port, "--http") from None
        raise StartupError(f"无法在 {host}:{port} 上监听 HTTP：{exc.strerror or exc}",
                           f"cannot listen for HTTP on {host}:{port}: "
                           f"{exc.strerror or exc}") from None


async def migrate(db: AsyncEngine) -> None:
    """``upgrade`` the database, or say in one line why it cannot be opened: a file that is
    not a SQLite database, a damaged one, a server that does not answer, a schema newer
    than this program."""
    from sqlalchemy.exc import DBAPIError

    from controller.storage.db import head_revision, stored_revision, upgrade

    try:
        if await stored_revision(db) == head_revision():
            return                  # up to date: Alembic (0.15 s to import) is not needed
    except (DBAPIError, OSError) as exc:
        raise database_error(db, exc) from None
    from alembic.util.exc import CommandError

    try:
        await upgrade(db)
    except (DBAPIError, OSError, CommandError) as exc:
        raise database_error(db, exc) from None


def database_error(db: AsyncEngine, exc: BaseException) -> StartupError:
    from alembic.util.exc import CommandError

    sqlite = db.dialect.name == "sqlite"
    where = db.url.database if sqlite else db.url.render_as_string(hide_password=True)
    why = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
    if sqlite and "file is not a database" in why:
        return StartupError(f"{where} 不是 SQLite 数据库", "is not a SQLite database")
    if sqlite and "malformed" in why:
        return StartupError(f"{where} 已损坏（{why}），请从备份恢复",
                            f"is damaged ({why}); restore it from a backup")
    if isinstance(exc, CommandError):
        return StartupError(f"数据库 {where} 的结构版本无法识别（{why}），可能由更新版本的 Yimen 写入",
                            f"the database's schema is not one this program knows ({why}); "
                            f"was it written by a newer Yimen?")
    return StartupError(f"数据库 {where} 无法打开：{why}", f"cannot open the database: {why}")

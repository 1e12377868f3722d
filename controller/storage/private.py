"""The data folder is the server user's alone (数据目录权限): the folder is created 0700; the
database, its write-ahead log and shared memory, backups and the keys kept there are 0600.

SQLite gives a new database file the umask's mode (0644 under the usual 022) and its ``-wal``
and ``-shm`` files the database file's, so the database file is made before SQLite opens it,
0600, and an older one found wider is narrowed (its sidecars too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
log = logging.getLogger("yimen.storage")


def private_folder(path: str | Path) -> Path:
    """``path``, created 0700 if it is missing (missing parents as the umask makes them)."""
    folder = Path(path)
    if not folder.is_dir():
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        folder.chmod(FOLDER_MODE)                   # whatever the umask
    return folder


def private_file(path: str | Path) -> None:
    """Create ``path`` empty and 0600 if it is missing, else narrow it to 0600."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        narrow(path)


def narrow(path: str | Path) -> None:
    """Take group and other permissions off ``path`` if it is there and the server's own (a
    file someone else owns is left as it is, with a warning)."""
    try:
        mode = os.stat(path).st_mode
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot make %s readable by its owner only: %s", path, exc.strerror or exc)


def sqlite_files(database: str | None) -> None:
    """Before SQLite opens the file ``database``: the file 0600 (made empty if missing: SQLite
    takes an empty file as a new database), an existing ``-wal`` and ``-shm`` narrowed. An
    in-memory database or a ``file:`` URI is left alone, and a folder that does not exist for
    SQLite to report."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return
    private_file(path)
    for sidecar in ("-wal", "-shm"):
        narrow(path.with_name(path.name + sidecar))


def key(folder: str | Path, name: str) -> bytes:
    """The secret kept in the file ``name`` in the data folder ``folder`` (0600), made (32
    random bytes, as hex) when the file is missing or empty."""
    path = private_folder(folder) / name
    with contextlib.suppress(FileNotFoundError):
        kept = path.read_bytes().strip()
        if kept:
            narrow(path)
            return kept
    made = secrets.token_hex(32).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(made + b"\n")
        f.flush()
        os.fsync(f.fileno())
    narrow(path)                                    # an empty file found wider than 0600
    return made

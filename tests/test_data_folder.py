"""The data folder holds the hall's tickets, phone digits and ID tokens: only the user the
server runs as may read it, whatever the umask, and so may its backups."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from controller.core.commands import SYSTEM, Take
from controller.server import create_app
from controller.startup import data_folder_lock
from controller.storage.backup import backup
from controller.storage.db import database_url, open_database
from controller.web.api import ENGINE
from tests.helpers import small_config, token


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_a_fresh_data_folder_and_its_database_are_the_owners_alone(tmp_path, clock):
    data = tmp_path / "new" / "data"
    old = os.umask(0o022)                                  # the usual: files 0644, folders 0755
    try:
        with data_folder_lock(data):
            app = create_app(small_config(), data, clock=clock, bus=False)
            async with TestClient(TestServer(app)) as c:
                engine = c.server.app[ENGINE]
                await engine.execute(Take(service="A", phone_tail="9731", id_token=token(7)), SYSTEM)
                files = {p.name: mode(p) for p in data.iterdir()}
        assert mode(data) == 0o700
        assert {"yimen.db", "yimen.db-wal", "yimen.db-shm", "status-key", "yimen.lock"} <= set(files)
        assert files == dict.fromkeys(files, 0o600), files

        copy = backup(database_url(None, data), tmp_path / "backups/")
        assert mode(copy.path.parent) == 0o700 and mode(copy.path) == 0o600
    finally:
        os.umask(old)


async def test_a_database_left_world_readable_is_narrowed_when_opened(tmp_path):
    db_file = tmp_path / "yimen.db"
    sqlite3.connect(db_file).close()
    Path(f"{db_file}-wal").write_bytes(b"")
    for path in (db_file, Path(f"{db_file}-wal")):
        path.chmod(0o644)
    engine = open_database(f"sqlite+aiosqlite:///{db_file}")
    await engine.dispose()
    assert mode(db_file) == mode(Path(f"{db_file}-wal")) == 0o600

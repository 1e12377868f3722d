"""What a new user runs into when a server cannot start: a second server on the same data
folder, a busy port, a file that is not a database. Each is one line in both languages and a
non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from controller.startup import StartupError, data_folder_lock
from tests.helpers import DEMO, start_yimen


def yimen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "controller.cli", *args],
                          capture_output=True, text=True, timeout=60)


def said_in_one_line(run: subprocess.CompletedProcess, *words: str) -> str:
    """The failed run's message: its last line, starting ``yimen:``, with ``words`` in it,
    and no traceback anywhere."""
    assert run.returncode not in (0, None), run
    assert "Traceback" not in run.stderr, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("yimen: ") and all(w in last for w in words), run.stderr
    assert " / " in last, "zh-CN / English"
    assert "listening on" not in run.stdout
    return last


def test_the_data_folder_lock_is_exclusive_and_ends_with_its_holder(tmp_path):
    with data_folder_lock(tmp_path / "data"):
        with pytest.raises(StartupError) as info, data_folder_lock(tmp_path / "data"):
            pass
        said = str(info.value)
        assert f"进程 {os.getpid()}" in said and "in use by another Yimen server" in said
    with data_folder_lock(tmp_path / "data"):                   # released: free again
        pass


@pytest.fixture(scope="module")
def running(tmp_path_factory):  # noqa: ANN201
    """One hall server (the demo hall, no devices): (its process id, data folder, HTTP port,
    MQTT port)."""
    data = tmp_path_factory.mktemp("first") / "data"
    proc, url, line = asyncio.run(start_yimen("demo", "--no-devices", "--data", str(data),
                                              "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"))
    try:
        yield proc.pid, data, int(url.rsplit(":", 1)[1]), int(line.rsplit(":", 1)[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


@pytest.mark.slow                              # starts server processes
def test_a_second_server_on_the_same_data_folder_refuses_in_one_line(running, tmp_path):
    pid, data, _, _ = running
    run = yimen("serve", "--config", str(DEMO), "--data", str(data),
                "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
    last = said_in_one_line(run, str(data), "正由另一个 Yimen 服务器使用", "in use by another Yimen server",
                            f"(process {pid})")
    assert run.stderr.strip() == last                         # nothing started, nothing else said
    assert (data / "yimen.lock").read_text().strip() == str(pid)     # the first server keeps it


@pytest.mark.slow
def test_a_busy_http_port_is_named_in_one_line(running, tmp_path):
    _, _, http, _ = running
    run = yimen("demo", "--no-devices", "--data", str(tmp_path), "--http", f"127.0.0.1:{http}",
                "--mqtt", "127.0.0.1:0")
    last = said_in_one_line(run, f"HTTP 端口 {http} 已被占用", f"HTTP port {http}", "already in use")
    assert run.stderr.strip() == last                         # bound before the hall started


@pytest.mark.slow
def test_a_busy_mqtt_port_is_named_in_one_line(running, tmp_path):
    _, _, _, mqtt = running
    run = yimen("demo", "--no-devices", "--data", str(tmp_path), "--http", "127.0.0.1:0",
                "--mqtt", f"127.0.0.1:{mqtt}")
    said_in_one_line(run, f"MQTT 端口 {mqtt} 已被占用", f"MQTT port {mqtt}", "already in use")
    assert "ERROR" not in run.stderr


@pytest.mark.slow                              # yimen processes opening a database: ~2 s each
@pytest.mark.parametrize("command", [["serve", "--config", str(DEMO), "--http", "127.0.0.1:0",
                                      "--mqtt", "127.0.0.1:0"], ["db", "upgrade"]])
def test_a_garbage_database_file_is_said_in_one_line(tmp_path, command):
    db = tmp_path / "yimen.db"
    db.write_bytes(os.urandom(3000))
    run = yimen(*command, "--data", str(tmp_path))
    last = said_in_one_line(run, f"{db} 不是 SQLite 数据库", "is not a SQLite database")
    assert run.stderr.strip() == last


@pytest.mark.slow                                  # PostgreSQL: in CI's full run
async def test_two_servers_cannot_run_one_hall_on_one_postgresql_database(pg_url, clock):
    """On a shared database the data folder's lock cannot help: the hall's advisory lock does,
    and migrations do not wait for it."""
    from controller.engine import Engine
    from controller.storage.db import open_database, upgrade
    from controller.storage.hall_lock import HallInUse
    from tests.helpers import small_config

    first_db, second_db = open_database(pg_url), open_database(pg_url)
    try:
        await upgrade(first_db)
        first = Engine(small_config(), first_db, clock)
        await first.start()
        await upgrade(second_db)                       # yimen db upgrade beside a serving hall
        second = Engine(small_config(), second_db, clock)
        with pytest.raises(HallInUse):
            await second.start()
        other_hall = Engine(small_config(id="t2"), second_db, clock)
        await other_hall.start()                       # another hall on the same database
        await other_hall.stop()
        await first.stop()
        await second.start()                           # the first let go
        await second.stop()
    finally:
        await first_db.dispose()
        await second_db.dispose()

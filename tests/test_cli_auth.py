"""``yimen user``, ``yimen token`` and ``yimen audit verify`` as an administrator uses them,
with the server stopped or running."""

from __future__ import annotations

import asyncio
import io
import stat

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from controller.cli import main
from controller.cli_auth import DEMO_ADMIN_FILE, demo_admin, open_hall_db
from controller.server import create_app
from controller.storage.schema import audit_log
from tests.helpers import demo_config

PASSWORD = "a long enough phrase"


def yimen(monkeypatch, capsys, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
async def test_first_admin_and_a_token_from_the_command_line_while_the_server_runs(tmp_path, monkeypatch,
                                                                                 capsys):
    data = str(tmp_path)
    app = create_app(demo_config(), tmp_path, bus=False)
    async with TestClient(TestServer(app)) as client:
        code, out, _ = await asyncio.to_thread(yimen, monkeypatch, capsys, "user", "add", "zhang", "--role",
                                               "admin", "--role", "supervisor", "--password-stdin",
                                               "--data", data, stdin=PASSWORD + "\n")
        assert code == 0 and "zhang" in out
        origin = {"Origin": str(client.make_url("")).rstrip("/")}
        r = await client.post("/api/auth/login", json={"user": "zhang", "password": PASSWORD}, headers=origin)
        assert r.status == 200 and (await r.json())["principal"]["roles"] == ["admin", "supervisor"]
        code, out, err = await asyncio.to_thread(yimen, monkeypatch, capsys, "token", "add", "统计", "--role",
                                                 "viewer", "--data", data)
        token = out.strip()
        assert code == 0 and token.startswith("ymt_") and "只显示这一次" in err
        assert (await client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})).status == 200
        token_id = token.removeprefix("ymt_").split("_")[0]
        code, _, _ = await asyncio.to_thread(yimen, monkeypatch, capsys, "token", "revoke", token_id,
                                             "--data", data)
        assert code == 0
        await asyncio.sleep(5.1)                    # the server re-reads what it cached after 5 s
        assert (await client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})).status == 401


def test_no_password_on_the_command_line_and_weak_ones_refused(tmp_path, monkeypatch, capsys):
    code, _, err = yimen(monkeypatch, capsys, "user", "add", "li", "--role", "desk", "--data", str(tmp_path))
    assert code == 2 and "--password-stdin" in err
    code, _, err = yimen(monkeypatch, capsys, "user", "add", "li", "--role", "desk", "--password-stdin",
                         "--data", str(tmp_path), stdin="1234\n")
    assert code == 1 and "密码长度" in err
    code, _, _ = yimen(monkeypatch, capsys, "user", "add", "li", "--role", "desk", "--password-stdin",
                       "--data", str(tmp_path), stdin=PASSWORD + "\n")
    assert code == 0
    code, _, err = yimen(monkeypatch, capsys, "user", "add", "li", "--role", "desk", "--password-stdin",
                         "--data", str(tmp_path), stdin=PASSWORD + "\n")
    assert code == 1 and "已存在" in err
    code, out, _ = yimen(monkeypatch, capsys, "user", "passwd", "li", "--password-stdin",
                         "--data", str(tmp_path), stdin="another long phrase\n")
    assert code == 0 and "sessions ended" in out


async def _tamper(tmp_path, statement) -> bool:  # noqa: ANN001
    """``statement`` on the audit log as someone with the database file in hand: whether the
    database refused it, before they dropped its guard and did it anyway."""
    db = await open_hall_db(tmp_path, None)
    try:
        try:
            async with db.begin() as conn:
                await conn.execute(statement)
            return False
        except DBAPIError as exc:
            assert "append only" in str(exc)
        async with db.begin() as conn:
            for trigger in ("audit_log_no_update", "audit_log_no_delete"):
                await conn.execute(text(f"DROP TRIGGER {trigger}"))
            await conn.execute(statement)
        return True
    finally:
        await db.dispose()


def test_audit_verify_finds_an_edited_or_a_deleted_entry(tmp_path, monkeypatch, capsys):
    data = str(tmp_path)
    for name in ("a1", "a2", "a3"):
        yimen(monkeypatch, capsys, "user", "add", name, "--role", "viewer", "--password-stdin",
              "--data", data, stdin=PASSWORD + "\n")
    code, out, _ = yimen(monkeypatch, capsys, "audit", "verify", "--data", data)
    assert code == 0 and "3 条" in out
    edit = update(audit_log).where(audit_log.c.seq == 2).values(actor="cli:nobody")
    assert asyncio.run(_tamper(tmp_path, edit)), "the database let an audit entry be changed"
    code, out, _ = yimen(monkeypatch, capsys, "audit", "verify", "--data", data)
    assert code == 1 and "#2: changed after it was written" in out
    asyncio.run(_tamper(tmp_path, delete(audit_log).where(audit_log.c.seq == 2)))
    code, out, _ = yimen(monkeypatch, capsys, "audit", "verify", "--data", data)
    assert code == 1 and "missing" in out and "#3: does not follow" in out


async def test_the_demo_makes_its_admin_once_with_a_random_password_kept_private(tmp_path):
    first = await demo_admin(tmp_path, None, demo_config().hall.id)
    password = (tmp_path / DEMO_ADMIN_FILE).read_text().strip()
    assert password in first and len(password) >= 16
    assert stat.S_IMODE((tmp_path / DEMO_ADMIN_FILE).stat().st_mode) == 0o600
    again = await demo_admin(tmp_path, None, demo_config().hall.id)
    assert password not in again and DEMO_ADMIN_FILE in again
    other = tmp_path / "other"
    await demo_admin(other, None, demo_config().hall.id)
    assert (other / DEMO_ADMIN_FILE).read_text().strip() != password

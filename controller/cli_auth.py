"""``yimen user``, ``yimen token`` and ``yimen audit``: people, programs and the audit log
from the command line, whether or not the server runs (they write the database directly;
a running server sees a change within a few seconds)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.auth.roles import PERSON_ROLES, ROLES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from controller.config import HallConfig

Command = Callable[[argparse.Namespace, "HallConfig"], int]
Add = Callable[[argparse.ArgumentParser, Command], None]


def cli_actor() -> str:
    """Who the audit log says did it: the operating system's user at this machine."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


async def open_hall_db(data: str | Path, db_url: str | None) -> AsyncEngine:
    """The hall's database (the data folder's SQLite unless ``db_url``), migrated."""
    from controller.startup import migrate
    from controller.storage.db import database_url, open_database

    db = open_database(database_url(db_url, data))
    try:
        await migrate(db)
    except BaseException:
        await db.dispose()
        raise
    return db


def _run(args: argparse.Namespace, config: HallConfig,
         work: Callable[[Any, Any], Awaitable[int]]) -> int:
    from controller.auth.accounts import AccountError, Accounts
    from controller.auth.audit import Audit

    async def go() -> int:
        db = await open_hall_db(args.data, args.db)
        hall = config.hall.id
        try:
            return await work(Accounts(db, hall), Audit(db, hall))
        except AccountError as exc:
            print(f"yimen: {exc.message} / {exc}", file=sys.stderr)
            return 1
        finally:
            await db.dispose()
    return asyncio.run(go())


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("yimen: 请用 --password-stdin 从标准输入给出密码 / give the password with --password-stdin",
              file=sys.stderr)
        raise SystemExit(2)
    first = getpass.getpass("密码 password: ")
    if getpass.getpass("再输一次 again: ") != first:
        print("yimen: 两次输入的密码不一致 / the passwords differ", file=sys.stderr)
        raise SystemExit(2)
    return first


def cmd_user_add(args: argparse.Namespace, config: HallConfig) -> int:
    password = _password(args)

    async def work(accounts: Any, audit: Any) -> int:
        user = await accounts.add_user(args.name, args.role, password, args.display_name, args.staff)
        await audit.record(cli_actor(), "local", "user_added", f"user:{user.name}", {"after": user.public()})
        print(f"已添加用户 added user {user.name} ({', '.join(user.roles)})")
        return 0
    return _run(args, config, work)


def cmd_user_passwd(args: argparse.Namespace, config: HallConfig) -> int:
    password = _password(args)

    async def work(accounts: Any, audit: Any) -> int:
        await accounts.set_password(args.name, password)
        await audit.record(cli_actor(), "local", "password_set", f"user:{args.name}")
        print(f"已修改密码，{args.name} 的其他登录已结束 / password changed; {args.name}'s sessions ended")
        return 0
    return _run(args, config, work)


def cmd_user_list(args: argparse.Namespace, config: HallConfig) -> int:
    async def work(accounts: Any, audit: Any) -> int:
        for u in await accounts.list_users():
            state = " 已停用 disabled" if u.disabled else ""
            print(f"{u.name}\t{u.display_name}\t{','.join(u.roles)}\t{u.staff or '-'}{state}")
        return 0
    return _run(args, config, work)


def cmd_token_add(args: argparse.Namespace, config: HallConfig) -> int:
    async def work(accounts: Any, audit: Any) -> int:
        token_id, text = await accounts.add_token(args.name, args.role)
        await audit.record(cli_actor(), "local", "token_added", f"token:{token_id}",
                           {"name": args.name, "roles": args.role})
        print(text)
        print(f"令牌 {token_id} 只显示这一次，请妥善保存 / token {token_id} is shown only this once",
              file=sys.stderr)
        return 0
    return _run(args, config, work)


def cmd_token_revoke(args: argparse.Namespace, config: HallConfig) -> int:
    async def work(accounts: Any, audit: Any) -> int:
        await accounts.revoke_token(args.id)
        await audit.record(cli_actor(), "local", "token_revoked", f"token:{args.id}")
        print(f"已撤销 revoked {args.id}")
        return 0
    return _run(args, config, work)


def cmd_token_list(args: argparse.Namespace, config: HallConfig) -> int:
    async def work(accounts: Any, audit: Any) -> int:
        for t in await accounts.list_tokens():
            state = f"已撤销 revoked {t['revoked_at']}" if t["revoked_at"] else "有效 live"
            print(f"{t['id']}\t{t['name']}\t{','.join(t['roles'])}\t{state}")
        return 0
    return _run(args, config, work)


def cmd_audit_verify(args: argparse.Namespace, config: HallConfig) -> int:
    from controller.auth.audit import verify

    async def go() -> int:
        db = await open_hall_db(args.data, args.db)
        try:
            count, problems, head = await verify(db, config.hall.id)
        finally:
            await db.dispose()
        for problem in problems:
            print(f"审计日志被改动 tampered: {problem}")
        if problems:
            return 1
        print(f"审计日志完好 intact: {count} 条 entries; 最后一条 last #{count} {head}")
        return 0
    return asyncio.run(go())


_ROLE_HELP = "、".join(f"{r} {ROLES[r][0]}" for r in PERSON_ROLES)


def add_parsers(sub: Any, add_common: Add) -> None:
    """The ``user``, ``token`` and ``audit`` subcommands; ``add_common`` adds --config and the
    storage options, and runs the command as ``command(args, hall file)``."""
    p = sub.add_parser("user", help="人员账号 / people's accounts",
                       description="添加账号、修改密码、列出账号。服务器运行与否均可。 / Add accounts, set "
                                   "passwords, list them; with or without the server running.")
    usub = p.add_subparsers(dest="user_command", required=True)
    c = usub.add_parser("add", help="添加账号 / add an account",
                        description=f"添加一个人员账号。角色：{_ROLE_HELP}；可给多个 --role。 / Add a "
                                    "person's account with one or more --role.")
    c.add_argument("name", help="user name (lowercase letters, digits, . - _)")
    c.add_argument("--role", action="append", required=True, choices=PERSON_ROLES)
    c.add_argument("--display-name", help="the name shown on pages (default: the user name)")
    c.add_argument("--staff", metavar="ID", help="for a clerk: their staff id (工号) in the hall file")
    c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_common(c, cmd_user_add)
    c = usub.add_parser("passwd", help="设置密码 / set a password",
                        description="为账号设置新密码；该账号的所有登录随即结束。 / Set a new password; "
                                    "every session of the account ends.")
    c.add_argument("name")
    c.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_common(c, cmd_user_passwd)
    c = usub.add_parser("list", help="列出账号 / list the accounts",
                        description="列出账号。 / List accounts.")
    add_common(c, cmd_user_list)

    p = sub.add_parser("token", help="接口令牌 / API tokens for programs",
                       description="为对接的程序签发、列出、撤销接口令牌（Bearer）。 / Issue, list and "
                                   "revoke API tokens (Bearer) for programs.")
    tsub = p.add_subparsers(dest="token_command", required=True)
    c = tsub.add_parser("add", help="签发令牌 / issue a token",
                        description="签发令牌并只显示一次；数据库只保存其哈希。 / Issue a token, shown "
                                    "once; only its hash is kept.")
    c.add_argument("name", help="what the token is for")
    c.add_argument("--role", action="append", required=True, choices=PERSON_ROLES)
    add_common(c, cmd_token_add)
    c = tsub.add_parser("revoke", help="撤销令牌 / revoke a token",
                        description="撤销令牌。 / Revoke a token.")
    c.add_argument("id")
    add_common(c, cmd_token_revoke)
    c = tsub.add_parser("list", help="列出令牌 / list tokens", description="列出令牌。 / List tokens.")
    add_common(c, cmd_token_list)

    p = sub.add_parser("audit", help="审计日志 / the audit log",
                       description="verify 检查审计日志是否被修改或删除。 / verify checks that no audit "
                                   "entry was changed or deleted.")
    asub = p.add_subparsers(dest="audit_command", required=True)
    c = asub.add_parser("verify", help="校验哈希链 / check the hash chain",
                        description="逐条校验审计日志的哈希链；有改动时退出码为 1。 / Check the audit "
                                    "log's hash chain; exit 1 if anything was changed.")
    add_common(c, cmd_audit_verify)


DEMO_ADMIN = "admin"
DEMO_ADMIN_FILE = "demo-admin-password"


async def demo_admin(data: str | Path, db_url: str | None, hall: str) -> str:
    """The demo hall's administrator: made on its first start with a random password, which
    is kept (0600) in the data folder; the line to print about it."""
    from controller.auth.accounts import Accounts
    from controller.auth.audit import Audit
    from controller.auth.secrets import new_secret

    file = Path(data) / DEMO_ADMIN_FILE
    db = await open_hall_db(data, db_url)
    try:
        accounts = Accounts(db, hall)
        if await accounts.user(DEMO_ADMIN) is not None:
            return (f"  管理员 administrator: {DEMO_ADMIN}，密码见 password in {file}"
                    if file.exists() else f"  管理员 administrator: {DEMO_ADMIN}")
        password = new_secret()[:16]
        await accounts.add_user(DEMO_ADMIN, ["admin"], password, "演示管理员")
        await Audit(db, hall).record(cli_actor(), "local", "user_added", f"user:{DEMO_ADMIN}",
                                     {"after": {"roles": ["admin"], "demo": True}})
    finally:
        await db.dispose()
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(password + "\n")
    return (f"  管理员 administrator: {DEMO_ADMIN} / {password}\n"
            f"  （只显示这一次，另存于 shown once, kept in {file}）")

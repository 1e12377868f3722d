"""People's accounts, their sessions and programs' API tokens, in the database.

Reads are cached for ``CACHE_S`` seconds so that checking a request costs a dictionary
lookup, not a query; a change made through this object is seen at once, one made by another
process (``yimen user passwd`` while the server runs) within ``CACHE_S``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.auth.cache import MISSING, TtlCache
from controller.auth.roles import PERSON_ROLES, Principal, check_roles
from controller.auth.secrets import (
    check_password,
    check_pin,
    digest,
    hash_password,
    new_secret,
    same,
    verify_password,
)
from controller.clock import Clock, SystemClock
from controller.storage.schema import api_tokens, sessions, users

CACHE_S = 5.0
TOKEN_PREFIX = "ymt_"
#: What ``new_secret`` makes (a cookie, a token's secret) and a token's id look like: anything
#: else is refused before it costs a lookup.
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
TOKEN_ID_SHAPE = re.compile(r"[A-Za-z0-9]{12}")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


class AccountError(ValueError):
    """A refused account change: ``code``, Chinese ``message``, English ``args[0]``."""

    def __init__(self, code: str, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class User:
    name: str
    display_name: str
    roles: tuple[str, ...]
    staff: str | None
    disabled: bool
    password_hash: str
    pin_hash: str | None
    created_at: datetime
    password_changed_at: datetime

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "roles": list(self.roles),
                "staff": self.staff, "disabled": self.disabled, "has_pin": self.pin_hash is not None,
                "password_changed_at": self.password_changed_at.isoformat()}


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    user: str              # a user's name, or ``device:{id}`` for an enrolled screen
    csrf: str
    address: str
    created_at: datetime
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Expiry:
    """How long a session lives: ``idle`` since its last request, ``absolute`` since sign-in;
    an enrolled screen's session is not ended by idleness."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    device: timedelta = timedelta(days=365)


def check_name(name: str) -> str:
    if not (1 <= len(name) <= 64 and set(name) <= _NAME_CHARS and name[0].isalnum()):
        raise AccountError("bad_name", "用户名应为 1–64 位小写字母、数字、点、横线或下划线",
                           "a user name has 1-64 lowercase letters, digits, '.', '-' or '_'")
    return name


class Accounts:
    def __init__(self, db: AsyncEngine, hall: str, clock: Clock | None = None,
                 expiry: Expiry = Expiry()) -> None:
        self.db, self.hall, self.clock, self.expiry = db, hall, clock or SystemClock(), expiry
        self._users: TtlCache[User | None] = TtlCache(CACHE_S)
        self._sessions: TtlCache[Session | None] = TtlCache(CACHE_S)
        self._tokens: TtlCache[tuple[str, tuple[str, ...]] | None] = TtlCache(CACHE_S)

    # ---- people -------------------------------------------------------------------------
    async def add_user(self, name: str, roles: list[str], password: str,
                       display_name: str | None = None, staff: str | None = None) -> User:
        now = self.clock.now()
        user = User(check_name(name), display_name or name, _roles(roles), staff, False,
                    hash_password(_password(password)), None, now, now)
        async with self.db.begin() as conn:
            await self._staff_free(conn, staff, name)
            try:
                await conn.execute(insert(users).values(hall=self.hall, **_row(user)))
            except IntegrityError:
                raise AccountError("user_exists", f"用户 {name} 已存在", f"user {name} exists") from None
        self._users.pop(name)
        return user

    async def user(self, name: str) -> User | None:
        cached = self._users.get(name)
        if cached is not MISSING:
            return cast(User | None, cached)
        async with self.db.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.hall == self.hall,
                                                          users.c.name == name))).mappings().first()
        user = _user(row) if row is not None else None
        self._users.put(name, user)
        return user

    async def list_users(self) -> list[User]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(users).where(users.c.hall == self.hall)
                                       .order_by(users.c.name))).mappings().all()
        return [_user(r) for r in rows]

    async def change_user(self, name: str, changes: dict[str, Any]) -> User:
        """Change an account: any of ``roles``, ``disabled``, ``display_name``, ``staff`` and
        ``pin`` (None removes it). Disabling it ends its sessions at once."""
        user = await self._existing(name)
        new = user
        if changes.get("roles") is not None:
            new = replace(new, roles=_roles(changes["roles"]))
        if changes.get("disabled") is not None:
            new = replace(new, disabled=bool(changes["disabled"]))
        if changes.get("display_name"):
            new = replace(new, display_name=str(changes["display_name"]))
        if "staff" in changes:
            new = replace(new, staff=changes["staff"] or None)
        if "pin" in changes:
            new = replace(new, pin_hash=hash_password(_pin(changes["pin"])) if changes["pin"] else None)
        async with self.db.begin() as conn:
            await self._staff_free(conn, new.staff, name)
            await conn.execute(update(users).where(users.c.hall == self.hall, users.c.name == name)
                               .values(**_row(new)))
        self._users.pop(name)
        if new.disabled:
            await self.end_sessions(name)
        return new

    async def set_password(self, name: str, password: str, keep_session: str | None = None) -> None:
        """A new password; every session of the account but ``keep_session`` (the cookie of
        the one that changed it) ends."""
        user = await self._existing(name)
        new = replace(user, password_hash=hash_password(_password(password)),
                      password_changed_at=self.clock.now())
        async with self.db.begin() as conn:
            await conn.execute(update(users).where(users.c.hall == self.hall, users.c.name == name)
                               .values(**_row(new)))
        self._users.pop(name)
        await self.end_sessions(name, keep=digest(keep_session) if keep_session else None)

    async def check(self, name: str, password: str) -> User | None:
        """The account if ``password`` is its password and it is not disabled (the hash is
        checked even for an unknown name, so both take the same time)."""
        user = await self.user(name)
        ok = await verify_password(user.password_hash if user else None, password)
        return user if ok and user is not None and not user.disabled else None

    async def _staff_free(self, conn: Any, staff: str | None, name: str) -> None:
        """One account per clerk (工号): ``staff`` is not another account's."""
        if staff is None:
            return
        other = (await conn.execute(select(users.c.name).where(
            users.c.hall == self.hall, users.c.staff == staff, users.c.name != name))).scalar()
        if other is not None:
            raise AccountError("staff_taken", f"工号 {staff} 已属于用户 {other}",
                               f"staff id {staff} already belongs to user {other}")

    async def check_pin(self, staff: str, pin: str) -> bool:
        """Whether ``pin`` is the keypad PIN of the enabled account linked to clerk ``staff``."""
        async with self.db.connect() as conn:
            row = (await conn.execute(select(users.c.pin_hash).where(
                users.c.hall == self.hall, users.c.staff == staff, users.c.disabled.is_(False),
                users.c.pin_hash.is_not(None)))).first()
        return await verify_password(row[0] if row else None, pin) and row is not None

    async def _existing(self, name: str) -> User:
        self._users.pop(name)
        user = await self.user(name)
        if user is None:
            raise AccountError("unknown_user", f"没有用户 {name[:64]}", f"no user {name[:64]!r}")
        return user

    # ---- sessions -----------------------------------------------------------------------
    async def open_session(self, user: str, address: str) -> tuple[str, Session]:
        """A new session for ``user`` (or ``device:{id}``): the cookie value, once, and the row."""
        cookie, now = new_secret(), self.clock.now()
        s = Session(digest(cookie), user, new_secret(), address[:64], now, now)
        async with self.db.begin() as conn:
            await conn.execute(insert(sessions).values(hall=self.hall, id_hash=s.id_hash, user=s.user,
                                                       csrf=s.csrf, address=s.address,
                                                       created_at=now, seen_at=now))
        self._sessions.put(s.id_hash, s)
        return cookie, s

    async def session(self, cookie: str) -> Session | None:
        """The live session of a cookie; an expired one is ended. Its last-seen time is
        written at most once a minute."""
        if not SECRET_SHAPE.fullmatch(cookie):
            return None
        key = digest(cookie)
        cached = self._sessions.get(key)
        if cached is not MISSING:
            s = cast(Session | None, cached)
        else:
            async with self.db.connect() as conn:
                row = (await conn.execute(select(sessions).where(
                    sessions.c.id_hash == key, sessions.c.hall == self.hall))).mappings().first()
            s = Session(**{k: row[k] for k in Session.__slots__}) if row is not None else None
            self._sessions.put(key, s)
        if s is None:
            return None
        now = self.clock.now()
        device = s.user.startswith("device:")
        if (now - s.created_at > (self.expiry.device if device else self.expiry.absolute)
                or (not device and now - s.seen_at > self.expiry.idle)):
            await self.end_session(cookie)
            return None
        if now - s.seen_at > timedelta(minutes=1):
            s = replace(s, seen_at=now)
            async with self.db.begin() as conn:
                done = await conn.execute(update(sessions).where(sessions.c.id_hash == key)
                                          .values(seen_at=now))
            if done.rowcount != 1:               # ended meanwhile (a logout, a new password)
                self._sessions.pop(key)
                return None
            self._sessions.put(key, s)
        return s

    async def end_session(self, cookie: str) -> None:
        await self._end(sessions.c.id_hash == digest(cookie))

    async def end_sessions(self, user: str, keep: str | None = None) -> None:
        """End every session of ``user`` but the one whose hash is ``keep``."""
        where = (sessions.c.hall == self.hall) & (sessions.c.user == user)
        await self._end(where & (sessions.c.id_hash != keep) if keep else where)

    async def _end(self, where: Any) -> None:
        async with self.db.begin() as conn:
            await conn.execute(delete(sessions).where(where))
        self._sessions.clear()               # a handful of entries; re-read on the next request

    # ---- API tokens ---------------------------------------------------------------------
    async def add_token(self, name: str, roles: list[str]) -> tuple[str, str]:
        """A new token: its id and its text (``ymt_{id}_{secret}``), shown once."""
        token_id, secret = new_secret()[:12].replace("-", "x").replace("_", "y"), new_secret()
        async with self.db.begin() as conn:
            await conn.execute(insert(api_tokens).values(
                hall=self.hall, id=token_id, name=name[:64] or token_id, roles=_roles(roles),
                secret_hash=digest(secret), created_at=self.clock.now(), revoked_at=None))
        return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"

    async def revoke_token(self, token_id: str) -> None:
        async with self.db.begin() as conn:
            done = await conn.execute(update(api_tokens).where(
                api_tokens.c.hall == self.hall, api_tokens.c.id == token_id,
                api_tokens.c.revoked_at.is_(None)).values(revoked_at=self.clock.now()))
        self._tokens.pop(token_id)
        if done.rowcount != 1:
            raise AccountError("unknown_token", f"没有有效的令牌 {token_id[:16]}",
                               f"no live token {token_id[:16]!r}")

    async def list_tokens(self) -> list[dict[str, Any]]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(api_tokens).where(api_tokens.c.hall == self.hall)
                                       .order_by(api_tokens.c.created_at))).mappings().all()
        return [{"id": r["id"], "name": r["name"], "roles": list(r["roles"]),
                 "created_at": r["created_at"].isoformat(),
                 "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None} for r in rows]

    async def token(self, text: str) -> Principal | None:
        """The program a bearer token belongs to, or None (unknown, revoked, malformed)."""
        token_id, _, secret = text.removeprefix(TOKEN_PREFIX).partition("_")
        if not (text.startswith(TOKEN_PREFIX) and TOKEN_ID_SHAPE.fullmatch(token_id)
                and SECRET_SHAPE.fullmatch(secret)):
            return None
        found = self._tokens.get(token_id)
        if found is MISSING:
            async with self.db.connect() as conn:
                row = (await conn.execute(select(api_tokens.c.secret_hash, api_tokens.c.roles).where(
                    api_tokens.c.hall == self.hall, api_tokens.c.id == token_id,
                    api_tokens.c.revoked_at.is_(None)))).first()
            found = (row[0], tuple(row[1])) if row else None
            self._tokens.put(token_id, found)
        known = cast(tuple[str, tuple[str, ...]] | None, found)
        if known is None or not same(known[0], digest(secret)):
            return None
        return Principal("token", token_id, known[1])


def _roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    try:
        return check_roles(roles, PERSON_ROLES)
    except ValueError as exc:
        raise AccountError("bad_role", f"角色无效：{exc}", str(exc)) from None


def _password(password: str) -> str:
    try:
        return check_password(password)
    except ValueError as exc:
        raise AccountError("weak_password", exc.message, str(exc)) from None  # type: ignore[attr-defined]


def _pin(pin: str) -> str:
    try:
        return check_pin(pin)
    except ValueError as exc:
        raise AccountError("bad_pin", exc.message, str(exc)) from None  # type: ignore[attr-defined]


def _row(user: User) -> dict[str, Any]:
    return {k: getattr(user, k) for k in User.__slots__}


def _user(row: Any) -> User:
    fields: dict[str, Any] = {k: row[k] for k in User.__slots__}
    return User(**{**fields, "roles": tuple(fields["roles"])})

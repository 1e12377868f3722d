"""Hashing what people and programs prove themselves with.

People's passwords and keypad PINs: argon2id (``argon2-cffi``) with RFC 9106's second
recommended parameters — 3 passes over 64 MiB, 4 lanes — about 130 ms per check on a 2-core
hall server, run off the event loop. Session cookies and API tokens are 256-bit random
values, so a plain SHA-256 of them is all the database keeps and a check costs microseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)
MIN_PASSWORD = 10
MAX_PASSWORD = 256
#: Checked against when the account does not exist, so a miss costs what a hit costs.
_DUMMY = HASHER.hash(secrets.token_urlsafe(16))
#: At most two checks at once (each takes 64 MiB and a core): a burst of sign-ins or keypad
#: PINs waits its turn instead of taking the server's memory.
_CHECKING = threading.BoundedSemaphore(2)


class WeakSecret(ValueError):
    """A password or PIN the hall will not take; ``message`` is Chinese, ``args[0]`` English."""

    def __init__(self, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message = message


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise WeakSecret(f"密码长度应为 {MIN_PASSWORD}–{MAX_PASSWORD} 个字符",
                         f"a password has {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    if len(set(password)) < 4:
        raise WeakSecret("密码过于简单", "the password is too simple")
    return password


def check_pin(pin: str) -> str:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        raise WeakSecret("PIN 应为 4–8 位数字", "a PIN has 4-8 digits")
    return pin


def hash_password(password: str) -> str:
    return HASHER.hash(password)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such account, checked all the same)."""
    def check() -> bool:
        with _CHECKING:
            try:
                return HASHER.verify(stored or _DUMMY, password) and stored is not None
            except (VerificationError, InvalidHashError):
                return False
    return await asyncio.to_thread(check)


def new_secret() -> str:
    """A 256-bit random value, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())

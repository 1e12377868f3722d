"""Personal data encrypted at rest with the hall's key (个人信息加密存储): an applicant's ID
number on a case is kept sealed (ChaCha20-Poly1305 under a key kept in the data folder, 0600)
and opened only for a role that needs it, each opening audited by the door that asks.

A sealed value is ``v1.{nonce}.{ciphertext}`` in URL-safe base64, bound to its hall (a value
sealed for another hall does not open here, even under a copied key file).
The key file must be backed up with the database: without it sealed numbers cannot be read.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

#: the key file in the data folder
CASE_KEY = "case-key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealbox:
    def __init__(self, secret: bytes) -> None:
        self._aead = ChaCha20Poly1305(hashlib.sha256(b"yimen-sealbox\0" + secret).digest())

    def seal(self, text: str, bound_to: str) -> str:
        nonce = os.urandom(12)
        return f"v1.{_b64(nonce)}.{_b64(self._aead.encrypt(nonce, text.encode(), bound_to.encode()))}"

    def open(self, sealed: str, bound_to: str) -> str | None:
        """The value, or None if it was not sealed here for ``bound_to`` (or was altered)."""
        try:
            version, nonce, body = sealed.split(".")
            if version != "v1":
                return None
            return self._aead.decrypt(_unb64(nonce), _unb64(body), bound_to.encode()).decode()
        except (ValueError, InvalidTag, UnicodeDecodeError):
            return None

"""Sealed ID numbers (封装的身份证号), the box's side: a card reader's box encrypts the ID number
it read to the hall server's public key, so neither the network, nor the broker, nor a stolen
box can read it or make a token of it; only the hall server opens it (``controller.bus.idcards``),
turns it into the ticket's ``id_token`` with a key of its own and forgets it.

The construction (ECIES over X25519), for one ID number and one hall:

- a new X25519 key pair ``e`` for every seal; ``shared`` = X25519(``e``'s private key, the
  server's public key);
- key = HKDF-SHA256(``shared``, salt = ``e``'s public key ‖ the server's public key,
  info = ``yimen/v1 id_sealed {hall}``), 32 bytes;
- ``box`` = ChaCha20-Poly1305(key) of the number (upper-case ASCII), nonce 12 zero bytes (the
  key serves this one message only), associated data the version prefix;
- ``id_sealed`` = ``v1.`` + URL-safe base64 without padding of (``e``'s public key ‖ ``box``):
  91 characters for an 18-character number.

The server's public key travels as ``x25519:`` and its 32 bytes in URL-safe base64 (43
characters): ``yimen device credentials ID`` prints it, a box's file holds it as
``id_public_key``. It is no secret: it can seal, never open.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1."                     # a sealed value's version
AAD = PREFIX.encode("ascii")
KEY_PREFIX = "x25519:"             # a public key's text
KEY_BYTES, TAG_BYTES = 32, 16
NONCE = bytes(12)                  # every seal has a key of its own: one message per key
MAX_SEALED = 256                   # characters; a sealed ID number has 91
_B64 = re.compile(r"[A-Za-z0-9_-]+")
BAD_KEY = ("应为大厅服务器的身份证公钥 x25519:…（yimen device credentials 设备编号 显示）",
           "expected the hall server's ID-card public key, x25519:… (yimen device credentials ID "
           "prints it)")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """Strict URL-safe base64 without padding: ``ValueError`` for other characters, padding
    or a non-canonical last character (one value, one spelling)."""
    if not _B64.fullmatch(text):
        raise ValueError("not URL-safe base64")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not URL-safe base64") from None
    if b64(data) != text:
        raise ValueError("not canonical base64")
    return data


def public_text(key: X25519PublicKey) -> str:
    """A public key as a box's file and the provisioning text hold it."""
    return KEY_PREFIX + b64(key.public_bytes_raw())


def load_public_key(text: object) -> X25519PublicKey:
    """The hall server's public key from its text; ``ValueError`` (zh-CN / English) otherwise."""
    if isinstance(text, str) and text.startswith(KEY_PREFIX):
        try:
            raw = unb64(text[len(KEY_PREFIX):])
            if len(raw) == KEY_BYTES:
                return X25519PublicKey.from_public_bytes(raw)
        except ValueError:
            pass
    raise ValueError(" / ".join(BAD_KEY))


def cipher(shared: bytes, ephemeral: bytes, server: bytes, hall: str) -> ChaCha20Poly1305:
    """The one-message cipher both sides derive from the X25519 shared secret: HKDF-SHA256
    salted with both public keys, its info naming the purpose and the hall."""
    key = HKDF(hashes.SHA256(), 32, salt=ephemeral + server,
               info=f"yimen/v1 id_sealed {hall}".encode()).derive(shared)
    return ChaCha20Poly1305(key)


def seal(public_key: X25519PublicKey | str, id_number: str, hall: str) -> str:
    """``id_number`` sealed to the hall server's ``public_key`` for ``hall``: the take's
    ``id_sealed``. A new ephemeral key every time, so the same number never seals alike."""
    server = public_key if isinstance(public_key, X25519PublicKey) else load_public_key(public_key)
    ephemeral = X25519PrivateKey.generate()
    mine, theirs = ephemeral.public_key().public_bytes_raw(), server.public_bytes_raw()
    box = cipher(ephemeral.exchange(server), mine, theirs, hall).encrypt(
        NONCE, id_number.strip().upper().encode("utf-8"), AAD)
    return PREFIX + b64(mine + box)


def sealer(public_key: str, hall: str) -> Callable[[str], str]:
    """``seal`` with a box's configured key (read once) and hall: what a card reader's driver
    hands each number it reads to, before it lets go of it."""
    key = load_public_key(public_key)
    return lambda id_number: seal(key, id_number, hall)


def split(sealed: object) -> tuple[bytes, bytes]:
    """A sealed value's ephemeral public key and box; ``ValueError`` if it is not shaped like
    one (checked before any key is used)."""
    if not isinstance(sealed, str) or not sealed.startswith(PREFIX) or len(sealed) > MAX_SEALED:
        raise ValueError("not a v1 sealed value")
    raw = unb64(sealed[len(PREFIX):])
    if len(raw) <= KEY_BYTES + TAG_BYTES:
        raise ValueError("too short")
    return raw[:KEY_BYTES], raw[KEY_BYTES:]

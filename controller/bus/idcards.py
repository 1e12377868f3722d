"""ID cards at the bus door (身份证): the hall server opens a take's ``id_sealed`` (sealed to its
public key by the card reader's box, ``protocol.idseal``), turns the number into the ticket's
``id_token`` and forgets it; the engine and the core see only the token.

Both keys come from the hall's ID secret, ``DATA/id-token.key`` (random, 0600, made on the
first start; an empty or missing file means a new one, and so new tokens and a new key pair
that every box with a card reader must be given again): the token key is the secret itself
(HMAC-SHA-256, cut to 128 bits: the same card gives the same token at every kiosk, so one
person waits once per line), the X25519 private key is derived from it with HKDF-SHA256 under
its own info. Neither leaves the server; the public key is what boxes are provisioned with.

A value that is not a sealed value, was altered, was sealed to another key or for another
hall, or opens to something that is not an ID number is refused (``bad_field``,
身份证信息无法解读) with nothing changed; no message repeats the value or what it held.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from controller.core.commands import ID_NUMBER, BadArguments
from protocol import idseal

SEAL_KEY_INFO = b"yimen/v1 id_sealed X25519 private key"
UNREADABLE = "身份证信息无法解读，请重新读卡"


def id_token(key: bytes, id_number: str) -> str:
    """The hall's token for an ID number: a keyed hash (the key never leaves the hall server),
    the same at every kiosk, so one person waits once per line; the number is kept nowhere."""
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()[:32]


class IdCards:
    """The hall server's ID-card keys for ``hall``, from its ID secret."""

    def __init__(self, secret: bytes, hall: str) -> None:
        self.hall = hall
        self._token_key = secret
        self._private = X25519PrivateKey.from_private_bytes(
            HKDF(hashes.SHA256(), 32, salt=None, info=SEAL_KEY_INFO).derive(secret))
        self._public = self._private.public_key().public_bytes_raw()
        #: what boxes with a card reader are provisioned with (``id_public_key``)
        self.public_key = idseal.public_text(self._private.public_key())

    def __repr__(self) -> str:
        return f"IdCards({self.hall!r}, {self.public_key!r})"

    def unseal(self, sealed: object) -> str:
        """The ID number ``sealed`` holds (upper-case), or ``BadArguments``."""
        try:
            ephemeral, box = idseal.split(sealed)
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            plain = idseal.cipher(shared, ephemeral, self._public, self.hall).decrypt(
                idseal.NONCE, box, idseal.AAD)
        except (ValueError, InvalidTag):
            raise BadArguments("id_sealed cannot be opened: not sealed to this hall's public key, "
                               "or altered", missing=False, plain=UNREADABLE) from None
        number = plain.decode("ascii", "replace")
        if not ID_NUMBER.fullmatch(number):
            raise BadArguments("id_sealed does not hold an ID number", missing=False, plain=UNREADABLE)
        return number.upper()

    def token(self, sealed: object) -> str:
        """The ``id_token`` of the number ``sealed`` holds."""
        return id_token(self._token_key, self.unseal(sealed))

    def with_token(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A take's fields with ``id_sealed`` turned into ``id_token`` and dropped. Refused: a
        value that cannot be opened, or a sealed number and a token both."""
        fields = dict(data)
        sealed = fields.pop("id_sealed", None)
        if sealed is None or sealed == "":
            return fields
        if fields.get("id_token"):
            raise BadArguments("id_sealed and id_token: send one of them", missing=False,
                               plain="身份证信息和令牌只能发送其一")
        fields["id_token"] = self.token(sealed)
        return fields

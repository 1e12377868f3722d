"""The address of a ticket's status page (排队进度): ``/t/{token}``.

The token is HMAC-SHA-256 of the ticket's id under the hall's status key (kept in the data
folder), cut to 128 bits and written in URL-safe base64 (22 characters). Whoever holds the
ticket (its QR code, the kiosk's answer) can follow it; nobody can work out another
ticket's address from its date and number, and a ticket's id alone opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection

TOKEN_BYTES = 16                       # 128 bits
TOKEN_CHARS = 22                       # their URL-safe base64, without padding


class StatusLinks:
    """Tokens of ticket ids under one key, and back: the ids seen so far by token."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._token_of: dict[str, str] = {}
        self._id_of: dict[str, str] = {}

    def token(self, ticket_id: str) -> str:
        token = self._token_of.get(ticket_id)
        if token is None:
            mac = hmac.new(self._key, ticket_id.encode(), hashlib.sha256).digest()[:TOKEN_BYTES]
            token = base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
            self._token_of[ticket_id] = token
            self._id_of[token] = ticket_id
        return token

    def find(self, token: str, ticket_ids: Collection[str]) -> str | None:
        """The id among ``ticket_ids`` whose token is ``token``, or None. Ids not seen before
        are indexed first (each once); ids no longer among ``ticket_ids`` are forgotten when
        they outnumber the live ones."""
        if len(token) != TOKEN_CHARS:
            return None
        if token not in self._id_of:
            if len(self._token_of) > 2 * len(ticket_ids) + 64:
                self._token_of.clear()
                self._id_of.clear()
            for ticket_id in ticket_ids:
                if ticket_id not in self._token_of:
                    self.token(ticket_id)
        found = self._id_of.get(token)
        return found if found is not None and found in ticket_ids else None

"""The device side of protocol v1's Security section (pure): credentials derived from the
hall's bus secret, so the broker (embedded or Mosquitto) and a device's provisioning agree
without a list to keep in step. The ACL and the hall's password list are the controller's
(``controller.bus.security``)."""

from __future__ import annotations

import hashlib
import hmac


def derived_password(secret: str, user: str) -> str:
    """A device's (or the controller's) MQTT password when the hall file sets none."""
    return hmac.new(secret.encode(), f"yimen-mqtt:{user}".encode(), hashlib.sha256).hexdigest()[:32]


def id_token_key(secret: str) -> bytes:
    """The key ID-card readers hash ID numbers with: the same card gives the same token at
    every kiosk of the hall (one waiting ticket per person per line), and nothing else."""
    return hmac.new(secret.encode(), b"yimen-id-token", hashlib.sha256).digest()

"""The device side of protocol v1's Security section (pure).

A device logs in as itself (its id) with its own password, made for it by the hall server
(``yimen device credentials ID``) and kept only in that device's own file. No secret is
shared by the hall's devices: a stolen box gives away its own login and nothing else, and the
hall cuts it off by disabling it. The ACL and the stored hashes are the controller's
(``controller.bus``). A card reader's ID number goes to the hall server sealed to its public
key (``protocol.idseal``): a box holds that public key, which seals and never opens; only
the server holds the keys that open it and turn it into a token.
"""

from __future__ import annotations

import base64

#: What a device file that still has the old hall-wide ``secret`` is told (zh-CN, English).
NO_SHARED_SECRET = ("不再使用全厅共享的 secret：请为每台设备写入它自己的密码（由 yimen device "
                    "credentials 设备编号 生成）",
                    "there is no hall-wide secret any more: give each device its own password "
                    "(yimen device credentials ID makes one)")


def own_password(value: object) -> str:
    """A device's password as its file gives it: printable ASCII without spaces, at most 256
    characters; ``ValueError`` (zh-CN / English) otherwise."""
    if not (isinstance(value, str) and 0 < len(value) <= 256 and value.isascii()
            and value.isprintable() and " " not in value):
        raise ValueError("应为设备自己的密码（yimen device credentials 设备编号 生成） / "
                         "expected the device's own password (yimen device credentials ID makes one)")
    return value


def basic_auth(device: str, password: str) -> str:
    """The ``Authorization`` header a device program (a kiosk box) sends the hall server's
    HTTP side with its own credential: HTTP Basic (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{device}:{password}".encode()).decode("ascii")

"""Protocol v1 payloads, sans I/O: encoding, decoding a device's event, replies on ``cmd``.

Addition to protocol v1 (optional, additive): a kiosk's ``take`` may carry ``id_sealed``, the
ID number its card reader read, sealed to the hall server's public key (``protocol.idseal``),
so the raw number never crosses MQTT; only the hall server opens it, turns it into the
ticket's ``id_token`` with a key only it has and keeps the number nowhere
(``docs/mqtt-security.md``). ``id_token`` is accepted as before.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from controller.core.errors import YimenError

MAX_PAYLOAD = 16 * 1024


class ProtocolError(YimenError, ValueError):
    """An event the controller cannot act on; answered with an ``error`` reply."""

    def __init__(self, code: str, message: str, detail: str = "", ref: str | None = None) -> None:
        super().__init__(f"{code}: {detail or message}")
        self.code, self.message, self.detail, self.ref = code, message, detail, ref


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    device: str
    event_id: str
    type: str
    body: dict[str, Any]


def parse_event(device: str, payload: bytes) -> DeviceEvent:
    """Decode one ``device/{id}/event`` payload; raise ``ProtocolError`` for anything off."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("payload_too_large", "消息过长", f"{len(payload)} bytes")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_json", "消息格式错误", str(exc)) from None
    except RecursionError:              # absurd nesting: the parser gave up
        raise ProtocolError("bad_json", "消息格式错误", "nested too deeply") from None
    if not isinstance(body, dict):
        raise ProtocolError("bad_payload", "消息格式错误", "an event must be a JSON object")
    event_id, kind = body.get("event_id"), body.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 96:
        raise ProtocolError("missing_field", "缺少事件编号", "event_id must be a short string")
    if not event_id.isprintable():      # a lone surrogate or a control character
        raise ProtocolError("bad_field", "信息格式错误", "event_id must be printable text")
    if not isinstance(kind, str):
        raise ProtocolError("missing_field", "缺少事件类型", "type must be a string", ref=event_id)
    return DeviceEvent(device, event_id, kind, body)


def reply(ref: str, op: str, **body: Any) -> dict[str, Any]:
    """A successful reply on ``cmd``."""
    return {"cmd_id": uuid.uuid4().hex, "op": op, "ref": ref, "ok": True, **body}


def error_reply(ref: str | None, code: str, message: str, detail: str = "") -> dict[str, Any]:
    """A refusal on ``cmd``: ``op`` ``error`` with a zh-CN message for the device's screen."""
    err = {"code": code, "message": message}
    if detail:
        err["detail"] = detail
    return {"cmd_id": uuid.uuid4().hex, "op": "error", "ref": ref, "ok": False, "error": err}


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


"""Device protocol v1 (MQTT), sans I/O: topics, event parsing, commands, replies.

``../shared/protocol.md`` is the contract; this module is its executable form. Nothing here
touches a socket: bytes and topics in, ``Command``s and payload dicts out.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from controller.config import Device
from controller.core.commands import Command

VERSION = "v1"
MAX_PAYLOAD = 16 * 1024
DEVICE_LEAVES = ("info", "availability", "event", "state")
_DEVICE_TOPIC = re.compile(r"^device/([a-z0-9][a-z0-9-]{0,47})/(info|availability|event|state)$")

#: caller keys → hall commands, with the fields each key carries
CALLER_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "next": ("call_next", ()), "recall": ("recall", ()), "no_show": ("no_show", ()),
    "pause": ("pause", ()), "resume": ("resume", ()), "done": ("done", ()),
    "evaluate": ("evaluate", ()), "hold": ("hold", ()), "call": ("call_number", ("number",)),
    "transfer": ("transfer", ("to_service", "to_window")), "login": ("login", ("staff",)),
    "logout": ("logout", ()),
}
TAKE_FIELDS = ("service", "priority", "appointment", "id_token", "phone_tail")
#: which event types each device kind may send
EVENT_KINDS = {"take": ("kiosk", "terminal"), "key": ("caller",), "rating": ("evaluator",)}


class ProtocolError(Exception):
    """An event the controller cannot act on; answered with an ``error`` reply."""

    def __init__(self, code: str, message: str, detail: str = "", ref: str | None = None) -> None:
        super().__init__(f"{code}: {detail or message}")
        self.code, self.message, self.detail, self.ref = code, message, detail, ref


class Topics:
    """Topic names under ``yimen/v1/{hall}/``."""

    def __init__(self, hall: str) -> None:
        self.root = f"yimen/{VERSION}/{hall}/"
        self.state = self.root + "controller/state"
        self.calls = self.root + "calls"
        self.board = self.root + "board"
        self.subscriptions = [self.root + f"device/+/{leaf}" for leaf in DEVICE_LEAVES]

    def device(self, device: str, leaf: str) -> str:
        return f"{self.root}device/{device}/{leaf}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(device, leaf)`` for a device topic of this hall, else ``None``."""
        if not topic.startswith(self.root):
            return None
        m = _DEVICE_TOPIC.match(topic[len(self.root):])
        return (m[1], m[2]) if m else None


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
    if not isinstance(body, dict):
        raise ProtocolError("bad_payload", "消息格式错误", "an event must be a JSON object")
    event_id, kind = body.get("event_id"), body.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 96:
        raise ProtocolError("missing_field", "缺少事件编号", "event_id must be a short string")
    if not isinstance(kind, str):
        raise ProtocolError("missing_field", "缺少事件类型", "type must be a string", ref=event_id)
    return DeviceEvent(device, event_id, kind, body)


def _string_fields(event: DeviceEvent, names: tuple[str, ...], required: tuple[str, ...] = ()
                   ) -> dict[str, str]:
    out = {}
    for name in names:
        value = event.body.get(name)
        if value is None:
            if name in required:
                raise ProtocolError("missing_field", "缺少必要信息", f"{name} is required")
            continue
        if not isinstance(value, str):
            raise ProtocolError("bad_field", "信息格式错误", f"{name} must be a string")
        out[name] = value
    return out


def to_command(event: DeviceEvent, device: Device | None) -> Command:
    """The hall command an event stands for, checked against the device's configuration."""
    if device is None:
        raise ProtocolError("unknown_device", "设备未登记", f"device {event.device!r} is not configured")
    kinds = EVENT_KINDS.get(event.type)
    if kinds is None:
        raise ProtocolError("unknown_type", "无法识别的事件", f"unknown event type {event.type!r}")
    if device.kind not in kinds:
        raise ProtocolError("wrong_kind", "该设备不能发送此事件",
                            f"a {device.kind} does not send {event.type!r}")
    if event.type == "take":
        return Command("take", _string_fields(event, TAKE_FIELDS, ("service",)))
    if device.window is None:
        raise ProtocolError("not_bound", "设备未绑定窗口", "this device is not bound to a window")
    if event.type == "key":
        key = event.body.get("key")
        if not isinstance(key, str) or key not in CALLER_KEYS:
            raise ProtocolError("unknown_key", "无法识别的按键", f"unknown key {key!r}")
        op, names = CALLER_KEYS[key]
        required = names if key in ("call", "login") else ()
        return Command(op, {"window": device.window, **_string_fields(event, names, required)})
    # rating
    args = {"window": device.window, **_string_fields(event, ("session", "level"),
                                                      ("session", "level"))}
    reasons = event.body.get("reasons")
    if reasons is not None:
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise ProtocolError("bad_field", "信息格式错误", "reasons must be a list of strings")
        args["reasons"] = ",".join(reasons)
    return Command("rate", args)


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

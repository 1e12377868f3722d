"""Device protocol v1, the controller's side: which hall command a device's event stands for.

The wire itself (topics, payloads, replies) is the shared ``protocol`` package; this module
maps a parsed ``DeviceEvent`` onto a ``Command``, checked against the device's configuration.
A take's ``id_sealed`` (a card reader's ID number, sealed to the hall server's public key)
is opened here and becomes its ``id_token`` (``controller.bus.idcards``); the number goes no
further. A raw ``id_number`` is never taken.
"""

from __future__ import annotations

from typing import Any

from controller.bus.idcards import IdCards
from controller.config import Device
from controller.core.commands import WINDOW_KEYS, BadArguments, Command, Rate, Take, decode
from protocol.payloads import DeviceEvent, ProtocolError

#: which event types each device kind may send
EVENT_KINDS = {"take": ("kiosk", "terminal"), "key": ("caller",), "rating": ("evaluator",)}


def _decode(kind: type[Command], event: DeviceEvent, ids: IdCards | None = None,
            **fixed: Any) -> Command:
    """The command's declared fields from the event (other keys are the envelope, or a later
    protocol's additions, and are left alone), checked against the declaration; with
    ``ids``, an ``id_sealed`` becomes the ``id_token`` first."""
    try:
        body = ids.with_token(event.body) if ids is not None else event.body
        fields = {k: v for k, v in body.items() if k in kind.model_fields and k not in fixed}
        return decode(kind, fields, **fixed)
    except BadArguments as exc:
        if exc.missing:
            raise ProtocolError("missing_field", "缺少必要信息", exc.message_en, ref=event.event_id) from None
        raise ProtocolError("bad_field", exc.plain or "信息格式错误", exc.message_en,
                            ref=event.event_id) from None


def to_command(event: DeviceEvent, device: Device | None, ids: IdCards | None = None) -> Command:
    """The hall command an event stands for, checked against the device's configuration."""
    if device is None:
        raise ProtocolError("unknown_device", "设备未登记", f"device {event.device!r} is not configured")
    if not device.enabled:
        raise ProtocolError("device_disabled", "设备已停用", f"device {event.device!r} is disabled")
    kinds = EVENT_KINDS.get(event.type)
    if kinds is None:
        raise ProtocolError("unknown_type", "无法识别的事件", f"unknown event type {event.type[:40]!r}")
    if device.kind not in kinds:
        raise ProtocolError("wrong_kind", "该设备不能发送此事件",
                            f"a {device.kind} does not send {event.type!r}")
    if event.type == "take":
        if event.body.get("id_number") not in (None, ""):
            raise ProtocolError("bad_field", "身份证号不能明文发送", "a raw id_number is never taken: "
                                "seal it to the hall server's public key (id_sealed)", ref=event.event_id)
        if ids is None and event.body.get("id_sealed"):
            raise ProtocolError("bad_field", "本厅不接收身份证信息", "this hall takes no id_sealed",
                                ref=event.event_id)
        return _decode(Take, event, ids)
    if device.window is None:
        raise ProtocolError("not_bound", "设备未绑定窗口", "this device is not bound to a window")
    if event.type == "key":
        key = event.body.get("key")
        kind = WINDOW_KEYS.get(key) if isinstance(key, str) else None
        if kind is None:
            raise ProtocolError("unknown_key", "无法识别的按键", f"unknown key {str(key)[:40]!r}")
        return _decode(kind, event, window=device.window)
    return _decode(Rate, event, window=device.window)

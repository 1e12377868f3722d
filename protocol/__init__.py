"""MQTT device protocol v1, the part the controller and the devices share.

``../shared/protocol.md`` is the contract; this package is its executable form, with no
dependency on the controller's engine, storage or web app, so a kiosk box, the serial gateway
and the simulators load only what they speak:

- ``protocol.topics``: ``Topics`` (names under ``yimen/v1/{hall}/``), ``VERSION``,
  ``DEVICE_LEAVES``, ``DEVICE_TOPIC``;
- ``protocol.payloads``: ``encode``, ``parse_event``, ``DeviceEvent``, ``reply``,
  ``error_reply``, ``ProtocolError``, ``MAX_PAYLOAD`` (sans I/O);
- ``protocol.link``: ``MqttLink`` and ``BrokerAddress``, one reconnecting MQTT connection;
- ``protocol.client``: ``DeviceClient`` and ``DeviceTimeout``, one device's identity;
- ``protocol.credentials``: what a device's file may hold: its own password, never a
  hall-wide secret;
- ``protocol.idseal``: ``seal``, an ID number sealed to the hall server's public key (the
  take's ``id_sealed``);
- ``protocol.tasks``: ``cancel_all``.

The sans-I/O names (topics and payloads) are importable from the package itself.
"""

from protocol.payloads import (
    MAX_PAYLOAD,
    DeviceEvent,
    ProtocolError,
    encode,
    error_reply,
    parse_event,
    reply,
)
from protocol.topics import DEVICE_LEAVES, DEVICE_TOPIC, VERSION, Topics

__all__ = [
    "DEVICE_LEAVES", "DEVICE_TOPIC", "MAX_PAYLOAD", "VERSION", "DeviceEvent", "ProtocolError",
    "Topics", "encode", "error_reply", "parse_event", "reply",
]

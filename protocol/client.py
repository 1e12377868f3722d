"""One device's identity on the bus, speaking protocol v1 (the device side).

On every (re)connect it publishes its retained ``info`` and ``availability`` (its will says
``offline``) and sends again every event still waiting for its reply, with the same
``event_id``, so a press is acted on once however often the link drops. Commands are
de-duplicated by ``cmd_id``. The simulators, the serial gateway and the kiosk box build on
this class.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller import __version__
from protocol.link import BrokerAddress, MqttLink
from protocol.payloads import encode
from protocol.tasks import cancel_all
from protocol.topics import Topics

log = logging.getLogger("yimen.device")

REPLY_OPS = frozenset({"ticket", "ack", "error"})
_SEEN_CMDS = 256


@dataclass(slots=True)
class _Pending:
    """An event waiting for its reply; ``sent_on`` is the connection it last went out on."""

    payload: bytes
    reply: asyncio.Future
    sent_on: int = 0


class DeviceTimeout(Exception):
    """No reply to an event in time (the controller or the broker is away)."""


class DeviceClient:
    """A device: ``await send("key", key="next")`` returns the controller's reply."""

    kind = "terminal"
    subscribe_calls = False

    def __init__(self, hall: str, device_id: str, broker: BrokerAddress, password: str | None,
                 *, model: str = "yimen-sim", caps: dict[str, Any] | None = None,
                 retry_s: float = 3.0) -> None:
        self.id = device_id
        self.topics = Topics(hall)
        self.info = {"kind": self.kind, "model": model, "fw": __version__, "caps": caps or {}}
        self.retry_s = retry_s
        self.boot_id = uuid.uuid4().hex[:8]
        self._seq = 0
        self._pending: dict[str, _Pending] = {}
        self._seen_cmds: OrderedDict[str | None, None] = OrderedDict()   # by cmd_id
        self.shown: dict[str, Any] | None = None     # the last ``set``
        self.controller: dict[str, Any] | None = None
        self._changed = asyncio.Condition()
        subs = [self.topics.device(device_id, "set"), self.topics.device(device_id, "cmd"),
                self.topics.state]
        if self.subscribe_calls:
            subs += [self.topics.calls, self.topics.board]
        self.link = MqttLink(broker, device_id, username=device_id, password=password,
                             will=(self.topics.device(device_id, "availability"), b"offline"),
                             subscriptions=subs, on_connect=self._on_connect,
                             on_message=self._on_message)
        self._task: asyncio.Task | None = None
        #: what ``availability`` says while connected (a bridged device follows its bus)
        self.available = True

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self._task = asyncio.create_task(self.link.run(), name=f"device-{self.id}")

    async def stop(self) -> None:
        if self.link.connected.is_set():
            await self.link.publish(self.topics.device(self.id, "availability"), b"offline",
                                    retain=True)
        self.link.close()
        if self._task is not None:
            await cancel_all([self._task])
            self._task = None

    async def _on_connect(self) -> None:
        await self.link.publish(self.topics.device(self.id, "info"), encode(self.info), retain=True)
        await self._publish_availability()
        for pending in list(self._pending.values()):
            if pending.sent_on < self.link.connects:      # not yet sent on this connection
                await self._publish_event(pending)

    async def set_available(self, online: bool) -> None:
        """Say ``online``/``offline`` (retained), now if connected, else on connecting."""
        if online != self.available:
            self.available = online
            if self.link.connected.is_set():
                await self._publish_availability()

    async def _publish_availability(self) -> None:
        await self.link.publish(self.topics.device(self.id, "availability"),
                                b"online" if self.available else b"offline", retain=True)

    # ------------------------------------------------------------------ events out
    def next_event_id(self) -> str:
        self._seq += 1
        return f"{self.boot_id}:{self._seq}"

    async def send(self, type_: str, *, timeout: float = 30.0, event_id: str | None = None,
                   **fields: Any) -> dict[str, Any]:
        """Publish one event and wait for its reply, re-sending it (same ``event_id``) every
        ``retry_s`` and after every reconnect."""
        event_id = event_id or self.next_event_id()
        payload = encode({"event_id": event_id, "type": type_, **fields})
        loop = asyncio.get_running_loop()
        pending = self._pending[event_id] = _Pending(payload, loop.create_future())
        deadline = loop.time() + timeout
        try:
            while True:
                await self._publish_event(pending)
                wait = min(self.retry_s, deadline - loop.time())
                if wait <= 0:
                    raise DeviceTimeout(f"{self.id}: no reply to {type_} {event_id}")
                try:
                    return await asyncio.wait_for(asyncio.shield(pending.reply), wait)
                except TimeoutError:
                    continue
        finally:
            self._pending.pop(event_id, None)

    async def _publish_event(self, pending: _Pending) -> None:
        # marked before the publish is acknowledged, so a reconnect handler running meanwhile
        # does not send it a second time on the same connection
        before, pending.sent_on = pending.sent_on, self.link.connects
        if not await self.link.publish(self.topics.device(self.id, "event"), pending.payload):
            pending.sent_on = before

    async def publish_state(self, state: dict[str, Any]) -> None:
        await self.link.publish(self.topics.device(self.id, "state"), encode(state), retain=True)

    # ------------------------------------------------------------------ messages in
    async def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload) if payload else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("%s: unreadable message on %s", self.id, topic)
            return
        if not isinstance(body, dict):
            return
        if topic == self.topics.state:
            self.controller = body
        elif topic.endswith("/set"):
            self.shown = body
            await self.changed()             # shown now; reporting it may take a round trip
            await self.on_set(body)
        elif topic.endswith("/cmd"):
            cmd_id = body.get("cmd_id")
            if cmd_id in self._seen_cmds:
                return                       # a QoS 1 duplicate: never act twice
            self._seen_cmds[cmd_id] = None
            if len(self._seen_cmds) > _SEEN_CMDS:
                self._seen_cmds.popitem(last=False)
            pending = self._pending.get(body.get("ref") or "")
            if body.get("op") in REPLY_OPS and pending is not None:
                if not pending.reply.done():
                    pending.reply.set_result(body)
            else:
                await self.on_cmd(body)
        elif topic == self.topics.calls:
            await self.on_call(body)
        elif topic == self.topics.board:
            await self.on_board(body)
        await self.changed()

    async def changed(self) -> None:
        """Wake ``wait_until`` callers: something the device shows or did has changed."""
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds after some message (tests and tools)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def on_set(self, body: dict[str, Any]) -> None:
        """Override: show what the controller asks for."""

    async def on_cmd(self, body: dict[str, Any]) -> None:
        """Override: one-shot commands that are not replies (``say``, ``print``, ``beep``)."""

    async def on_call(self, body: dict[str, Any]) -> None:
        """Override: a ``calls`` object (screens, announcers)."""

    async def on_board(self, body: dict[str, Any]) -> None:
        """Override: the retained ``board``."""

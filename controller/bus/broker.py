"""The embedded MQTT broker (amqtt) that lets one command run a whole hall.

Per-device passwords and the protocol's topic ACL come from ``controller.bus.security``, so
the embedded broker and ``yimen broker-config``'s Mosquitto files enforce the same rules. A
plugin keeps a snapshot of the retained messages in the data folder, so devices that reboot
while the hall server is restarting still find their ``set``. A hall that outgrows one box
points ``bus.broker`` at Mosquitto or EMQX instead.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin

from controller.bus import security
from controller.config import HallConfig
from protocol.link import BrokerAddress
from protocol.tasks import cancel_all
from protocol.topics import Topics

log = logging.getLogger("yimen.broker")


@dataclass
class Access:
    """Who may log in (user → password) and what each may publish and read: replaced as a
    whole when the hall's devices change, while the broker runs."""

    users: dict[str, str]
    grants: dict[str, security.Grants]


class PasswordPlugin(BaseAuthPlugin):
    """Each device logs in with its own id and password; nobody logs in anonymously."""

    @dataclass
    class Config:
        access: Any = None          # an ``Access``, shared with the broker

    async def authenticate(self, *, session: Any) -> bool:
        expected = self.config.access.users.get(session.username or "")
        ok = expected is not None and hmac.compare_digest(expected, session.password or "")
        if not ok:
            log.warning("refused MQTT login as %r from client %s", session.username, session.client_id)
        return ok


class RetainedSnapshotPlugin(BasePlugin):
    """Keeps the broker's retained messages in a JSON file (written at most every
    ``interval_s``, atomically) and restores them when the broker starts."""

    @dataclass
    class Config:
        path: str = ""
        interval_s: float = 0.2

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._dirty = False
        self._writer: asyncio.Task | None = None
        self._saving = threading.Lock()     # a cancelled writer's thread may still be saving

    async def on_broker_post_start(self) -> None:
        path = Path(self.config.path)
        if not path.exists():
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            for topic, (data, qos) in saved.items():
                await self.context.retain_message(topic, base64.b64decode(data), qos)
            log.info("restored %d retained messages from %s", len(saved), path)
        except (ValueError, TypeError) as exc:
            log.error("retained messages in %s unreadable, starting empty: %s", path, exc)

    async def on_broker_retained_message(self, *, client_id: str | None = None,
                                         retained_message: Any = None) -> None:
        self._dirty = True
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_later())

    async def _write_later(self) -> None:
        await asyncio.sleep(self.config.interval_s)
        snapshot = self._snapshot()
        if snapshot is not None:      # encoded and synced off the loop: the broker keeps going
            await asyncio.to_thread(self._save, snapshot)

    def _snapshot(self) -> dict[str, Any] | None:
        if not self._dirty:
            return None
        self._dirty = False
        return {topic: (bytes(m.data), m.qos or 0)
                for topic, m in self.context.retained_messages.items() if m.data}

    def _save(self, snapshot: dict[str, Any]) -> None:
        path = Path(self.config.path)
        tmp = path.with_suffix(".tmp")
        with self._saving, open(tmp, "w", encoding="utf-8") as f:
            json.dump({topic: [base64.b64encode(data).decode(), qos]
                       for topic, (data, qos) in snapshot.items()}, f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)

    async def on_broker_pre_shutdown(self) -> None:
        """Always written on the way out, changed or not (the file may have been removed)."""
        if self._writer is not None:
            await cancel_all([self._writer])
        self._dirty = True
        snapshot = self._snapshot()
        if snapshot is not None:
            self._save(snapshot)


class _Subscriptions(dict):
    """amqtt's ``_subscriptions`` (filter → subscribers), mended twice:

    - amqtt walks it across ``await``s, so a device subscribing meanwhile raised "dictionary
      changed size during iteration" and the message was dropped: walks get a copy;
    - amqtt matched every message against every filter in the broker (three or four per
      device): ``matching(topic)`` looks the exact filter up by key and checks only the few
      filters with wildcards."""

    def __init__(self) -> None:
        super().__init__()
        self._wild: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        if "+" in key or "#" in key:
            self._wild.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._wild.discard(key)
        super().__delitem__(key)

    def clear(self) -> None:
        self._wild.clear()
        super().clear()

    def matching(self, topic: str, matches: Any) -> list[tuple[Any, int]]:
        """The subscribers (session, qos) whose filter matches ``topic``; ``matches(topic,
        filter)`` is amqtt's wildcard matching."""
        out = list(self.get(topic, ()))
        for f in self._wild:
            if f in self and matches(topic, f):
                out += self[f]
        return out

    def items(self):  # noqa: ANN201
        return [(k, list(v)) for k, v in super().items()]

    def __iter__(self):  # noqa: ANN204
        return iter(list(super().keys()))


class _HallBroker(Broker):
    """amqtt's broker with the fixes the hall needs (kept here rather than patching amqtt).

    Per message amqtt started a task to broadcast it and, for every recipient, checked the
    topic ACL through its plugin manager (two more tasks and a gather). Here the protocol's
    ACL (``controller.bus.security``, the same rules ``yimen broker-config`` writes for
    Mosquitto) is a plain call, and the broadcast loop hands each message straight to its
    subscribers' handlers."""

    def __init__(self, config: dict[str, Any], root: str, access: Access) -> None:
        super().__init__(config)
        self._subscriptions = _Subscriptions()
        self._root, self._access = root, access
        self._sending: set[asyncio.Task] = set()

    async def _topic_filtering(self, session: Any, topic: str, action: Action) -> bool:
        return self._allowed(session, topic, action)

    def _allowed(self, session: Any, topic: str, action: Action) -> bool:
        user = session.username if session is not None else None
        ok = security.allowed(self._access.grants, self._root, user, str(action), topic)
        if not ok and action != Action.RECEIVE:
            log.warning("ACL refused %s %s to %r", action, topic, user)
        return ok

    async def _broadcast_loop(self) -> None:
        while True:
            self._broadcast(await self._broadcast_queue.get())

    def _broadcast(self, message: dict[str, Any]) -> None:
        topic, data = message["topic"], message["data"]
        for session, sub_qos in self._subscriptions.matching(topic, self._matches):
            qos = message.get("qos", sub_qos)
            if not self._allowed(session, topic, Action.RECEIVE):
                continue
            if session.transitions.state != "connected":
                # as amqtt: kept for a persistent session that is away, if it asked for QoS ≥ 1
                if not session.clean_session and qos in (1, 2) and not session.is_anonymous:
                    self._track(self._retain_broadcast_message(message, qos, session))
                continue
            handler = self._get_handler(session)
            if handler is not None:
                self._track(handler.mqtt_publish(topic, data, qos, retain=False))

    def _track(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("delivery failed: %r", task.exception())

    async def _shutdown_broadcast_loop(self) -> None:
        tasks = [*self._sending]
        if self._broadcast_task is not None:
            tasks.append(self._broadcast_task)
        await cancel_all(tasks)

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Any) -> None:
        # amqtt calls this on every connect for *every* filter in the broker, which would hand
        # a new client other devices' retained ``set``s past the ACL: only its own filters.
        subscribers = self._subscriptions.get(subscription[0], ())
        if any(s.client_id == session.client_id for s, _ in subscribers):
            await super()._publish_retained_messages_for_subscription(subscription, session)


def _plugin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class EmbeddedBroker:
    """``await start()`` binds ``listen`` (port 0 picks a free one; see ``address``)."""

    def __init__(self, config: HallConfig, secret: str, data_dir: str | Path,
                 listen: str | None = None) -> None:
        bind = BrokerAddress.parse(listen or config.bus.listen)
        self.host, self.port = bind.host, bind.port
        self.secret = secret
        self.access = Access({}, {})
        self.set_access(config)
        self.plugins = {
                _plugin(PasswordPlugin): {"access": self.access},
                _plugin(RetainedSnapshotPlugin): {"path": str(Path(data_dir) / "broker-retained.json")},
        }
        self.root = Topics(config.hall.id).root
        self.broker: _HallBroker | None = None

    def set_access(self, config: HallConfig) -> None:
        """The passwords and topic rules of ``config``'s devices, from now on (a disabled or
        removed device can no longer log in, publish or read)."""
        self.access.users = security.passwords(config, self.secret)
        self.access.grants = security.grants(config)

    async def start(self) -> BrokerAddress:
        """Start (or start again, on the port it had)."""
        self.broker = _HallBroker({
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "timeout_disconnect_delay": 0, "plugins": self.plugins}, self.root, self.access)
        await self.broker.start()
        server = self.broker._servers["default"].instance          # amqtt keeps no public handle
        self.port = server.sockets[0].getsockname()[1]
        log.debug("embedded MQTT broker on %s:%d", self.host, self.port)
        return self.address

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(self.host, self.port)

    async def stop(self) -> None:
        if self.broker is None:
            return
        # amqtt stops a connection by cancelling its reader and waiting for it; under load the
        # cancellation can be swallowed (see protocol.tasks) and shutdown waited forever.
        # Closing the sockets first lets every reader end on its own.
        for _, handler in list(self.broker._sessions.values()):
            stream = getattr(getattr(handler, "writer", None), "_writer", None)
            if stream is not None:
                stream.transport.abort()
        shutdown = asyncio.ensure_future(self.broker.shutdown())
        done, _ = await asyncio.wait([shutdown], timeout=10)
        if not done:
            log.error("embedded broker did not shut down within 10 s; abandoning it")
            await cancel_all([shutdown], timeout=1)
            for server in self.broker._servers.values():
                server.instance.close()
        self.broker = None

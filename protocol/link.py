"""One MQTT connection that keeps itself up (aiomqtt over paho-mqtt 2).

aiomqtt 2 does not reconnect by itself: ``run`` is the explicit loop, with capped, jittered
backoff. Every socket gets TCP_NODELAY: without it Nagle and delayed ACKs add about 40 ms per
hop. ``on_connect`` runs after every (re)connect, so owners republish what they own.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiomqtt

log = logging.getLogger("yimen.mqtt")

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        """``mqtt://host:port`` (or ``host:port``); ``mqtts://host:port`` with TLS (port 8883
        unless named)."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
            raise ValueError(f"expected mqtt://host:port, got {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(parts.hostname, (8883 if tls else 1883) if parts.port is None else parts.port, tls)


class MqttLink:
    """A reconnecting client: ``await link.publish(...)`` while connected; messages go to
    ``on_message`` one at a time in arrival order."""

    def __init__(self, broker: BrokerAddress, client_id: str, *,
                 username: str | None = None, password: str | None = None,
                 will: tuple[str, bytes] | None = None, subscriptions: Sequence[str] = (),
                 on_connect: Callable[[], Awaitable[None]] | None = None,
                 on_message: Callable[[str, bytes], Awaitable[None] | None] | None = None,
                 backoff_max: float = 10.0, max_queued_incoming: int | None = None,
                 logger: logging.Logger | None = None,
                 live_only: Callable[[str], bool] | None = None, clean_session: bool = True,
                 tls_ca: str | None = None) -> None:
        """``max_queued_incoming``: messages received but not yet handled, past which the
        client drops new ones (a sender retries what gets no reply; memory stays bounded under
        a flood); ``logger``: the MQTT client's own log lines; ``live_only(topic)``: a topic
        whose retained messages are dropped (events happen once: a retained one would be
        replayed at every reconnect); ``clean_session`` False: a persistent session, the broker
        keeping QoS 1 messages for the client while it is away; ``tls_ca``: the CA file that
        signed a TLS broker's certificate (else the system's), whose name it must carry."""
        self.broker = broker
        self.tls = ssl.create_default_context(cafile=tls_ca or None) if broker.tls else None
        self.clean_session = clean_session
        self.client_id = client_id
        self.username, self.password = username, password
        self.will = will
        self.subscriptions = list(subscriptions)
        self.on_connect = on_connect
        self.on_message = on_message
        self.backoff_max = backoff_max
        self.max_queued_incoming = max_queued_incoming
        self.logger = logger
        self.live_only = live_only
        self.connected = asyncio.Event()
        self.connects = 0
        self._client: aiomqtt.Client | None = None
        self._closing = False

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1,
                      retain: bool = False) -> bool:
        """Publish if connected; ``False`` when the broker is away (the caller decides
        whether it matters: retained ``set``s are republished on reconnect anyway)."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
            return True
        except aiomqtt.MqttError as exc:
            log.debug("%s: publish to %s failed: %s", self.client_id, topic, exc)
            return False

    def close(self) -> None:
        """Make ``run`` end (with its task's cancellation; see ``protocol.tasks``)."""
        self._closing = True

    async def _deliver(self, topic: str, payload: bytes) -> None:
        """Hand one message to ``on_message``; a handler that fails is logged, and the link
        goes on with the next message (one bad message must not stop a hall hearing)."""
        if self.on_message is None:
            return
        try:
            result = self.on_message(topic, payload)
            if result is not None:
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: handling a message on %s failed", self.client_id, topic)

    async def run(self) -> None:
        """Connect, serve, and reconnect until cancelled or closed."""
        delay = 0.2
        while not self._closing:
            try:
                will = aiomqtt.Will(self.will[0], self.will[1], qos=1, retain=True) \
                    if self.will else None
                async with aiomqtt.Client(
                        self.broker.host, self.broker.port, identifier=self.client_id,
                        username=self.username, password=self.password, will=will,
                        keepalive=15, socket_options=NODELAY, clean_session=self.clean_session,
                        tls_context=self.tls,
                        max_queued_outgoing_messages=None,
                        max_queued_incoming_messages=self.max_queued_incoming,
                        logger=self.logger) as client:
                    client.pending_calls_threshold = 10_000   # bursts of retained sets are normal
                    for topic in self.subscriptions:
                        await client.subscribe(topic, qos=1)
                    self._client = client
                    self.connects += 1
                    self.connected.set()
                    delay = 0.2
                    if self.on_connect is not None:
                        await self.on_connect()
                    async for message in client.messages:
                        if self._closing:
                            break
                        topic = str(message.topic)
                        if message.retain and self.live_only is not None and self.live_only(topic):
                            continue
                        await self._deliver(topic, bytes(message.payload))
            except aiomqtt.MqttError as exc:
                log.info("%s: broker %s:%s unavailable (%s); retrying in %.1fs", self.client_id,
                         self.broker.host, self.broker.port, exc, delay)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(self.backoff_max, delay * 2)

"""The links between halls (三级联动): MQTT with QoS 1 and persistent sessions on the upper
hall's broker, an outbox on each side and an inbox on each side.

Each hall server is a client of its upper hall's Mosquitto (``tier.upper_broker``), logged in
as ``hall-{id}`` with its own password (``DATA/upper-password``; the upper hall issues it with
``yimen device credentials hall-{id}``) and allowed by the upper broker's ACL to publish only
its own link's ``up`` and ``down/ack`` and read its ``down`` and ``up/ack``
(``protocol.topics.tier_topics``). The upper hall serves its halls below from its own broker
as the user ``tier-hub``. The hall server is a client rather than its broker a bridge: the outbox
already keeps what is owed across outages and restarts, each hall's credential and ACL stay in
the upper hall's hands, and a hall added below needs no broker reconfiguration on its side.

Each direction sends one outbox channel (``up``; ``down:{hall}``) in order, numbered from 1 by
its place in the channel (``seq``), at most ``WINDOW`` beyond what was acknowledged, again from
the acknowledged after ``RESEND_S`` without progress. The receiver applies message ``seq``
only after ``seq - 1`` (``controller.core.tiers``, the inbox mark stored with the change),
answers a repeat as a repeat, and acknowledges with the last number applied.

Bad input from below — a hall that is not configured, a message naming another hall than its
topic's, a malformed case — is refused, counted (``status``), logged, and nothing is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from controller.bus import credentials
from controller.core.cases import Case, masked
from controller.core.commands import Command, Origin, ReceiveCase, RemoteStep, Source
from controller.core.errors import Refused
from controller.engine import Committed, Engine
from controller.overview import Told, month_counts, summary
from controller.storage import outbox
from controller.storage.repository import record
from controller.storage.schema import cases
from protocol.link import BrokerAddress, MqttLink
from protocol.tasks import cancel_all
from protocol.topics import TIER_TOPIC, hall_user, tier_topics

log = logging.getLogger("yimen.tiers")
WINDOW = 1000
RESEND_S = 5.0
STATUS_MIN_S = 0.25      # a summary after a change, at most this often…
STATUS_EVERY_S = 10.0    # …and at least this often
MONTH_EVERY_S = 60.0
ACK_AFTER_S = 0.02       # acknowledgements gathered this long, then one for the last applied
PASSWORD_FILE = "upper-password"
MAX_MESSAGE = 256 * 1024     # bytes: a case with its materials and history is a few kilobytes
MAX_INFLIGHT = 2 * WINDOW    # messages being applied per link; past it they wait to be sent again


class Sender:
    """One outbox channel, in order, over ``link`` to ``topic``."""

    def __init__(self, engine: Engine, link: MqttLink, channel: str, topic: str,
                 compose: Callable[[Connection, list[Any], int], list[dict[str, Any]]]) -> None:
        self.engine, self.link, self.channel, self.topic, self.compose = engine, link, channel, topic, compose
        self.hall = engine.config.hall.id
        self.wake = asyncio.Event()
        self.sent = 0                                  # messages published, repeats included
        self.sent_upto = 0                             # the last number published
        self.progress_at = 0.0                         # loop time of the last acknowledged progress
        self.heard = self.stored = 0                   # the last acknowledgement heard, and stored
        self._storing = False

    async def run(self) -> None:
        """Send what is owed beyond what was sent; everything unacknowledged again after
        ``RESEND_S`` without progress (or after a reconnect)."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), RESEND_S)
            self.wake.clear()
            if not self.link.connected.is_set():
                continue
            if loop.time() - self.progress_at >= RESEND_S:
                self.sent_upto, self.progress_at = 0, loop.time()
            try:
                async with self.engine.db.connect() as conn:
                    messages = await conn.run_sync(self._pending)
                # handed to the client in order, the broker's acknowledgements awaited together
                done = await asyncio.gather(*(self.link.publish(self.topic, json.dumps(m, ensure_ascii=False),
                                                                qos=1) for m in messages))
                for m, ok in zip(messages, done, strict=True):
                    if not ok:
                        break
                    self.sent += 1
                    self.sent_upto = m["seq"]
            except Exception:  # noqa: BLE001 - tried again at the next wake
                log.exception("%s: sending failed; trying again", self.channel)

    def _pending(self, conn: Connection) -> list[dict[str, Any]]:
        acked, delivered = outbox.position(conn, self.hall, self.channel)
        rows = outbox.pending(conn, self.hall, self.channel, WINDOW, after=acked)
        skip = max(0, self.sent_upto - delivered)            # sent already, not yet acknowledged
        return self.compose(conn, rows[skip:], delivered + 1 + skip) if rows[skip:] else []

    async def acked(self, applied: int) -> None:
        """The receiver has applied every message up to ``applied``: stored, one write at a
        time (acknowledgements that come meanwhile are stored together after it)."""
        self.heard = max(self.heard, applied)
        if self._storing:
            return
        self._storing = True
        try:
            while self.heard > self.stored:
                target = self.heard
                async with self.engine.db.begin() as conn:
                    moved = await conn.run_sync(self._ack, target)
                self.stored = target
                if moved:
                    self.progress_at = asyncio.get_running_loop().time()
                    self.wake.set()
        finally:
            self._storing = False

    def _ack(self, conn: Connection, applied: int) -> bool:
        acked, done = outbox.position(conn, self.hall, self.channel)
        if applied <= done:
            return False
        rows = outbox.pending(conn, self.hall, self.channel, applied - done, after=acked)
        if len(rows) < applied - done:
            log.error("%s: acknowledged %d, but only %d were sent", self.channel, applied, done + len(rows))
            return False
        outbox.ack(conn, self.hall, self.channel, rows[-1].id, applied - done, self.engine.clock.now())
        return True


class Link:
    """This hall's tier links: to the hall above (when it has one) and for the halls below."""

    def __init__(self, engine: Engine, data_dir: str | Path, own_broker: BrokerAddress | None,
                 bus_of: Callable[[], Any] = lambda: None) -> None:
        """``bus_of()``: the hall's device bus when it has one (its devices' health goes up)."""
        self.engine = engine
        self.bus_of = bus_of
        self.overview: dict[str, dict[str, Any]] = {}   # a hall below → what it last said
        self._month: tuple[float, dict[str, int]] = (0.0, {})
        self.config = engine.config
        self.hall = self.config.hall.id
        self.data_dir = Path(data_dir)
        self.own_broker = own_broker
        self.counts: Counter[str] = Counter()
        self.links: list[MqttLink] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._acks: dict[str, int] = {}                 # ack topic → the last applied, to be said
        self.senders: dict[str, Sender] = {}          # channel → sender
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ wiring
    def start(self) -> None:
        tier = self.config.tier
        if tier.upper:
            topics = tier_topics(tier.upper, self.hall)
            password = (self.data_dir / PASSWORD_FILE).read_text().strip() \
                if (self.data_dir / PASSWORD_FILE).is_file() else None
            if password is None:
                log.error("no %s in the data folder: the link to %s cannot log in", PASSWORD_FILE, tier.upper)
            gone = json.dumps({"hall": self.hall, "online": False}).encode()
            up = MqttLink(BrokerAddress.parse(tier.upper_broker), f"yimen-tier-{self.hall}",
                          username=hall_user(self.hall), password=password, clean_session=False,
                          will=(topics.status, gone), subscriptions=[topics.down, topics.up_ack],
                          on_message=self._from_upper, on_connect=self._connected, backoff_max=2.0)
            self.links.append(up)
            self.senders[outbox.UP] = Sender(self.engine, up, outbox.UP, topics.up, self._compose_up)
            self._status = asyncio.Event()
        if tier.lower and self.own_broker is not None:
            root = f"yimen/v1/{self.hall}/tier/"
            hub = MqttLink(self.own_broker, f"yimen-tier-hub-{self.hall}",
                           username=credentials.HUB_USER, password=credentials.hub_password(self.data_dir),
                           clean_session=False,
                           subscriptions=[root + "+/up", root + "+/down/ack", root + "+/status"],
                           on_message=self._from_lower, on_connect=self._connected, backoff_max=2.0)
            self.links.append(hub)
            for lower in tier.lower:
                channel = outbox.down(lower.id)
                topic = tier_topics(self.hall, lower.id).down
                self.senders[channel] = Sender(self.engine, hub, channel, topic, self._compose_down)
        if self.links:
            self.engine.subscribe(self._committed)
            self._tasks = [asyncio.create_task(t(), name="yimen-tier") for t in (
                *(link.run for link in self.links), *(s.run for s in self.senders.values()),
                *([self._tell_upper] if tier.upper else []))]

    async def stop(self) -> None:
        if self.config.tier.upper and self.links and self.links[0].connected.is_set():
            gone = json.dumps({"hall": self.hall, "online": False})       # a clean stop sends no will
            await self.links[0].publish(tier_topics(self.config.tier.upper, self.hall).status, gone,
                                        qos=1, retain=True)
        for link in self.links:
            link.close()
        await cancel_all([*self._tasks, *self._inflight])

    def _committed(self, committed: Committed) -> None:
        for sender in self.senders.values():
            sender.wake.set()
        if self.config.tier.upper:
            self._status.set()

    async def _connected(self) -> None:
        for sender in self.senders.values():
            sender.sent_upto = 0                       # what was in flight is sent again
            sender.wake.set()
        if self.config.tier.upper:
            self._status.set()

    # ------------------------------------------------------------------ the overview
    async def _tell_upper(self) -> None:
        """The hall's summary to the hall above: after a change (at most every
        ``STATUS_MIN_S``) and every ``STATUS_EVERY_S``, retained; its will says it went away."""
        topic = tier_topics(self.config.tier.upper, self.hall).status
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status.wait(), STATUS_EVERY_S)
            self._status.clear()
            if self.links[0].connected.is_set():
                try:
                    body = await self.summary()
                    text = json.dumps(body, ensure_ascii=False)
                    await self.links[0].publish(topic, text, qos=1, retain=True)
                except Exception:  # noqa: BLE001 - said again at the next change
                    log.exception("the hall's summary could not be sent up")
            await asyncio.sleep(STATUS_MIN_S)

    async def summary(self) -> dict[str, Any]:
        """This hall's summary now; the month's counts read at most once a minute."""
        hall = await self.engine.settled()
        now = self.engine.clock.now()
        loop = asyncio.get_running_loop()
        if loop.time() - self._month[0] > MONTH_EVERY_S:
            self._month = (loop.time(), await month_counts(self.engine.db, hall.config, hall.day, now))
        return summary(hall, self.bus_of(), now, self._month[1])

    def _heard(self, lower: str, payload: bytes) -> None:
        data = self._parse(payload, f"status from {lower}")
        if data is None:
            return
        if data.get("hall") != lower:
            self._refuse("bad_status", f"from {lower}: a summary naming {str(data.get('hall'))[:40]}")
            return
        now = self.engine.clock.now().isoformat()
        before = self.overview.get(lower, {})
        if data.get("online") is False:                 # its will: gone since now
            self.overview[lower] = {**before, "hall": lower, "online": False,
                                    "since": before.get("since") if not before.get("online", True) else now}
            return
        try:
            told = Told.model_validate(data).model_dump()
        except ValidationError as exc:
            self._refuse("bad_status", f"from {lower}: {str(exc)[:300]}")
            return
        self.overview[lower] = {**told, "online": True, "heard": now}

    def _parse(self, payload: bytes, what: str) -> dict[str, Any] | None:
        """A message's JSON object, or None (refused: too long, not JSON, nested past reason)."""
        try:
            if len(payload) > MAX_MESSAGE:
                raise ValueError(f"{len(payload)} bytes, more than {MAX_MESSAGE}")
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return data
        except (ValueError, RecursionError) as exc:
            self._refuse("malformed", f"{what}: {str(exc)[:200]}")
            return None

    async def halls(self) -> list[dict[str, Any]]:
        """This hall and each hall below, as last heard (never heard: said so)."""
        out = [await self.summary()]
        for lower in self.config.tier.lower:
            heard = self.overview.get(lower.id, {"hall": lower.id, "online": None})
            out.append({**heard, "name": lower.name})
        return out

    # ------------------------------------------------------------------ receiving
    def _from_upper(self, topic: str, payload: bytes) -> Awaitable[None] | None:
        topics = tier_topics(self.config.tier.upper, self.hall)
        if topic == topics.up_ack:
            return self._ack(self.senders[outbox.UP], payload)
        if topic == topics.down:
            self._pipeline(RemoteStep, self.config.tier.upper, payload, self.links[0], topics.down_ack)
        return None

    def _from_lower(self, topic: str, payload: bytes) -> Awaitable[None] | None:
        m = TIER_TOPIC.match(topic)
        if m is None or m.group(1) != self.hall:
            return None
        lower, leaf = m.group(2), m.group(3)
        if lower not in {h.id for h in self.config.tier.lower}:
            self._refuse("unknown_hall", f"a message from {lower}, which is not a hall below")
            return None
        if leaf == "status":
            self._heard(lower, payload)
            return None
        if leaf == "down/ack":
            return self._ack(self.senders[outbox.down(lower)], payload)
        self._pipeline(ReceiveCase, lower, payload, self.links[-1], tier_topics(self.hall, lower).up_ack)
        return None

    def _pipeline(self, kind: type[Command], peer: str, payload: bytes, link: MqttLink, ack: str) -> None:
        """Apply a message without waiting for it here: the engine takes the commands in the
        order they arrived and commits them together; the acknowledgement goes once, for the
        last applied, soon after."""
        task = asyncio.create_task(self._apply_then_ack(kind, peer, payload, link, ack))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _apply_then_ack(self, kind: type[Command], peer: str, payload: bytes, link: MqttLink,
                              ack: str) -> None:
        applied = await self._apply(kind, peer, payload)
        if applied is None:
            return
        first = ack not in self._acks
        self._acks[ack] = max(applied, self._acks.get(ack, 0))
        if first:
            await asyncio.sleep(ACK_AFTER_S)
            await link.publish(ack, json.dumps({"applied": self._acks.pop(ack)}), qos=1)

    async def _ack(self, sender: Sender, payload: bytes) -> None:
        data = self._parse(payload, f"acknowledgement on {sender.channel}")
        applied = data.get("applied") if data is not None else None
        if not isinstance(applied, int) or isinstance(applied, bool):
            if data is not None:
                self._refuse("bad_ack", f"{sender.channel}: applied is not a number")
            return
        try:
            await sender.acked(applied)
        except Exception:  # noqa: BLE001 - not stored: the receiver says it again
            log.exception("%s: the acknowledgement could not be stored", sender.channel)

    async def _apply(self, kind: type[Command], peer: str, payload: bytes) -> int | None:
        """Apply one message from ``peer``; the last number applied from it, or None when the
        message was refused."""
        data = self._parse(payload, f"from {peer}")
        if data is None:
            return None
        if data.get("peer") != peer:
            self._refuse("forged_hall", f"a message on {peer}'s link names {str(data.get('peer'))[:40]}")
            return None
        try:
            command = kind.model_validate(data)
        except ValidationError as exc:
            self._refuse("malformed", f"from {peer}: {str(exc)[:300]}")
            return None
        try:
            reply = await self.engine.execute(command, Source(f"hall:{peer}", Origin.TIER))
        except Refused as exc:
            if exc.code != "out_of_order":
                self._refuse(exc.code, f"from {peer}: {exc}")
                return None
            self.counts["out_of_order"] += 1
            hall = await self.engine.settled()
            mark = hall.inbox.get((peer, "up" if kind is ReceiveCase else "down"))
            return mark.applied if mark else 0
        self.counts["duplicates" if reply.get("duplicate") else "applied"] += 1
        return int(reply["applied"])

    def _refuse(self, reason: str, detail: str) -> None:
        self.counts[f"refused:{reason}"] += 1
        log.warning("tier message refused (%s): %s", reason, detail)

    # ------------------------------------------------------------------ composing
    def _compose_up(self, conn: Connection, rows: list[Any], first: int) -> list[dict[str, Any]]:
        found: dict[str, Case] = {}
        keys = [row.key for row in rows]
        for part in range(0, len(keys), 500):
            for c in conn.execute(select(cases).where(cases.c.hall == self.hall,
                                                      cases.c.number.in_(keys[part:part + 500]))):
                found[c.number] = record(Case, c._mapping)
        out = []
        for seq, row in enumerate(rows, start=first):
            case = found[row.key]               # written with its outbox row, never deleted
            out.append({"peer": self.hall, "seq": seq, "number": case.number, "matter": case.matter,
                        "matter_name": case.matter_name, "department": case.department,
                        "limit_days": case.limit_days, "applicant": masked(case.applicant),
                        "accepted_on": case.accepted_on.isoformat(), "materials": list(case.materials),
                        "missing": list(case.missing), "notes": case.notes[-500:],
                        "history": [{"action": a, "after": after, "at": at}
                                    for a, after, at in case.history]})
        return out

    def _compose_down(self, conn: Connection, rows: list[Any], first: int) -> list[dict[str, Any]]:
        return [{"peer": self.hall, "seq": seq, **json.loads(row.payload)}
                for seq, row in enumerate(rows, start=first)]

    def status(self) -> dict[str, Any]:
        return {"links": [{"client": link.client_id, "connected": link.connected.is_set()}
                          for link in self.links],
                "sent": {c: s.sent for c, s in self.senders.items()}, "counts": dict(self.counts)}


#: The app's tier links.
TIERS: web.AppKey[Link] = web.AppKey("tiers", Link)

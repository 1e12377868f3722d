"""The links between halls (三级联动): MQTT with QoS 1 and persistent sessions on the upper
hall's broker, an outbox on each side and an inbox on each side.

Each hall server is a client of its upper hall's Mosquitto (``tier.upper_broker``), logged in
as ``hall-{id}`` with its own password (``DATA/upper-password``; the upper hall issues it with
``yimen device credentials hall-{id}``) and allowed by the upper broker's ACL to publish only
its own link's ``up`` and ``down/ack`` and read its ``down`` and ``up/ack``
(``protocol.topics.tier_topics``); over TLS with ``mqtts://`` (``tier.upper_ca``). The upper
hall serves its halls below from its own broker as the user ``tier-hub``. The hall server is a
client rather than its broker a bridge: the outbox already keeps what is owed across outages
and restarts, each hall's credential and ACL stay in the upper hall's hands, and a hall added
below needs no broker reconfiguration on its side.

Each direction sends one outbox channel (``up``; ``down:{hall}``) in order, numbered from 1 by
its place in the channel (``seq``), at most ``WINDOW`` beyond what was acknowledged, again from
the acknowledged after ``RESEND_S`` without progress, in the channel's epoch (new after a
restore: ``controller.storage.outbox``). The receiver applies message ``seq`` only after
``seq - 1`` (``controller.core.tiers``, the inbox mark stored with the change), answers a
repeat as a repeat, and acknowledges with the last number applied (``Ack``); one beyond the
next with ``behind``, and the sender rewinds to a kept position at or before its number.

Bad input from below — a hall that is not configured, a message naming another hall than its
topic's, a malformed case, one too long or too deeply nested — is refused, counted
(``status``), logged, and nothing is applied. A message refused for good that was the next one
is answered ``refused``: its sender lets it go (a case comes back to the desk there:
``UpperRefused``), and the next takes its number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeGuard

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from controller.bus import credentials
from controller.core.cases import Case, masked
from controller.core.commands import Command, Origin, ReceiveCase, RemoteStep, Source, UpperRefused
from controller.core.errors import Refused
from controller.engine import Committed, Engine
from controller.overview import Told, month_counts, summary
from controller.startup import StartupError
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
MAX_INFLIGHT = 2 * WINDOW    # messages being applied per hall; past it they wait to be sent again
PRUNE_EVERY_S = 3600.0
KEEP = timedelta(days=90)    # acknowledged messages kept: a receiver restored from a backup this old


@dataclass(frozen=True, slots=True)
class Ack:
    """A receiver's answer: every message up to ``applied`` is applied (in ``epoch``); with
    ``behind``, a message beyond the next came (it lost some: restored from a backup); with
    ``refused``, that message — the next one — will never be applied, for ``reason`` (said to
    the clerk who sent it, in zh-CN)."""

    applied: int
    epoch: str
    behind: bool = False
    refused: int | None = None
    reason: str = ""
    row: int | None = None                   # the refused message's row at its sender

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "Ack":
        applied, refused = data.get("applied"), data.get("refused")
        if not _count(applied):
            raise ValueError("applied is not a number")
        row = data.get("row")
        if refused is not None and not (_count(refused) and _count(row)):
            raise ValueError("refused (or its row) is not a number")
        return cls(applied, str(data.get("epoch", ""))[:16], data.get("behind") is True, refused,
                   str(data.get("reason", ""))[:100], row if refused is not None else None)

    @property
    def plain(self) -> bool:
        """Only an acknowledgement (several of them: the last one says it all)."""
        return not self.behind and self.refused is None

    def body(self) -> dict[str, Any]:
        return {"applied": self.applied, "epoch": self.epoch,
                **({"behind": True} if self.behind else {}),
                **({"refused": self.refused, "reason": self.reason, "row": self.row}
                   if self.refused is not None else {})}


def _errors(exc: ValidationError) -> str:
    """Where a message is wrong and how, without its values (they may be a citizen's)."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}"
                     for e in exc.errors(include_input=False, include_url=False))[:300]


def _count(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


class Sender:
    """One outbox channel, in order, over ``link`` to ``topic``."""

    def __init__(self, engine: Engine, link: MqttLink, channel: str, topic: str,
                 compose: Callable[[Connection, list[Any], int], list[dict[str, Any]]],
                 counts: Counter[str]) -> None:
        self.engine, self.link, self.channel, self.topic, self.compose = engine, link, channel, topic, compose
        self.counts = counts
        self.hall = engine.config.hall.id
        self.wake = asyncio.Event()
        self.epoch = ""                                # the channel's, read when it starts
        self.sent = 0                                  # messages published, repeats included
        self.sent_upto = self.sent_id = 0              # the last number published, and its row
        self.progress_at = 0.0                         # loop time of the last acknowledged progress
        self.delivered = 0                             # the receiver's last number, as stored here
        self.pruned_at = 0.0
        self.refusals: list[dict[str, Any]] = []       # the last few messages the receiver refused
        self._answers: list[Ack] = []                  # answers heard while one is being stored
        self._numbering = 0                            # bumped whenever sending starts again
        #: told (kind, key, reason) of a row the receiver refused for good, before it is let go
        self.on_refused: Callable[[str, str, str], Awaitable[None]] | None = None
        self._storing = False

    async def run(self) -> None:
        """Send what is owed beyond what was sent; everything unacknowledged again after
        ``RESEND_S`` without progress (or after a reconnect)."""
        loop = asyncio.get_running_loop()
        while not self.epoch:
            try:
                async with self.engine.db.begin() as conn:
                    self.epoch = await conn.run_sync(outbox.epoch, self.hall, self.channel)
            except Exception:  # noqa: BLE001 - the database may come back
                log.exception("%s: the channel's epoch could not be read; trying again", self.channel)
                await asyncio.sleep(RESEND_S)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), RESEND_S)
            self.wake.clear()
            if loop.time() - self.pruned_at > PRUNE_EVERY_S:
                await self._prune()
            if not self.link.connected.is_set():
                continue
            if loop.time() - self.progress_at >= RESEND_S:
                self.resend()
                self.progress_at = loop.time()
            try:
                numbering = self._numbering
                async with self.engine.db.connect() as conn:
                    messages = await conn.run_sync(self._pending)
                # handed to the client in order, the broker's acknowledgements awaited together
                done = await asyncio.gather(*(self.link.publish(self.topic, json.dumps(m, ensure_ascii=False),
                                                                qos=1) for _, m in messages))
                for (row, m), ok in zip(messages, done, strict=True):
                    if not ok:
                        break
                    self.sent += 1
                    if numbering == self._numbering:          # not numbered again meanwhile
                        self.sent_upto, self.sent_id = m["seq"], row
            except Exception:  # noqa: BLE001 - tried again at the next wake
                log.exception("%s: sending failed; trying again", self.channel)

    def resend(self) -> None:
        """Send again from the acknowledged (after a reconnect, a silence, or when the numbers
        shifted: what was being sent meanwhile does not count as sent)."""
        self.sent_upto = 0
        self._numbering += 1

    def _pending(self, conn: Connection) -> list[tuple[int, dict[str, Any]]]:
        """(row id, message) of what to send now: the rows after the last one sent (after the
        acknowledged when nothing is known to be in flight), up to ``WINDOW`` in flight."""
        acked, delivered = outbox.position(conn, self.hall, self.channel)
        ahead = self.sent_upto - delivered                   # sent already, not yet acknowledged
        if ahead <= 0 or self.sent_id <= acked:
            ahead, after = 0, acked
        else:
            after = self.sent_id
        if ahead >= WINDOW:
            return []
        rows = outbox.pending(conn, self.hall, self.channel, WINDOW - ahead, after=after)
        if not rows:
            return []
        messages = self.compose(conn, rows, delivered + 1 + ahead)
        return [(row.id, {**m, "epoch": self.epoch, "base": delivered, "row": row.id})
                for row, m in zip(rows, messages, strict=True)]

    async def _prune(self) -> None:
        self.pruned_at = asyncio.get_running_loop().time()
        try:
            async with self.engine.db.begin() as conn:
                await conn.run_sync(outbox.prune, self.hall, self.channel, self.engine.clock.now() - KEEP)
        except Exception:  # noqa: BLE001 - pruned at the next time
            log.exception("%s: old acknowledged messages could not be pruned", self.channel)

    async def acked(self, ack: Ack) -> None:
        """Store the receiver's answer, one write at a time: answers that come meanwhile are
        stored after it, the plain acknowledgements among them as one (the last applied); an
        answer that changes nothing (an acknowledgement already stored) does not touch the
        database."""
        if ack.epoch != self.epoch:
            self.counts["stale_acks"] += 1                 # for numbers this side no longer uses
            return
        if ack.plain and ack.applied <= self.delivered:
            return
        self._answers.append(ack)
        if self._storing:
            return
        self._storing = True
        try:
            while self._answers:
                answers, self._answers = self._answers, []
                plain = [a for a in answers if a.plain]
                for answer in [*([max(plain, key=lambda a: a.applied)] if plain else []),
                               *(a for a in answers if not a.plain)]:
                    if answer.refused is not None and self.on_refused is not None:
                        async with self.engine.db.connect() as conn:     # said here before it is let go
                            row = await conn.run_sync(self._refused_row, answer)
                        if row is not None:
                            await self.on_refused(row.kind, row.key, answer.reason)
                    async with self.engine.db.begin() as conn:
                        moved = await conn.run_sync(self._store, answer)
                    if moved:
                        if moved != "acked":               # numbers shifted: all sent again
                            self.resend()
                        self.progress_at = asyncio.get_running_loop().time()
                        self.wake.set()
        finally:
            self._storing = False

    def _refused_row(self, conn: Connection, ack: Ack) -> Any | None:
        """The row ``ack`` refuses, when it is the next one due."""
        acked, done = outbox.position(conn, self.hall, self.channel)
        applied = max(done, ack.applied)
        if ack.refused != applied + 1:
            return None
        rows = outbox.pending(conn, self.hall, self.channel, applied - done + 1, after=acked)
        return rows[-1] if len(rows) == applied - done + 1 and rows[-1].id == ack.row else None

    def _store(self, conn: Connection, ack: Ack) -> str | None:
        """What the answer changed: ``acked``, ``rewound``, ``skipped`` or nothing."""
        now = self.engine.clock.now()
        acked, done = outbox.position(conn, self.hall, self.channel)
        moved = None
        if ack.applied > done:
            rows = outbox.pending(conn, self.hall, self.channel, ack.applied - done, after=acked)
            if len(rows) < ack.applied - done:
                log.error("%s: acknowledged %d, but only %d were sent", self.channel, ack.applied,
                          done + len(rows))
                return None
            outbox.ack(conn, self.hall, self.channel, rows[-1].id, ack.applied - done, now)
            done, moved = ack.applied, "acked"
        elif ack.applied < done and ack.behind:
            back = outbox.rewind(conn, self.hall, self.channel, ack.applied)
            if back is None:
                why = f"the receiver lost messages after {ack.applied}, older than this hall keeps"
                log.error("%s: %s", self.channel, why)
                outbox.failed(conn, self.hall, self.channel, why, now)
                return None
            log.warning("%s: the receiver has only %d of %d: sending again from there", self.channel,
                        ack.applied, done)
            self.counts["rewound"] += 1
            self.delivered = back
            return "rewound"
        row = self._refused_row(conn, ack) if ack.refused is not None else None
        if row is not None:                       # it takes no number: the next one takes its place
            outbox.ack(conn, self.hall, self.channel, row.id, 0, now)
            log.error("%s: %s %s refused by the receiver (%s)", self.channel, row.kind, row.key, ack.reason)
            self.counts["refused_there"] += 1
            self.refusals = [*self.refusals[-19:],
                             {"key": row.key, "reason": ack.reason, "at": now.isoformat()}]
            moved = "skipped"
        self.delivered = done
        return moved


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
        self._busy: Counter[str] = Counter()             # a hall → its messages being applied
        self._acks: dict[str, Ack] = {}                 # ack topic → the answer to be said
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
            try:
                up = MqttLink(BrokerAddress.parse(tier.upper_broker), f"yimen-tier-{self.hall}",
                              username=hall_user(self.hall), password=password, clean_session=False,
                              will=(topics.status, gone), subscriptions=[topics.down, topics.up_ack],
                              on_message=self._from_upper, on_connect=self._connected, backoff_max=2.0,
                              tls_ca=tier.upper_ca or None)
            except (OSError, ssl.SSLError) as exc:
                raise StartupError(f"无法读取上级大厅的 CA 证书 {tier.upper_ca}：{exc}",
                                   f"cannot read the upper hall's CA file {tier.upper_ca}: {exc}") from None
            self.links.append(up)
            self.senders[outbox.UP] = Sender(self.engine, up, outbox.UP, topics.up, self._compose_up,
                                             self.counts)
            self.senders[outbox.UP].on_refused = self._upper_refused
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
                self.senders[channel] = Sender(self.engine, hub, channel, topic, self._compose_down,
                                               self.counts)
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
            sender.resend()                            # what was in flight is sent again
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
            self._refuse("bad_status", f"from {lower}: {_errors(exc)}")
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
        last applied, soon after. Past ``MAX_INFLIGHT`` a message is dropped unanswered (its
        sender sends it again)."""
        if self._busy[peer] >= MAX_INFLIGHT:          # per hall: one flooding does not starve the others
            self.counts["dropped_busy"] += 1
            return
        task = asyncio.create_task(self._apply_then_ack(kind, peer, payload, link, ack))
        self._inflight.add(task)
        self._busy[peer] += 1

        def done(t: asyncio.Task[None]) -> None:
            self._inflight.discard(t)
            self._busy[peer] -= 1

        task.add_done_callback(done)

    async def _apply_then_ack(self, kind: type[Command], peer: str, payload: bytes, link: MqttLink,
                              topic: str) -> None:
        try:
            answer = await self._apply(kind, peer, payload)
        except Exception:  # noqa: BLE001 - not applied, not answered: the sender sends it again
            log.exception("a message from %s could not be applied", peer)
            return
        if answer is None:
            return
        if answer.refused is not None:                  # said at once, on its own
            await link.publish(topic, json.dumps(answer.body()), qos=1)
            return
        first = topic not in self._acks
        before = self._acks.get(topic)
        self._acks[topic] = answer if before is None or before.epoch != answer.epoch else Ack(
            max(before.applied, answer.applied), answer.epoch, before.behind or answer.behind)
        if first:
            await asyncio.sleep(ACK_AFTER_S)
            await link.publish(topic, json.dumps(self._acks.pop(topic).body()), qos=1)

    async def _ack(self, sender: Sender, payload: bytes) -> None:
        data = self._parse(payload, f"acknowledgement on {sender.channel}")
        if data is None:
            return
        try:
            ack = Ack.parse(data)
        except ValueError as exc:
            self._refuse("bad_ack", f"{sender.channel}: {exc}")
            return
        try:
            await sender.acked(ack)
        except Exception:  # noqa: BLE001 - not stored: the receiver says it again
            log.exception("%s: the acknowledgement could not be stored", sender.channel)

    async def _apply(self, kind: type[Command], peer: str, payload: bytes) -> Ack | None:
        """Apply one message from ``peer``: the answer to send, or None when there is none to
        send (a message that is not its sender's, or one that is not the next)."""
        data = self._parse(payload, f"from {peer}")
        if data is None:
            return None
        if data.get("peer") != peer:
            self._refuse("forged_hall", f"a message on {peer}'s link names {str(data.get('peer'))[:40]}")
            return None
        channel = "up" if kind is ReceiveCase else "down"
        try:
            command = kind.model_validate(data)
        except ValidationError as exc:
            self._refuse("malformed", f"from {peer}: {_errors(exc)}")
            return await self._refused(peer, channel, data, "上报内容不完整或格式不符")
        try:
            reply = await self.engine.execute(command, Source(f"hall:{peer}", Origin.TIER))
        except Refused as exc:
            if exc.code == "new_epoch":                  # its first comes again in its turn
                self.counts["out_of_order"] += 1
                return None
            if exc.code != "out_of_order":
                self._refuse(exc.code, f"from {peer}: {exc}")
                return await self._refused(peer, channel, data, exc.message or exc.code)
            self.counts["out_of_order"] += 1
            hall = await self.engine.settled()
            mark = hall.inbox.get((peer, channel))
            return Ack(mark.applied if mark else 0, str(data.get("epoch", "")), behind=True)
        self.counts["duplicates" if reply.get("duplicate") else "applied"] += 1
        return Ack(int(reply["applied"]), str(data.get("epoch", "")))

    async def _refused(self, peer: str, channel: str, data: dict[str, Any], reason: str) -> Ack | None:
        """The answer to a message that will never be applied: when it is the next one, the
        sender is told so (and goes on with the one after); otherwise nothing yet."""
        seq, epoch, base, row = data.get("seq"), data.get("epoch", ""), data.get("base"), data.get("row")
        if not _count(seq) or not isinstance(epoch, str) or not _count(row):
            return None
        mark = (await self.engine.settled()).inbox.get((peer, channel))
        if mark is None:
            applied: int | None = 0
        elif not mark.epoch or mark.epoch == epoch:
            applied = mark.applied
        else:                                            # the first of a new epoch, or none yet
            applied = base if _count(base) else None
        if applied is None or seq != applied + 1:
            return None
        return Ack(applied, epoch[:16], refused=seq, reason=reason, row=row)

    def _refuse(self, reason: str, detail: str) -> None:
        self.counts[f"refused:{reason}"] += 1
        log.warning("tier message refused (%s): %s", reason, detail)

    async def _upper_refused(self, kind: str, key: str, reason: str) -> None:
        """A case the hall above refused for good comes back to the desk here."""
        if kind == "case_forwarded":
            try:
                await self.engine.execute(UpperRefused(number=key, reason=reason[:100]),
                                          Source(f"hall:{self.config.tier.upper}", Origin.TIER))
            except Refused as exc:
                log.warning("case %s refused above; not brought back: %s", key, exc)

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
                "sent": {c: s.sent for c, s in self.senders.items()}, "counts": dict(self.counts),
                "refused_there": {c: s.refusals for c, s in self.senders.items() if s.refusals}}


#: The app's tier links.
TIERS: web.AppKey[Link] = web.AppKey("tiers", Link)

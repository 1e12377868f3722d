"""The hall's device bus: protocol v1 between the engine and the devices.

Incoming events become engine commands (de-duplicated by ``device:event_id`` in the same
transaction as their effect) and get their reply on the device's ``cmd``. Committed engine
events become ``set``s, ``calls`` and ``board``. Bad input is answered, counted and logged;
it never changes state and never stops the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import protocol
from controller import __version__
from controller.bus import views
from controller.bus.calls import CallLog
from controller.bus.idcards import IdCards
from controller.bus.pins import KeypadPins, PinCheck
from controller.bus.protocol import to_command
from controller.bus.security import CONTROLLER_USER
from controller.config import Device, HallConfig
from controller.core.commands import Command, Login, Origin, Source, device_source
from controller.core.errors import EngineStopped, Refused, StorageUnavailable
from controller.core.events import EventKind
from controller.core.hall import HallState
from controller.engine import Committed, Engine
from controller.logs import RateLimitedLog
from protocol.link import BrokerAddress, MqttLink
from protocol.tasks import cancel_all

log = logging.getLogger("yimen.bus")
noisy = RateLimitedLog(log)
mqtt_log = logging.getLogger("yimen.bus.mqtt")
mqtt_log.addFilter(RateLimitedLog(mqtt_log).filter())

_WINDOW_EVENTS = frozenset({
    EventKind.LOGIN, EventKind.LOGOUT, EventKind.PAUSED, EventKind.RESUMED, EventKind.CALLED,
    EventKind.RECALLED, EventKind.DONE, EventKind.NO_SHOW, EventKind.HELD, EventKind.TRANSFERRED,
    EventKind.SERVING, EventKind.CLOSED})
_EVALUATION_EVENTS = frozenset({EventKind.EVALUATION_OPENED, EventKind.RATED, EventKind.UNRATED})
#: Device messages received but not yet handled, past which new ones are dropped (the MQTT
#: client says so, rate-limited): a device resends an event that got no reply, and a flood of
#: garbage cannot fill the server's memory.
INBOX = 2000
#: Events of one device being handled at once, past which it is told it is busy (it resends).
MAX_INFLIGHT = 16
#: The model name serial and GPIO devices of the gateway announce (``yimen-gateway/ff68``…):
#: their commands are recorded as coming in by the gateway.
GATEWAY_MODEL = "yimen-gateway/"
#: Devices not in the configuration that the registry still lists (they announced themselves);
#: past this many, new unknown ids are not remembered (memory stays bounded).
MAX_UNKNOWN_DEVICES = 256
#: How long a change that only moves counts (people waiting, the board after a take) may wait
#: to be sent with the ones after it: in a busy hall every ticket would otherwise resend the
#: readout of every window serving that line. The readouts then go out spread over half of
#: this, not as one burst in front of the next call.
COUNTS_EVERY_S = 1.0


@dataclass
class DeviceRecord:
    """What the registry knows of one device (设备台账)."""

    id: str
    kind: str | None = None
    model: str | None = None
    fw: str | None = None
    caps: dict[str, Any] = field(default_factory=dict)
    online: bool = False
    last_seen: datetime | None = None
    last_error: str | None = None
    errors: int = 0
    state: dict[str, Any] | None = None


class HallBus:
    """Owns the controller's MQTT identity for one hall."""

    def __init__(self, engine: Engine, calls: CallLog, broker: BrokerAddress,
                 password: str | None = None, id_key: bytes | None = None,
                 pin_check: PinCheck | None = None) -> None:
        """``password``: the controller's own (user ``controller``); ``id_key``: the hall's ID
        secret, which opens a take's ``id_sealed`` and makes its token (``IdCards``);
        ``pin_check(staff, pin)``: whether a keypad PIN is the clerk's, where the hall asks for
        one (``hall.keypad_pin``)."""
        self.engine = engine
        self.ids = IdCards(id_key, engine.config.hall.id) if id_key else None
        self.pins = KeypadPins(pin_check, engine.clock)
        self.topics = protocol.Topics(self.config.hall.id)
        self.devices: dict[str, Device] = {}
        #: (window, kind) → the ids of the devices bound there, for the ``set``s
        self._bound: dict[tuple[str, str], list[str]] = {}
        self._bind()
        self.registry: dict[str, DeviceRecord] = {}
        self.errors: Counter[str] = Counter()
        self.boot_id = uuid.uuid4().hex[:12]
        self.link = MqttLink(
            broker, f"yimen-controller-{self.config.hall.id}-{self.boot_id}",
            username=CONTROLLER_USER, password=password,
            will=(self.topics.state, b'{"state":"offline"}'),
            subscriptions=self.topics.subscriptions,
            on_connect=self._on_connect, on_message=self._on_message,
            max_queued_incoming=INBOX, logger=mqtt_log,
            live_only=lambda topic: topic.endswith("/event"))   # a retained event is never replayed
        self._dirty_windows: set[str] = set()     # their own state changed: sent at once
        self._recount: set[str] = set()           # only their line's count changed
        self._counts_wake = asyncio.Event()
        self._dirty_evaluators: set[str] = set()
        self._calls: list[dict[str, Any]] = []
        self._board_dirty = False                 # the board goes out at once (a call)
        self._published: dict[str, bytes] = {}      # device → the last ``set`` it was sent
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task] = set()
        self._inflight: Counter[str] = Counter()      # device → events in hand
        self._main: list[asyncio.Task] = []
        self.calls = calls
        self.calls.subscribe(self._on_events)

    @property
    def config(self) -> HallConfig:
        """The live configuration, as committed."""
        return self.engine.config

    @property
    def id_public_key(self) -> str | None:
        """What boxes with a card reader seal ID numbers to (handed in the process to the
        demo's simulators and a gateway inside the server)."""
        return self.ids.public_key if self.ids is not None else None

    def _bind(self) -> None:
        """The configured devices and the windows they are bound to, from the live
        configuration (a disabled device is shown nothing)."""
        self.devices = {d.id: d for d in self.config.devices}
        self._bound = {}
        for d in self.config.devices:
            if d.window is not None and d.enabled:
                self._bound.setdefault((d.window, d.kind), []).append(d.id)

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self._main = [asyncio.create_task(self.link.run(), name="yimen-bus-link"),
                      asyncio.create_task(self._publisher(), name="yimen-bus-publisher"),
                      asyncio.create_task(self._counter(), name="yimen-bus-counts")]

    async def stop(self) -> None:
        if self.link.connected.is_set():
            await self.link.publish(self.topics.state, b'{"state":"offline"}', retain=True)
        self._closing = True
        self.link.close()
        self._wake.set()
        self._counts_wake.set()
        await cancel_all([*self._main, *self._tasks])
        self._main, self._tasks = [], set()

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ incoming
    async def _on_connect(self) -> None:
        """On every (re)connect: controller/state online, every owned ``set``, ``board``."""
        state = {"state": "online", "boot_id": self.boot_id, "version": __version__,
                 "ts": self._local_now().isoformat()}
        await self.link.publish(self.topics.state, protocol.encode(state), retain=True)
        self._published.clear()
        self._show_everything()

    def _show_everything(self) -> None:
        windows = [w.id for w in self.config.windows]
        self._dirty_windows.update(windows)
        self._dirty_evaluators.update(windows)
        self._board_dirty = True
        self._wake.set()

    def _on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None:
            return
        device, leaf = parsed
        record = self.registry.get(device)
        if record is None and (device in self.devices or len(self.registry) < len(self.devices)
                               + MAX_UNKNOWN_DEVICES):
            record = self.registry[device] = DeviceRecord(device)
        if record is not None:
            record.last_seen = self._local_now()
        if leaf == "event":
            self._on_event(device, record, payload)
        elif record is None:
            return
        elif leaf == "info":
            self._on_info(record, payload)
        elif leaf == "availability":
            record.online = payload.strip() == b"online"
        else:
            try:
                record.state = json.loads(payload) if payload else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                record.state = None
                self._count(record, device, "bad_state")

    def _on_info(self, record: DeviceRecord, payload: bytes) -> None:
        if not payload:                      # empty retained info: the device is withdrawn
            self.registry.pop(record.id, None)
            return
        try:
            info = json.loads(payload)
            if not isinstance(info, dict):
                raise ValueError("info must be an object")
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            self._count(record, record.id, "bad_info", str(exc))
            return
        bad = [k for k in ("kind", "model", "fw") if info.get(k) is not None and not _label(info[k])]
        if bad:
            self._count(record, record.id, "bad_info", f"{', '.join(bad)} must be short text")
        record.kind, record.model, record.fw = (
            info.get(k) if _label(info.get(k)) else None for k in ("kind", "model", "fw"))
        caps = info.get("caps")
        record.caps = caps if isinstance(caps, dict) else {}

    def _on_event(self, device: str, record: DeviceRecord | None, payload: bytes) -> None:
        """Check an event at once; only a well-formed command for a configured device takes a
        task (and the engine's time), anything else is answered straight away."""
        event = None
        try:
            event = protocol.parse_event(device, payload)
            command = to_command(event, self.devices.get(device), self.ids)
        except protocol.ProtocolError as exc:
            self._count(record, device, exc.code, exc.detail)
            ref = event.event_id if event is not None else exc.ref
            self._reply(device, protocol.error_reply(ref, exc.code, exc.message, exc.detail))
            return
        if self._inflight[device] >= MAX_INFLIGHT:      # answered once the first are done
            self._count(record, device, "busy", f"{MAX_INFLIGHT} events in hand")
            self._reply(device, protocol.error_reply(event.event_id, "busy", "请求过多，请稍后重试"))
            return
        self._inflight[device] += 1
        gateway = record is not None and str(record.model or "").startswith(GATEWAY_MODEL)
        source = device_source(device, Origin.GATEWAY if gateway else Origin.MQTT)
        self._spawn(self._handle_event(device, event, command, source))

    async def _handle_event(self, device: str, event: protocol.DeviceEvent, command: Command,
                            source: Source) -> None:
        ref = event.event_id
        try:
            if isinstance(command, Login) and self.config.hall.keypad_pin:
                await self.pins.check(command.staff, event.body.get("pin"),
                                      {c.id for c in self.config.clerks if c.enabled})
            result = await self.engine.execute(command, source, key=f"dev:{device}:{event.event_id}")
            out = self._success(event, result)
        except Refused as r:
            out = protocol.error_reply(ref, r.code, r.message)
        except (StorageUnavailable, EngineStopped):
            out = protocol.error_reply(ref, "unavailable", "系统繁忙，请稍后重试")
        finally:
            self._inflight[device] -= 1
            if not self._inflight[device]:
                del self._inflight[device]
        await self.link.publish(self.topics.device(device, "cmd"), protocol.encode(out))

    async def cut_off(self, devices: set[str]) -> None:
        """The broker cut ``devices`` off (removed, disabled, a new password) without sending
        their wills: say for them what their wills say, retained ``offline``."""
        for device in sorted(devices):
            record = self.registry.get(device)
            if record is not None:
                record.online = False
            await self.link.publish(self.topics.device(device, "availability"), b"offline", retain=True)

    async def command(self, device: str, body: dict[str, Any]) -> None:
        """Send ``body`` to ``device``'s ``cmd`` topic (a printer's print job, an announcer's
        text), QoS 1."""
        await self.link.publish(self.topics.device(device, "cmd"), protocol.encode(body))

    def _reply(self, device: str, out: dict[str, Any]) -> None:
        self._spawn(self.link.publish(self.topics.device(device, "cmd"), protocol.encode(out)))

    def _success(self, event: protocol.DeviceEvent, result: dict[str, Any]) -> dict[str, Any]:
        if event.type == "take":
            return protocol.reply(event.event_id, "ticket", ticket=result.get("ticket"))
        if event.type == "rating":
            return protocol.reply(event.event_id, "ack", evaluation=result.get("evaluation"))
        return protocol.reply(event.event_id, "ack", result=result)

    def _count(self, record: DeviceRecord | None, device: str, code: str, detail: str = "") -> None:
        self.errors[code] += 1
        detail = detail[:200]
        if record is not None:
            record.errors += 1
            record.last_error = f"{code}: {detail}" if detail else code
        noisy.warning(f"{code}:{device}", "device %s: %s %s", device, code, detail)

    # ------------------------------------------------------------------ outgoing
    def _on_events(self, committed: Committed, calls: list[dict[str, Any]]) -> None:
        """After each commit (through the call log): mark what changed; the publisher sends
        it. After a rebuild from storage, everything is sent anew."""
        reconfigured = committed.rebuilt     # services, windows, devices may have changed
        windows_for = self.config.windows_for          # the readouts counting each line
        for ev in committed.events:
            if ev.service:                   # a line changed: every readout counting it
                self._recount.update(windows_for.get(ev.service, ()))
            if ev.kind in _WINDOW_EVENTS and ev.window:
                self._dirty_windows.add(ev.window)
            elif ev.kind is EventKind.ROLLOVER:
                self._show_everything()
            elif ev.kind is EventKind.CONFIG_CHANGED:
                reconfigured = True
            if ev.kind in _EVALUATION_EVENTS and ev.window:
                self._dirty_evaluators.add(ev.window)
        if reconfigured:
            self._bind()
            self._show_everything()
        if calls:
            self._calls += calls
            self._board_dirty = True
        self._counts_wake.set()
        self._wake.set()

    async def _publisher(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if not self.link.connected.is_set():
                continue                         # _on_connect marks everything again
            try:
                await self._publish_pending(await self.engine.settled())
            except (StorageUnavailable, EngineStopped):
                await asyncio.sleep(0.5)         # the state is being reloaded
                self._wake.set()
            except Exception:  # noqa: BLE001 - devices must go on being told
                noisy.exception("publisher", "publishing to devices failed; trying again")
                self._show_everything()
                await asyncio.sleep(0.5)

    async def _publish_pending(self, hall: HallState) -> None:
        """Send what changed at once: the screens and readouts of windows that just called and
        the ``calls`` themselves (what citizens are watching) first, then the other windows
        whose own state changed, the evaluators and, after a call, ``board``. Every payload is
        built from the settled ``hall`` before the first ``await``."""
        windows, self._dirty_windows = self._dirty_windows, set()
        evaluators, self._dirty_evaluators = self._dirty_evaluators, set()
        calls, self._calls = self._calls, []
        called = {c["window"]: c["call_id"] for c in calls}
        sent: list[asyncio.Future] = []

        def sets(w: str) -> None:
            self._offer(sent, w, "window_display",
                        lambda w: views.window_display_set(hall, w, called.get(w)))
            self._offer(sent, w, "caller", lambda w: views.caller_set(hall, w))

        for w in called:
            sets(w)
        for call in calls:                   # in order: screens and announcers queue them
            self._send(sent, self.topics.calls, protocol.encode(call))
        for w in windows - called.keys():
            sets(w)
        for w in evaluators:
            self._offer(sent, w, "evaluator", partial(views.evaluator_set, hall))
        if self._board_dirty:
            self._publish_board(sent, hall)
        await asyncio.gather(*sent)

    async def _counter(self) -> None:
        """People-waiting counts and ``board`` after changes that only move counts: at most
        every ``COUNTS_EVERY_S``, one readout at a time over half of it."""
        while not self._closing:
            await self._counts_wake.wait()
            await asyncio.sleep(COUNTS_EVERY_S / 2)
            self._counts_wake.clear()
            if not self.link.connected.is_set():
                continue
            pending, self._recount = sorted(self._recount, reverse=True), set()
            gap = COUNTS_EVERY_S / 2 / max(1, len(pending))
            sent: list[asyncio.Future] = []
            try:
                while pending:
                    hall = await self.engine.settled()
                    self._offer(sent, pending[-1], "caller", partial(views.caller_set, hall))
                    pending.pop()
                    await asyncio.sleep(gap)
                self._publish_board(sent, await self.engine.settled())
            except (StorageUnavailable, EngineStopped):
                self._recount.update(pending)    # the state is being reloaded: later
                self._counts_wake.set()
            except Exception:  # noqa: BLE001 - the counts must go on
                noisy.exception("counter", "sending people-waiting counts failed")
                self._recount.update(pending)
            await asyncio.gather(*sent, return_exceptions=True)

    def _send(self, sent: list[asyncio.Future], topic: str, data: bytes, **kwargs: Any) -> None:
        sent.append(asyncio.ensure_future(self.link.publish(topic, data, **kwargs)))

    def _offer(self, sent: list[asyncio.Future], w: str, kind: str,
               build: Callable[[str], dict[str, Any]]) -> None:
        """The ``set`` of the devices of ``kind`` at ``w``, unless they have it already."""
        devices = self._bound.get((w, kind), ())
        data = protocol.encode(build(w)) if devices else b""
        for device in devices:
            if self._published.get(device) != data:
                self._published[device] = data
                self._send(sent, self.topics.device(device, "set"), data, retain=True)

    def _publish_board(self, sent: list[asyncio.Future], hall: HallState) -> None:
        self._board_dirty = False
        board = views.board(hall, list(self.calls.recent), self._local_now())
        self._send(sent, self.topics.board, protocol.encode(board), qos=0, retain=True)

    def _local_now(self) -> datetime:
        return self.engine.clock.now().astimezone(self.config.hall.tz)

    def status(self) -> dict[str, Any]:
        """For the device page and metrics."""
        return {"connected": self.link.connected.is_set(), "boot_id": self.boot_id,
                "errors": dict(self.errors),
                "devices": [{"id": r.id, "kind": r.kind, "model": r.model, "fw": r.fw,
                             "online": r.online, "errors": r.errors, "last_error": r.last_error,
                             "last_seen": r.last_seen.isoformat() if r.last_seen else None,
                             "bound_window": self.devices[r.id].window if r.id in self.devices
                             else None}
                            for r in sorted(self.registry.values(), key=lambda r: r.id)]}


def _label(value: object) -> bool:
    """A device's kind, model or firmware: short printable text."""
    return isinstance(value, str) and len(value) <= 64 and value.isprintable()

"""``yimen gateway``: serial buses and GPIO buttons attached to the hall as protocol v1 devices.

Each configured bus runs its own loop on its port: ``FF 68`` keypads are heard and echoed (a
repeat of the same press within ``REPEAT_S``, sent because an echo was lost, is dropped);
ybus devices are polled, and their liveness is their availability; Onbon screens are written
to. A port that fails or cannot be opened is retried with a capped backoff while its devices
say ``offline``. Every physical device has its own MQTT identity (``devices.bridge``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from devices import bridge
from devices.codecs import ff68, ybus
from devices.gateway_config import BusSpec, GatewayConfig
from devices.peripherals import KioskPrinter, card_reader
from devices.printer import serial_printer
from devices.serialport import open_port, wire_seconds
from protocol.link import BrokerAddress
from protocol.tasks import cancel_all

log = logging.getLogger("yimen.gateway")

REPEAT_S = 1.0
RETRY_MAX_S = 30.0


class SerialBus:
    """One port and the devices on it."""

    def __init__(self, spec: BusSpec, devices: dict[int, bridge.Bridged]) -> None:
        self.spec = spec
        self.devices = devices
        self.frames_in = 0
        self.bad_frames = 0
        self._writer: asyncio.StreamWriter | None = None
        self._answered = asyncio.Event()
        self._handling: set[asyncio.Task] = set()
        self.host = ybus.BusHost(list(devices), reply_timeout_s=spec.reply_timeout_ms / 1000,
                                 offline_after=spec.offline_after) \
            if spec.protocol == "ybus" else None
        for d in devices.values():
            d.write = self.write
            d.host = self.host

    def write(self, frame: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(frame)

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                reader, self._writer = await open_port(self.spec.port, self.spec.baud)
            except (OSError, ValueError) as exc:
                log.warning("%s: cannot open (%s); again in %.0f s", self.spec.port, exc, delay)
                await self._all_available(False)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            delay = 0.5
            log.info("%s: %s bus open at %d baud", self.spec.port, self.spec.protocol, self.spec.baud)
            try:
                await self._resend_sets()
                await self._loop(reader)
            except (OSError, asyncio.IncompleteReadError) as exc:
                log.warning("%s: port failed: %s", self.spec.port, exc)
            finally:
                self._writer.close()
                self._writer = None
            await self._all_available(False)

    async def _loop(self, reader: asyncio.StreamReader) -> None:
        if self.spec.protocol == "ybus":
            poller = asyncio.create_task(self._poll())
            try:
                await self._read(reader, self._on_ybus)
            finally:
                await cancel_all([poller])
        elif self.spec.protocol == "ff68":
            await self._all_available(True)          # keypads speak unasked: heard = there
            await self._read(reader, self._on_ff68_factory())
        else:
            await self._all_available(True)
            await self._read(reader, lambda data: None)   # screens answer nothing we need

    async def _read(self, reader: asyncio.StreamReader, handle: Callable[[bytes], None]) -> None:
        while True:
            data = await reader.read(4096)
            if not data:
                raise OSError("end of stream")
            handle(data)

    # ------------------------------------------------------------------ FF 68
    def _on_ff68_factory(self) -> Callable[[bytes], None]:
        decoder = ff68.Decoder()
        recent: dict[bytes, float] = {}
        loop = asyncio.get_running_loop()

        def on_data(data: bytes) -> None:
            for frame in decoder.feed(data):
                msg = ff68.message(frame)
                device = self.devices.get(frame.addr)
                if msg is None or device is None:
                    continue
                raw = frame.encode()
                self.write(raw)                           # the echo acknowledges it
                now = loop.time()
                if now - recent.get(raw, -REPEAT_S) < REPEAT_S:
                    continue                              # sent again for a lost echo
                recent[raw] = now
                self.frames_in += 1
                if isinstance(msg, ff68.Rating):
                    if isinstance(device, bridge.BridgedEvaluator):
                        device.rate_index(msg.index)
                else:
                    device.press(msg.key)
            self.bad_frames = decoder.stream.bad_frames
        return on_data

    # ------------------------------------------------------------------ ybus
    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        host, writer = self.host, self._writer
        assert host is not None and writer is not None   # a ybus bus, with its port open
        while True:
            frame = host.request(loop.time())
            if frame is None:
                self._answered.clear()
                try:
                    await asyncio.wait_for(self._answered.wait(), host.reply_timeout_s)
                except TimeoutError:
                    pass
                await self._ybus_events(host.expired(loop.time()))
                continue
            self.write(frame)
            await writer.drain()
            await asyncio.sleep(wire_seconds(len(frame), self.spec.baud))

    def _on_ybus(self, data: bytes) -> None:
        host = self.host
        assert host is not None                           # a ybus bus
        events = host.receive(data, asyncio.get_running_loop().time())
        self.bad_frames = host.decoder.stream.bad_frames
        self._answered.set()
        if events:
            task = asyncio.ensure_future(self._ybus_events(events))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _ybus_events(self, events: list[ybus.Event]) -> None:
        for e in events:
            device = self.devices[e.addr]
            if isinstance(e, ybus.Pressed):
                self.frames_in += 1
                device.press(e.key, e.arg)
            else:
                online = isinstance(e, ybus.Online)
                log.info("%s: %s %s", self.spec.port, device.id, "online" if online else "offline")
                await device.set_available(online)
                if online and device.shown is not None:
                    await device.on_set(device.shown)     # it may have lost what it showed

    async def _resend_sets(self) -> None:
        for d in self.devices.values():
            if d.shown is not None:
                await d.on_set(d.shown)

    async def _all_available(self, online: bool) -> None:
        for d in self.devices.values():
            await d.set_available(online)


class Gateway:
    """Owns every bridged device and every bus loop; ``start``/``stop``."""

    def __init__(self, config: GatewayConfig, broker: BrokerAddress | None = None,
                 pin_factory: Any = None, passwords: dict[str, str] | None = None,
                 id_public_key: str | None = None) -> None:
        """``passwords``: each device's own (default: the file's ``[devices.ID]``);
        ``id_public_key``: the hall server's, which the readers seal ID numbers to (default: the
        file's; a gateway inside the server is handed the server's)."""
        self.config = config
        self.broker = broker or BrokerAddress.parse(config.broker)
        self.passwords = config.passwords if passwords is None else passwords
        missing = [d for d in config.device_ids if d not in self.passwords]
        if missing:
            raise ValueError(f"no password for {', '.join(missing)} ([devices.ID] password = …)")
        self.devices: dict[str, bridge.Bridged] = {}
        self.buses: list[SerialBus] = []
        for spec in config.buses:
            on_bus = {}
            for d in spec.devices:
                device = self._device(d.kind, d.id, d.addr, spec.protocol)
                device.panel = (d.width, d.line_height)
                device.available = spec.protocol != "ybus"    # polled: offline until it answers
                on_bus[d.addr] = device
            self.buses.append(SerialBus(spec, on_bus))
        self.buttons = []
        if config.gpio:
            from devices.gpio import ButtonPanel
            for gpio in config.gpio:
                device = self._device(gpio.kind, gpio.id, 0, "gpio")
                self.buttons.append(ButtonPanel(gpio, device, pin_factory))
        key = id_public_key or config.id_public_key
        readers = (card_reader(a.port, a.baud, a.kiosk, self._kiosk(a.kiosk).on_card, key, config.hall)
                   for a in config.readers)
        self.readers = [r for r in readers if r is not None]
        for printer in config.printers:
            self._kiosk(printer.kiosk).printer = KioskPrinter(
                serial_printer(printer.port, printer.baud), config.hall_name, printer.width)
        self._tasks: list[asyncio.Task] = []

    def _device(self, kind: str, device_id: str, addr: int, protocol: str) -> bridge.Bridged:
        cls = bridge.KINDS[kind]
        device = cls(self.config.hall, device_id, self.broker, self.passwords[device_id],
                     addr=addr, protocol=protocol)
        self.devices[device_id] = device
        return device

    def _kiosk(self, device_id: str) -> bridge.BridgedKiosk:
        device = self.devices[device_id]
        if not isinstance(device, bridge.BridgedKiosk):     # gateway_config.parse checks this
            raise ValueError(f"{device_id!r} is not a kiosk")
        return device

    async def start(self) -> None:
        for d in self.devices.values():
            await d.start()
        for panel in self.buttons:
            panel.start()
        self._tasks = [asyncio.create_task(b.run(), name=f"bus-{b.spec.port}")
                       for b in self.buses]
        self._tasks += [asyncio.create_task(r.run(), name=f"reader-{r.port}") for r in self.readers]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        for panel in self.buttons:
            panel.close()
        await asyncio.gather(*[d.stop() for d in self.devices.values()])
        for d in self.devices.values():
            if isinstance(d, bridge.BridgedKiosk) and d.printer is not None:
                await asyncio.to_thread(d.printer.close)

    def status(self) -> dict[str, Any]:
        return {"buses": [{"port": b.spec.port, "protocol": b.spec.protocol,
                           "frames": b.frames_in, "bad_frames": b.bad_frames,
                           "repeats": b.host.repeats if b.host else None} for b in self.buses]}

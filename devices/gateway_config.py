"""The gateway's configuration file (TOML), validated once into frozen objects.

    hall = "demo"
    broker = "mqtt://127.0.0.1:1884"
    id_public_key = "x25519:…"   # the hall server's, for the ID-card readers (sealed numbers)

    [[bus]]
    port = "/dev/ttyUSB0"
    baud = 9600
    protocol = "ff68"            # ff68 | ybus | onbon
    devices = [{ id = "caller-w01", kind = "caller", addr = 1 }]

    [[gpio]]
    id = "kiosk-b1"
    kind = "kiosk"               # kiosk | caller
    buttons = [{ pin = 17, key = "take", arg = "A" }, { pin = 27, key = "next", hold = "recall" }]

    [[reader]]                   # an ID-card reader on a kiosk (SAM, 115200 8N1)
    port = "/dev/ttyUSB3"
    kiosk = "kiosk-b1"

    [[printer]]                  # its ticket printer (ESC/POS)
    port = "/dev/ttyUSB4"
    kiosk = "kiosk-b1"
    width = 576                  # dots: 576 for 80 mm paper, 384 for 58 mm

    [devices.caller-w01]         # each device's own MQTT password (yimen device credentials ID);
    password = "…"               # inside ``yimen serve --gateway`` missing ones are made

The file holds only its own devices' passwords, never a secret of the whole hall: keep it
readable by the gateway's user only. ``id_public_key`` is no secret: it seals ID numbers for
the hall server and opens nothing; without it the readers read no cards (said at start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.config import ConfigError, read_toml
from protocol import idseal
from protocol.credentials import NO_SHARED_SECRET, own_password

PROTOCOLS = {"ff68": ("caller", "evaluator"),
             "ybus": ("caller", "evaluator", "kiosk", "window_display"),
             "onbon": ("window_display",)}
GPIO_KINDS = ("kiosk", "caller")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")


@dataclass(frozen=True)
class BusDevice:
    id: str
    kind: str
    addr: int
    width: int = 96              # an LED screen that takes pixels: dots across
    line_height: int = 16        # and per line (16 or 32)


@dataclass(frozen=True)
class BusSpec:
    port: str
    baud: int
    protocol: str
    devices: tuple[BusDevice, ...]
    reply_timeout_ms: int = 50
    offline_after: int = 3


@dataclass(frozen=True)
class Button:
    pin: int
    key: str
    arg: str = ""
    hold: str = ""               # the key a long press sends instead ("" = none)


@dataclass(frozen=True)
class GpioSpec:
    id: str
    kind: str
    buttons: tuple[Button, ...]
    debounce_ms: int = 50
    hold_ms: int = 1500


@dataclass(frozen=True)
class Attached:
    """A reader or printer serving one kiosk."""

    port: str
    baud: int
    kiosk: str
    width: int = 576


@dataclass(frozen=True)
class GatewayConfig:
    hall: str
    broker: str
    buses: tuple[BusSpec, ...]
    gpio: tuple[GpioSpec, ...]
    readers: tuple[Attached, ...] = ()
    printers: tuple[Attached, ...] = ()
    hall_name: str = ""
    id_public_key: str = ""      # the hall server's, which the readers seal ID numbers to
    #: device → its own MQTT password (never shown in a repr)
    passwords: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def device_ids(self) -> list[str]:
        """Every device this gateway attaches, in the file's order."""
        return [d.id for b in self.buses for d in b.devices] + [g.id for g in self.gpio]


def load(path: str | Path, passwords_needed: bool = True) -> GatewayConfig:
    return parse(read_toml(path), str(path), passwords_needed)


def parse(raw: dict[str, Any], where: str = "<gateway>", passwords_needed: bool = True) -> GatewayConfig:
    """A gateway's file; with ``passwords_needed`` (a gateway on its own) every device must
    have its password in ``[devices.ID]``."""
    def fail(key: str, why: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {why}")

    def text(d: dict, key: str, at: str, default: str | None = None) -> str:
        v = d.get(key, default)
        if not isinstance(v, str) or not v:
            raise fail(f"{at}{key}", "a non-empty string is needed")
        return v

    def integer(d: dict, key: str, at: str, default: int | None = None, lo: int = 0,
                hi: int = 1 << 31) -> int:
        v = d.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise fail(f"{at}{key}", f"a whole number from {lo} to {hi} is needed")
        return v

    seen: set[str] = set()

    def device_id(d: dict, at: str) -> str:
        v = text(d, "id", at)
        if not _ID.fullmatch(v):
            raise fail(f"{at}id", "lower-case letters, digits and '-', as protocol v1 says")
        if v in seen:
            raise fail(f"{at}id", f"{v!r} is used twice")
        seen.add(v)
        return v

    buses = []
    for i, b in enumerate(raw.get("bus", [])):
        at = f"bus[{i}]."
        protocol = text(b, "protocol", at)
        if protocol not in PROTOCOLS:
            raise fail(f"{at}protocol", f"one of {', '.join(PROTOCOLS)}")
        devices, addrs = [], set()
        for j, d in enumerate(b.get("devices", [])):
            dat = f"{at}devices[{j}]."
            kind = text(d, "kind", dat)
            if kind not in PROTOCOLS[protocol]:
                raise fail(f"{dat}kind", f"{protocol} carries {', '.join(PROTOCOLS[protocol])}")
            addr = integer(d, "addr", dat, lo=0 if protocol == "onbon" else 1,
                           hi=0xFFFF if protocol == "onbon" else 247)
            if addr in addrs:
                raise fail(f"{dat}addr", f"{addr} is used twice on this bus")
            addrs.add(addr)
            line_height = integer(d, "line_height", dat, 16, 16, 32)
            if line_height not in (16, 32):
                raise fail(f"{dat}line_height", "16 or 32")
            devices.append(BusDevice(device_id(d, dat), kind, addr,
                                     integer(d, "width", dat, 96, 16, 1024), line_height))
        if not devices:
            raise fail(f"{at}devices", "a bus needs at least one device")
        buses.append(BusSpec(text(b, "port", at), integer(b, "baud", at, 9600, 1200, 921600),
                             protocol, tuple(devices),
                             integer(b, "reply_timeout_ms", at, 50, 5, 5000),
                             integer(b, "offline_after", at, 3, 1, 100)))
    gpio = []
    for i, g in enumerate(raw.get("gpio", [])):
        at = f"gpio[{i}]."
        kind = text(g, "kind", at)
        if kind not in GPIO_KINDS:
            raise fail(f"{at}kind", f"one of {', '.join(GPIO_KINDS)}")
        buttons = [Button(integer(b, "pin", f"{at}buttons[{j}].", hi=63),
                          text(b, "key", f"{at}buttons[{j}]."), str(b.get("arg", "")),
                          str(b.get("hold", "")))
                   for j, b in enumerate(g.get("buttons", []))]
        if not buttons:
            raise fail(f"{at}buttons", "at least one button is needed")
        gpio.append(GpioSpec(device_id(g, at), kind, tuple(buttons),
                             integer(g, "debounce_ms", at, 50, 0, 2000),
                             integer(g, "hold_ms", at, 1500, 100, 10000)))
    if not buses and not gpio:
        raise fail("bus", "nothing to attach: no [[bus]] and no [[gpio]]")
    kiosks = {d.id for b in buses for d in b.devices if d.kind == "kiosk"} | \
             {g.id for g in gpio if g.kind == "kiosk"}

    def attached(section: str, baud: int) -> tuple[Attached, ...]:
        out, served = [], set()
        for i, a in enumerate(raw.get(section, [])):
            at = f"{section}[{i}]."
            kiosk = text(a, "kiosk", at)
            if kiosk not in kiosks:
                raise fail(f"{at}kiosk", f"{kiosk!r} is not a kiosk of this gateway")
            if kiosk in served:
                raise fail(f"{at}kiosk", f"{kiosk!r} has one already")
            served.add(kiosk)
            out.append(Attached(text(a, "port", at), integer(a, "baud", at, baud, 1200, 921600),
                                kiosk, integer(a, "width", at, 576, 128, 1024)))
        return tuple(out)

    readers, printers = attached("reader", 115200), attached("printer", 9600)
    if "secret" in raw:
        raise fail("secret", " / ".join(NO_SHARED_SECRET))
    passwords = {}
    entries = raw.get("devices", {})
    if not isinstance(entries, dict):
        raise fail("devices", "a table [devices.ID] per device, with its password")
    for device, entry in entries.items():
        if device not in seen:
            raise fail(f"devices.{device}", f"{device!r} is not a device of this gateway")
        try:
            passwords[device] = own_password(entry.get("password") if isinstance(entry, dict) else None)
        except ValueError as exc:
            raise fail(f"devices.{device}.password", str(exc)) from None
    missing = [d for d in [d.id for b in buses for d in b.devices] + [g.id for g in gpio]
               if d not in passwords]
    if passwords_needed and missing:
        raise fail(f"devices.{missing[0]}.password", "每台设备需要自己的密码（yimen device credentials "
                   f"{missing[0]}） / each device needs its own password ({len(missing)} have none)")
    id_public_key = raw.get("id_public_key", "")
    if id_public_key != "":
        try:
            idseal.load_public_key(id_public_key)
        except ValueError as exc:
            raise fail("id_public_key", str(exc)) from None
    hall = text(raw, "hall", "")
    return GatewayConfig(hall, text(raw, "broker", "", "mqtt://127.0.0.1:1883"),
                         tuple(buses), tuple(gpio), readers, printers,
                         text(raw, "hall_name", "", hall), id_public_key, passwords)

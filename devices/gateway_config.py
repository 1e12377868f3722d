"""The gateway's configuration file (TOML), validated once into frozen objects.

    hall = "demo"
    broker = "mqtt://127.0.0.1:1884"
    secret = "…"                 # the hall's bus secret (each device's password derives from it;
                                 # inside ``yimen serve --gateway`` the server's own is used)

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.config import ConfigError, read_toml

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
    secret: str
    buses: tuple[BusSpec, ...]
    gpio: tuple[GpioSpec, ...]
    readers: tuple[Attached, ...] = ()
    printers: tuple[Attached, ...] = ()
    hall_name: str = ""


def load(path: str | Path) -> GatewayConfig:
    return parse(read_toml(path), str(path))


def parse(raw: dict[str, Any], where: str = "<gateway>") -> GatewayConfig:
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
    secret = raw.get("secret", "")
    if not isinstance(secret, str):
        raise fail("secret", "a string is needed")
    hall = text(raw, "hall", "")
    return GatewayConfig(hall, text(raw, "broker", "", "mqtt://127.0.0.1:1883"),
                         secret, tuple(buses), tuple(gpio), readers, printers,
                         text(raw, "hall_name", "", hall))

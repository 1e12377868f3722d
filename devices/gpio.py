"""Buttons on GPIO pins (a Raspberry Pi kiosk or keypad) through gpiozero.

gpiozero calls back on a thread of its own; every edge is moved onto the event loop here, in
this one place, with ``call_soon_threadsafe``. Debounce and long press are the project's own
(gpiozero's mock pins ignore ``bounce_time``): a pin's level counts once it has stayed put
for ``debounce_ms`` after its last edge, so the burst of edges a contact makes is one press. A
button with a ``hold`` key sends it when held ``hold_ms`` and its own key on a shorter press,
at release; a button without one sends its key as soon as the press has settled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from devices.bridge import Bridged
from devices.gateway_config import Button, GpioSpec

log = logging.getLogger("yimen.gateway")


class _State:
    def __init__(self, button: Button) -> None:
        self.button = button
        self.raw = False                 # the level as last reported (True: pressed)
        self.down = False                # the settled level
        self.settle: asyncio.TimerHandle | None = None
        self.held: asyncio.TimerHandle | None = None
        self.fired_hold = False


class ButtonPanel:
    """The buttons of one device."""

    def __init__(self, spec: GpioSpec, device: Bridged, pin_factory: Any = None) -> None:
        self.spec = spec
        self.device = device
        self.pin_factory = pin_factory
        self.states: dict[int, _State] = {b.pin: _State(b) for b in spec.buttons}
        self._buttons: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bounces = 0

    def start(self) -> None:
        from gpiozero import Button as GpioButton

        self._loop = asyncio.get_running_loop()
        for pin in self.states:
            b = GpioButton(pin, pull_up=True, bounce_time=None, pin_factory=self.pin_factory)
            b.when_pressed = lambda _b=None, pin=pin: self._from_thread(pin, True)
            b.when_released = lambda _b=None, pin=pin: self._from_thread(pin, False)
            self._buttons.append(b)

    def close(self) -> None:
        for b in self._buttons:
            b.close()
        self._buttons = []

    def _from_thread(self, pin: int, down: bool) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._edge, pin, down)

    def _edge(self, pin: int, down: bool) -> None:
        assert self._loop is not None    # edges arrive only after ``start``
        s = self.states[pin]
        s.raw = down
        if s.settle is not None:
            self.bounces += 1
            s.settle.cancel()
        s.settle = self._loop.call_later(self.spec.debounce_ms / 1000, self._settled, pin)

    def _settled(self, pin: int) -> None:
        assert self._loop is not None    # scheduled by ``_edge``, after ``start``
        s = self.states[pin]
        s.settle = None
        if s.raw == s.down:
            return                       # it bounced back to where it was: nothing happened
        s.down = s.raw
        b = s.button
        if s.down:
            s.fired_hold = False
            if b.hold:
                s.held = self._loop.call_later(self.spec.hold_ms / 1000, self._held, pin)
            else:
                self.device.press(b.key, b.arg)
        else:
            if s.held is not None:
                s.held.cancel()
                s.held = None
            if b.hold and not s.fired_hold:
                self.device.press(b.key, b.arg)

    def _held(self, pin: int) -> None:
        s = self.states[pin]
        s.held = None
        if s.down:
            s.fired_hold = True
            self.device.press(s.button.hold, s.button.arg)

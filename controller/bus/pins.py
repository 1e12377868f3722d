"""Keypad PINs (键盘登录密码): where the hall turns them on (``hall.keypad_pin``), a clerk
logs in at a hardware keypad with their staff id and the PIN set on their account
(``PATCH /api/users/{name} {"pin": "…"}``). Protocol v1's ``login`` key gains an optional
``"pin"`` (additive). Four to eight digits are few: after 5 wrong PINs for a staff id each
further try waits 1, 2, 4 … seconds (``controller.auth.throttle``), answered ``throttled``
without checking."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from controller.auth.throttle import Throttle
from controller.clock import Clock
from controller.core.errors import Refused

PinCheck = Callable[[str, str], Awaitable[bool]]
FREE_TRIES = 5


class KeypadPins:
    def __init__(self, check: PinCheck | None, clock: Clock) -> None:
        self._check, self.clock = check, clock
        self._throttle = Throttle(FREE_TRIES)

    async def check(self, staff: str, pin: object, clerks: Collection[str]) -> None:
        """Nothing if ``pin`` is ``staff``'s PIN; else a refusal the keypad shows. A staff id
        that is not one of the hall's ``clerks`` is refused before any hashing."""
        if staff not in clerks:
            raise Refused("unknown_staff", "工号或密码错误", "no such clerk")
        now = self.clock.now().timestamp()
        if self._throttle.wait_s(staff, now) > 0:
            raise Refused("throttled", "密码错误次数过多，请稍后再试", "too many wrong PINs: wait")
        if not isinstance(pin, str) or not pin:
            raise Refused("pin_required", "请输入工号和密码", "this hall asks for a PIN with the staff id")
        self._throttle.attempt(staff, now)
        if self._check is None or not await self._check(staff, pin):
            raise Refused("bad_pin", "工号或密码错误", "wrong staff id or PIN")
        self._throttle.succeeded(staff, forget=True)

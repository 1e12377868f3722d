"""Waiting in tests for something to happen, instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "the condition",
                   *, interval: float = 0.02) -> Any:
    """Check ``predicate()`` (it may return an awaitable) every ``interval`` seconds until it is
    true and return its value; after ``timeout`` seconds fail, saying that ``what`` did not
    happen. Name ``what`` as the thing awaited, e.g. "kiosk-1 to go offline"."""
    __tracebackhide__ = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            last = "" if value is None or isinstance(value, bool) else f" (last: {value!r})"
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{last}")
        await asyncio.sleep(interval)

"""Stopping background tasks reliably.

Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that arrives just as the awaited
future completes (fixed in 3.12), and aiomqtt awaits every publish that way, so a loop may
survive ``cancel()``. Loops therefore also check a flag, and stopping waits a bounded time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger("yimen.tasks")


async def cancel_all(tasks: Iterable[asyncio.Task], timeout: float = 5.0) -> None:
    """Cancel ``tasks`` (again, while any still runs) and wait up to ``timeout`` seconds."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.5, deadline - loop.time()))
    for task in pending:
        log.warning("task %s did not stop", task.get_name())

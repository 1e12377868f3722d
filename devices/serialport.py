"""The one place that opens serial ports (pyserial through its asyncio transport)."""

from __future__ import annotations

import asyncio

import serial_asyncio_fast


async def open_port(port: str, baud: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """8N1 at ``baud``; ``port`` is a device path (``/dev/ttyUSB0``, a pseudo-terminal) or a
    pyserial URL (``socket://host:port`` for a serial server)."""
    return await serial_asyncio_fast.open_serial_connection(url=port, baudrate=baud)


def wire_seconds(n_bytes: int, baud: int) -> float:
    """How long ``n_bytes`` take on the wire at 8N1 (10 bits a byte)."""
    return n_bytes * 10 / baud

"""The CRC-16 variants the hall's serial protocols use (reflected polynomial 0x8005)."""

from __future__ import annotations


def _table() -> list[int]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        out.append(crc)
    return out


_TABLE = _table()


def crc16(data: bytes, init: int) -> int:
    crc = init
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (init 0xFFFF): the project's own RS-485 bus."""
    return crc16(data, 0xFFFF)


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC (init 0): Onbon BX-5/6 font cards."""
    return crc16(data, 0)

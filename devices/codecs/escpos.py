"""ESC/POS thermal printers: the paper-status query and its answer.

``DLE EOT 4`` (``10 04 04``) asks for the roll sensor; a valid answer has bits 1 and 4 set and
bits 0 and 7 clear. Bits 2–3 say the roll is near its end, bits 5–6 that it is out: ``12``
paper ok, ``1E`` near the end, ``72`` out. (Masking with ``0x72`` alone, as some notes say,
would read ``1E`` as ok: the near-end bits are 2–3.) It is only sent between jobs, never inside
raster data. The ticket itself is laid out by ``display.ticket`` and sent with python-escpos
(``devices.printer``).
"""

from __future__ import annotations

STATUS_QUERY = b"\x10\x04\x04"
#: what a printer answers for each paper status (simulators and the file printer say these)
ANSWERS = {"ok": 0x12, "low": 0x1E, "out": 0x72}


def paper_status(answer: int) -> str | None:
    """``ok``, ``low`` or ``out``; None for a byte that is not a status answer."""
    if answer & 0x12 != 0x12 or answer & 0x81:
        return None
    if answer & 0x60:
        return "out"
    return "low" if answer & 0x0C else "ok"

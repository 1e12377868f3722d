"""Printing tickets on an ESC/POS thermal printer through python-escpos.

``TicketPrinter`` takes any python-escpos printer (``Serial``, ``Network`` on port 9100,
``Usb``, or ``Dummy`` for a file), prints the ticket laid out by ``display.ticket`` as one
raster image (``GS v 0``) and cuts; ``print_notice`` does the same for the desk's notices
(``display.notices``: 受理通知书 and the others), ``print_image`` for any image. ``paper()``
asks the roll sensor (``DLE EOT 4``) between jobs. Calls block; the kiosk program runs them
on a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devices.codecs.escpos import ANSWERS, STATUS_QUERY, paper_status
from display import notices
from display.ticket import WIDTH_80MM, TicketContent, render


class TicketPrinter:
    def __init__(self, printer: Any, width: int = WIDTH_80MM) -> None:
        self.printer = printer
        self.width = width

    def print_ticket(self, content: TicketContent) -> None:
        self.print_image(render(content, self.width))

    def print_notice(self, kind: str, content: notices.NoticeContent) -> None:
        """A notice (``acceptance_notice``, ``supplement_notice``, ``rejection_notice``) at this
        printer's width."""
        self.print_image(notices.thermal(kind, content, self.width))

    def print_image(self, image: Any) -> None:
        """Any PIL image as one raster job, then a cut; it should be the paper's width."""
        self.printer.image(image, center=False)
        self.printer.cut()

    def paper(self) -> str | None:
        """``ok``, ``low``, ``out``, or None when the printer does not answer."""
        self.printer._raw(STATUS_QUERY)     # python-escpos's way to send bytes as they are
        answer = self.printer._read()
        return paper_status(answer[0]) if answer else None


def serial_printer(port: str, baud: int) -> Callable[[], Any]:
    """Opens (when first needed) an ESC/POS printer on a serial port, through python-escpos."""
    def open_printer() -> Any:
        from escpos.printer import Serial

        return Serial(devfile=port, baudrate=baud, timeout=1, dsrdtr=False)

    return open_printer


class FilePrinter:
    """A printer that keeps each job: the ESC/POS bytes (``NNNN.bin``, as a printer would get
    them, through python-escpos's ``Dummy``) and the ticket or notice as a PNG (``NNNN.png``).
    For tests and for a kiosk whose printer is set up later; ``paper`` is what it reports."""

    def __init__(self, folder: str | Path) -> None:
        from escpos.printer import Dummy

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paper = "ok"
        self._dummy = Dummy()
        self.jobs = len(list(self.folder.glob("*.bin")))

    def image(self, img: Any, **kwargs: Any) -> None:
        self._dummy.image(img, **kwargs)
        self._last = img

    def cut(self) -> None:
        self._dummy.cut()
        self.jobs += 1
        stem = self.folder / f"{self.jobs:04d}"
        stem.with_suffix(".bin").write_bytes(self._dummy.output)
        self._last.save(stem.with_suffix(".png"))
        self._dummy.clear()

    def _raw(self, data: bytes) -> None:
        """Only the paper-status query comes this way."""

    def _read(self) -> bytes:
        return bytes([ANSWERS[self.paper]])

    def close(self) -> None:
        """Nothing to close."""

"""Printing tickets on an ESC/POS thermal printer through python-escpos.

``TicketPrinter`` takes any python-escpos printer (``Serial``, ``Network`` on port 9100,
``Usb``, or ``Dummy`` for a file), prints the ticket laid out by ``display.ticket`` as one
raster image (``GS v 0``) and cuts. ``paper()`` asks the roll sensor (``DLE EOT 4``) between
jobs. Calls block; the kiosk program runs them on a thread.
"""

from __future__ import annotations

from typing import Any

from devices.codecs.escpos import STATUS_QUERY, paper_status
from display.ticket import WIDTH_80MM, TicketContent, render


class TicketPrinter:
    def __init__(self, printer: Any, width: int = WIDTH_80MM) -> None:
        self.printer = printer
        self.width = width

    def print_ticket(self, content: TicketContent) -> None:
        self.printer.image(render(content, self.width), center=False)
        self.printer.cut()

    def paper(self) -> str | None:
        """``ok``, ``low``, ``out``, or None when the printer does not answer."""
        self.printer._raw(STATUS_QUERY)     # python-escpos's way to send bytes as they are
        answer = self.printer._read()
        return paper_status(answer[0]) if answer else None

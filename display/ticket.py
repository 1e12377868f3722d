"""The printed ticket (排队小票), laid out with Pillow for a thermal printer.

Hall name, the number in large type, the service, people ahead and the estimated wait, the
time it was taken and a QR code to the ticket's status page. Nothing personal is printed.
The image is mode "1" at the printer's width (576 dots for 80 mm paper, 384 for 58 mm); it is
printed as a raster image, so any character prints, rare ones (生僻字) included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import qrcode
from PIL import Image, ImageDraw

from display.fonts import print_font

WIDTH_80MM, WIDTH_58MM = 576, 384


@dataclass(frozen=True)
class TicketContent:
    hall: str
    number: str
    service_name: str
    ahead: int
    est_wait_min: int | None
    issued_at: datetime
    status_url: str = ""

    @classmethod
    def from_reply(cls, hall: str, ticket: dict) -> "TicketContent":
        """From protocol v1's ``ticket`` reply object."""
        return cls(hall, ticket["number"], ticket.get("service_name") or ticket["service"],
                   int(ticket.get("ahead", 0)), ticket.get("est_wait_min"),
                   datetime.fromisoformat(ticket["issued_at"]), ticket.get("status_url", ""))


def render(t: TicketContent, width: int = WIDTH_80MM) -> Image.Image:
    scale = width / WIDTH_80MM
    rows: list[tuple[str, int]] = [
        (t.hall, 30), ("", 8), (t.number, 120), (t.service_name, 34), ("", 6),
        (f"您前面还有 {t.ahead} 人等候", 28),
        (f"预计等待约 {t.est_wait_min} 分钟" if t.est_wait_min is not None else "", 28),
        (t.issued_at.strftime("取号时间 %Y-%m-%d %H:%M"), 24),
    ]
    qr = _qr(t.status_url, int(220 * scale)) if t.status_url else None
    footer = [("扫码查看排队进度" if qr else "", 22), ("请留意叫号，过号请重新取号", 22)]
    fonts = {size: print_font(max(10, int(size * scale))) for _, size in rows + footer}
    height = sum(int(fonts[s].size) + 10 for _, s in rows + footer) + (qr.height + 20 if qr else 0) + 40
    image = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(image)
    y = 20

    def line(text: str, size: int) -> None:
        nonlocal y
        font = fonts[size]
        if text:
            left, _, right, _ = draw.textbbox((0, 0), text, font=font)
            draw.text(((width - (right - left)) // 2 - left, y), text, fill=0, font=font)
        y += int(font.size) + 10

    for text, size in rows:
        line(text, size)
    if qr is not None:
        y += 10
        image.paste(qr, ((width - qr.width) // 2, y))
        y += qr.height + 10
    for text, size in footer:
        line(text, size)
    return image


def _qr(url: str, size: int) -> Image.Image:
    code = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(url)
    img = code.make_image(fill_color="black", back_color="white").get_image().convert("1")
    return img.resize((size, size), Image.Resampling.NEAREST)

"""LED window screens that take pixels (图文卡): text rendered into the panel's own pixels.

A panel is ``width`` × ``height`` dots (16 or 32 high per line); each line of text is centred
in its band, and a line too long for the panel is cut at the last character that fits (the
ticket number comes first on every line, so it is never the part cut off). The result is a
Pillow mode "1" image: 1 = lit.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from display.fonts import pixel_font


def render(lines: list[str], width: int, line_height: int = 16) -> Image.Image:
    """``lines`` on a panel ``width`` dots wide and ``line_height`` × len(lines) high."""
    font = pixel_font(line_height)
    image = Image.new("1", (width, line_height * max(1, len(lines))), 0)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        text = fit(line, width, font)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = (width - (right - left)) // 2 - left
        y = i * line_height + (line_height - (bottom - top)) // 2 - top
        draw.text((x, y), text, fill=1, font=font)
    return image


def fit(text: str, width: int, font) -> str:  # noqa: ANN001
    while text and font.getlength(text) > width:
        text = text[:-1]
    return text


def to_ascii(image: Image.Image) -> str:
    """The panel as text (``#`` lit), for logs and test failures."""
    w, h = image.size
    px = image.load()
    assert px is not None  # None only for an image without pixel data
    return "\n".join("".join("#" if px[x, y] else "." for x in range(w)) for y in range(h))

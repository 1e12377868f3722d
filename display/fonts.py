"""The CJK fonts the hall's renderings use, from Debian's packages (installed by set-up):
``fonts-unifont`` draws crisp 16 px Chinese for LED panels; ``fonts-wqy-zenhei`` draws 32 px
panels and the printed ticket."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

UNIFONT = (Path("/usr/share/fonts/opentype/unifont/unifont.otf"),
           Path("/usr/share/fonts/truetype/unifont/unifont.ttf"))
ZENHEI = (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),)
#: faces inside wqy-zenhei.ttc
ZENHEI_PLAIN, ZENHEI_SHARP = 0, 2


class FontMissing(RuntimeError):
    """A font the rendering needs is not installed."""


def _first(paths: tuple[Path, ...], package: str) -> Path:
    for p in paths:
        if p.exists():
            return p
    raise FontMissing(f"font not found ({', '.join(map(str, paths))}): install Debian's {package}")


@lru_cache(maxsize=16)
def pixel_font(height: int) -> ImageFont.FreeTypeFont:
    """The font for an LED panel ``height`` pixels high (16: unifont; else zenhei sharp)."""
    if height <= 16:
        return ImageFont.truetype(str(_first(UNIFONT, "fonts-unifont")), 16)
    return ImageFont.truetype(str(_first(ZENHEI, "fonts-wqy-zenhei")), height,
                              index=ZENHEI_SHARP)


@lru_cache(maxsize=16)
def print_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_first(ZENHEI, "fonts-wqy-zenhei")), size, index=ZENHEI_PLAIN)

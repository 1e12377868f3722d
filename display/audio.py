"""Sound for the announcer: a chime, and speech from joined clips or espeak-ng, as WAV.

Engines turn a call's tokens (``display.voice.tokens``) into 16-bit mono PCM:

- ``ClipEngine``: one WAV clip per syllable in a folder (recorded, or made once with
  ``make_clips`` from espeak-ng), joined with the ``wave`` module — offline and steady;
- ``EspeakEngine``: espeak-ng's Mandarin voice (``cmn``) reading the whole sentence;
- ``ChimeEngine``: the chime alone, for halls that only want a sound with the screen.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import wave
from functools import lru_cache
from pathlib import Path

RATE = 22050


class AudioError(RuntimeError):
    """Speech could not be made (a clip missing, espeak-ng not installed …)."""


def tone(freq: float, seconds: float, rate: int = RATE, volume: float = 0.4) -> bytes:
    n = int(seconds * rate)
    return b"".join(struct.pack("<h", int(32767 * volume * math.exp(-3 * i / n)
                                          * math.sin(2 * math.pi * freq * i / rate)))
                    for i in range(n))


def silence(seconds: float, rate: int = RATE) -> bytes:
    return b"\x00\x00" * int(seconds * rate)


@lru_cache(maxsize=4)
def chime(rate: int = RATE) -> bytes:
    """Ding-dong (E6 then C6), about 0.9 s; made once per rate."""
    return tone(1318.5, 0.45, rate) + tone(1046.5, 0.45, rate)


def wav_bytes(pcm: bytes, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def read_pcm(data: bytes | Path, rate: int = RATE) -> bytes:
    """16-bit mono PCM from a WAV at ``rate``; anything else is an ``AudioError``."""
    try:
        with wave.open(io.BytesIO(data) if isinstance(data, bytes) else str(data), "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, rate):
                raise AudioError(f"need mono 16-bit {rate} Hz, got {w.getnchannels()} channels, "
                                 f"{8 * w.getsampwidth()}-bit, {w.getframerate()} Hz")
            return w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"not a WAV file: {exc}") from None


class ChimeEngine:
    rate = RATE

    def speech(self, tokens: list[str]) -> bytes:
        return b""


class ClipEngine:
    """``folder/{token}.wav`` for every token said; a short gap between syllables."""

    rate = RATE

    def __init__(self, folder: str | Path, gap_s: float = 0.04) -> None:
        self.folder = Path(folder)
        self.gap = silence(gap_s)
        self._cache: dict[str, bytes] = {}

    def speech(self, tokens: list[str]) -> bytes:
        return self.gap.join(self._clip(t) for t in tokens)

    def _clip(self, token: str) -> bytes:
        if token not in self._cache:
            path = self.folder / f"{token}.wav"
            if not path.exists():
                raise AudioError(f"no clip for {token!r} in {self.folder}")
            self._cache[token] = read_pcm(path, self.rate)
        return self._cache[token]


class EspeakEngine:
    rate = RATE

    def __init__(self, voice: str = "cmn", speed: int = 150) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise AudioError("espeak-ng is not installed (Debian package espeak-ng)")
        self.binary: str = binary
        self.voice, self.speed = voice, speed

    def speech(self, tokens: list[str]) -> bytes:
        return self.say("".join(tokens))

    def say(self, text: str) -> bytes:
        out = subprocess.run([self.binary, "-v", self.voice, "-s", str(self.speed), "--stdout",
                              text], capture_output=True, check=False, timeout=30)
        if out.returncode != 0:
            raise AudioError(f"espeak-ng failed: {out.stderr.decode(errors='replace')[:200]}")
        return read_pcm(out.stdout, self.rate)


def announcement(engine, tokens: list[str], repeat: int = 2, with_chime: bool = True) -> bytes:  # noqa: ANN001
    """The whole of one call as PCM: the chime, then the sentence ``repeat`` times."""
    speech = engine.speech(tokens)
    parts = [chime(engine.rate)] if with_chime else []
    for _ in range(repeat if speech else 0):
        parts += [silence(0.3, engine.rate), speech]
    return b"".join(parts) + silence(0.5, engine.rate)


#: every syllable a call can need
SYLLABLES = ["请", "号", "到", "窗", "口", "办", "理", "十", "百", "千", *"零一二三四五六七八九",
             *"ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def make_clips(folder: str | Path, engine: EspeakEngine | None = None) -> list[Path]:
    """Pre-synthesise one clip per syllable with espeak-ng, for ``ClipEngine``."""
    engine = engine or EspeakEngine()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for s in SYLLABLES:
        path = folder / f"{s}.wav"
        path.write_bytes(wav_bytes(_trim(engine.say(s)), engine.rate))
        made.append(path)
    return made


def _trim(pcm: bytes, threshold: int = 500) -> bytes:
    """Leading and trailing silence off a clip."""
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    loud = [i for i, v in enumerate(samples) if abs(v) > threshold]
    return pcm[loud[0] * 2:(loud[-1] + 1) * 2] if loud else pcm

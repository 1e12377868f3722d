"""``yimen announcer``: the hall's voice, a protocol v1 ``announcer`` that is heard.

Each call (and recall) is a chime and the sentence twice; ``say`` commands are said as they
come. Announcements queue and never overlap (``devices.simulators.Announcer`` keeps the
order). Sound is made on a thread (``display.audio``: joined clips, espeak-ng or the chime
alone) and goes to WAV files in a folder, to the sound card through ``aplay``, or both.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from devices.simulators import Announcement, Announcer
from display import audio, voice

log = logging.getLogger("yimen.announcer")


def engine_for(name: str, clips: str | None = None) -> Any:
    if name == "clips":
        if not clips:
            raise audio.AudioError("the clips engine needs a folder of clips (--clips DIR)")
        return audio.ClipEngine(clips)
    if name == "espeak":
        return audio.EspeakEngine()
    if name == "chime":
        return audio.ChimeEngine()
    raise audio.AudioError(f"unknown engine {name!r}: clips, espeak or chime")


class VoiceAnnouncer(Announcer):
    def __init__(self, *args: Any, engine: Any, out: str | Path | None = None,
                 play: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine = engine
        self.out = Path(out) if out else None
        self.play = play
        self.files: list[Path] = []
        self._count = 0
        if play and shutil.which("aplay") is None:
            raise audio.AudioError("aplay is not installed (Debian package alsa-utils)")
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)

    async def announce(self, item: Announcement) -> None:
        wav = await asyncio.to_thread(self._render, item)
        self._count += 1
        if self.out is not None:
            path = self.out / f"{self._count:05d}.wav"
            await asyncio.to_thread(path.write_bytes, wav)
            self.files.append(path)
        if self.play:
            proc = await asyncio.create_subprocess_exec("aplay", "-q", "-",
                                                        stdin=asyncio.subprocess.PIPE)
            await proc.communicate(wav)         # the next waits until this one is over
        log.info("%s: %s (×%d)", self.id, item.text, item.times)

    def _render(self, item: Announcement) -> bytes:
        if item.ticket and item.window:
            tokens = voice.tokens(item.ticket, item.window)
            pcm = audio.announcement(self.engine, tokens, item.times)
        elif isinstance(self.engine, audio.EspeakEngine):
            speech = self.engine.say(item.text)
            pcm = b"".join(audio.silence(0.3) + speech for _ in range(item.times))
        else:
            pcm = audio.announcement(self.engine, list(item.text), item.times, with_chime=False)
        return audio.wav_bytes(pcm, self.engine.rate)

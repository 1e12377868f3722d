"""The hall's voice: the sentence for tricky numbers, no overlap under a burst, WAV files that
``wave`` (and sox) can read."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import wave

import pytest

from devices.announcer import VoiceAnnouncer, engine_for
from display import audio, voice
from protocol.link import BrokerAddress
from tests.bushelp import REQUIRED


@pytest.mark.parametrize(("number", "window", "said"), [
    ("A000", "1", "请A零零零号到一号窗口办理"),
    ("A010", "10", "请A零一零号到十号窗口办理"),
    ("A012", "12", "请A零一二号到十二号窗口办理"),
    ("B100", "20", "请B一零零号到二十号窗口办理"),
    ("C007", "21", "请C零零七号到二十一号窗口办理"),
    ("A999", "100", "请A九九九号到一百号窗口办理"),
    ("A001", "105", "请A零零一号到一百零五号窗口办理"),
])
def test_the_sentence_reads_the_ticket_digit_by_digit_and_the_window_as_a_number(number, window, said):
    assert voice.spoken(voice.tokens(number, window)) == said


def make_test_clips(folder) -> None:  # noqa: ANN001
    """A short tone per syllable stands in for a recording."""
    folder.mkdir()
    for i, s in enumerate(audio.SYLLABLES):
        (folder / f"{s}.wav").write_bytes(audio.wav_bytes(audio.tone(300 + 10 * i, 0.2)))


def seconds(path) -> float:  # noqa: ANN001
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getnframes() / w.getframerate()


def announcer(tmp_path, engine) -> VoiceAnnouncer:  # noqa: ANN001
    # not connected: calls are handed to it as the bus would
    return VoiceAnnouncer("t", "announcer-1", BrokerAddress("127.0.0.1", 1), None,
                          engine=engine, out=tmp_path / "out")


async def test_a_burst_of_20_calls_is_said_in_order_one_at_a_time(tmp_path):
    make_test_clips(tmp_path / "clips")
    device = announcer(tmp_path, engine_for("clips", str(tmp_path / "clips")))
    speaker = asyncio.create_task(device._speak_forever())
    try:
        for i in range(1, 21):
            await device.on_call({"text": f"请A{i:03d}号到{i}号窗口办理", "ticket": f"A{i:03d}",
                                  "window": str(i)})
        await device.on_call({"text": "请A003号到3号窗口办理", "ticket": "A003", "window": "3",
                              "recall": True})                      # a recall: said in full again
        await device.wait_until(lambda: len(device.files) == 21, 30)
    finally:
        speaker.cancel()
    assert device.max_speaking == 1
    assert device.spoken == [f"请A{i:03d}号到{i}号窗口办理" for i in range(1, 21)
                             for _ in range(2)] + ["请A003号到3号窗口办理"] * 2
    # chime 0.9 s, then twice: 0.3 s pause + 11–13 syllables of 0.2 s with 0.04 s gaps; 0.5 s
    for i, path in enumerate(device.files, start=1):
        n = len(voice.tokens(f"A{i:03d}" if i <= 20 else "A003", str(i if i <= 20 else 3)))
        expected = 0.9 + 2 * (0.3 + n * 0.2 + (n - 1) * 0.04) + 0.5
        assert seconds(path) == pytest.approx(expected, abs=0.01)
    assert device.files[2].read_bytes() == device.files[20].read_bytes()   # A003 recalled


async def test_espeak_engine_writes_a_wav_that_sox_reads(tmp_path):
    if shutil.which("espeak-ng") is None:
        if REQUIRED:
            pytest.fail("espeak-ng is required here (YIMEN_REQUIRE_SERVICES) but not installed")
        pytest.skip("espeak-ng is not installed (scripts/setup installs it)")
    device = announcer(tmp_path, engine_for("espeak"))
    await device.announce(device_item("A012", "3"))
    [path] = device.files
    assert seconds(path) > 2.0
    if shutil.which("soxi"):
        out = subprocess.run(["soxi", "-r", str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == str(audio.RATE)


def device_item(ticket: str, window: str):  # noqa: ANN201
    from devices.simulators import Announcement

    return Announcement(voice.spoken(voice.tokens(ticket, window)), 2, ticket, window)


def test_a_missing_clip_or_engine_is_a_clear_error(tmp_path):
    with pytest.raises(audio.AudioError, match="no clip for"):
        audio.ClipEngine(tmp_path).speech(["请"])
    with pytest.raises(audio.AudioError, match="unknown engine"):
        engine_for("festival")
    (tmp_path / "请.wav").write_bytes(b"not a wav")
    with pytest.raises(audio.AudioError, match="not a WAV"):
        audio.ClipEngine(tmp_path).speech(["请"])

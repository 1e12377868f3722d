"""Serial codecs: documented frames byte for byte, round trips, and noise that changes nothing."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.bus.idcards import IdCards
from devices.codecs import escpos, ff68, onbon, sam, ybus
from devices.codecs.crc import crc16_arc, crc16_modbus
from protocol.idseal import sealer


# ------------------------------------------------------------------------------ fixtures
def test_crc_check_values_from_the_crc_catalogue():
    assert crc16_modbus(b"123456789") == 0x4B37
    assert crc16_arc(b"123456789") == 0xBB3D


def test_ff68_readout_and_beep_bytes():
    # 7 waiting, ticket 12, keypad 1: L = 8 (addr, cmd, six digits), CS = 1+2+7+1+2 = 0x0D
    assert ff68.readout(1, 7, 12).encode() == bytes.fromhex("ff 68 08 08 68 01 02 00 00 07 00 01 02 0d 16")
    assert ff68.readout(2, None, 5).encode() == bytes.fromhex("ff 68 08 08 68 02 02 0a 0a 0a 00 00 05 27 16")
    assert ff68.beep(3).encode() == bytes.fromhex("ff 68 02 02 68 03 03 06 16")


@pytest.mark.parametrize(("hexframe", "key"), [
    ("ff 68 03 03 68 03 01 0c 10 16", "next"),
    ("ff 68 03 03 68 03 01 0d 11 16", "recall"),
    ("ff 68 03 03 68 03 01 0b 0f 16", "evaluate"),
    ("ff 68 03 03 68 03 01 12 16 16", "pause"),
    ("ff 68 04 04 68 03 01 06 0f 19 16", "no_show"),
    ("ff 68 04 04 68 03 01 00 0f 13 16", "hold"),
    ("ff 68 04 04 68 03 01 03 0f 16 16", "call_back"),
    ("ff 68 03 03 68 03 01 7e 82 16", "key:7e"),
])
def test_ff68_keys(hexframe, key):
    frames = ff68.Decoder().feed(bytes.fromhex(hexframe))
    assert [ff68.message(f).key for f in frames] == [key]
    assert frames[0].encode() == bytes.fromhex(hexframe)        # the echo that acknowledges it


def test_ff68_evaluator_key_index():
    [frame] = ff68.Decoder().feed(bytes.fromhex("ff 68 03 03 68 05 11 02 18 16"))
    assert ff68.message(frame) == ff68.Rating(5, 2, frame)


def test_ybus_poll_and_event_bytes():
    poll = ybus.Frame(1, 0, ybus.POLL).encode()
    crc = crc16_modbus(bytes([1, 0, 1, 0])).to_bytes(2, "little")
    assert poll == bytes.fromhex("aa 55 01 00 01 00") + crc
    [back] = ybus.Decoder().feed(poll)
    assert back == ybus.Frame(1, 0, ybus.POLL)


def test_sam_documented_requests_and_answers():
    assert sam.request(sam.FIND) == bytes.fromhex("aa aa aa 96 69 00 03 20 01 22")
    assert sam.request(sam.SELECT) == bytes.fromhex("aa aa aa 96 69 00 03 20 02 21")
    assert sam.request(sam.READ) == bytes.fromhex("aa aa aa 96 69 00 03 30 01 32")
    assert sam.response(sam.NO_CARD) == bytes.fromhex("aa aa aa 96 69 00 04 00 00 80 84")
    assert sam.Decoder().feed(bytes.fromhex("aa aa aa 96 69 00 08 00 00 9f 00 00 00 00 97")) \
        == [bytes.fromhex("00 00 9f 00 00 00 00")]


def test_onbon_stuffing_of_its_four_special_bytes():
    assert onbon.stuff(b"\xa5\xa6\x5a\x5b\x00") == bytes.fromhex("a6 02 a6 01 5b 02 5b 01 00")
    assert onbon.unstuff(bytes.fromhex("a6 02 a6 01 5b 02 5b 01 00")) == b"\xa5\xa6\x5a\x5b\x00"
    frame = onbon.area_text(1, "A012 请到3号窗口").encode()
    assert frame.startswith(b"\xa5" * 8) and frame.endswith(b"\x5a")
    assert b"\xa5" not in frame[8:] and b"\x5a" not in frame[:-1]


def test_escpos_paper_status_bytes():
    assert [escpos.paper_status(b) for b in (0x12, 0x1E, 0x72, 0x7E)] == ["ok", "low", "out", "out"]
    assert escpos.paper_status(0x00) is None and escpos.paper_status(0x93) is None


def test_id_card_leaves_the_number_only_sealed_an_age_class_and_masked_forms():
    """The box holds only the hall server's public key: the number leaves the driver sealed
    to it, which only the server opens (and makes the token of)."""
    hall = IdCards(b"s" * 32, "demo")
    text = sam.card_text("张小三", "1", "01", date(1960, 3, 1), "北京市东城区", "11010119600301123x")
    card = sam.parse_base_info(sam.base_info(text), date(2026, 11, 22), sealer(hall.public_key, "demo"))
    assert card.age_class == "senior" and hall.unseal(card.id_sealed) == "11010119600301123X"
    assert "11010119600301123" not in card.id_sealed
    assert card.masked_id == "1101**********123X" and card.masked_name == "张*三"
    assert "11010119600301123" not in repr(card) and "11010119600301123" not in str(card)
    young = sam.card_text("李四", "1", "01", date(1967, 11, 23), "x", "110101196711231234")
    assert sam.parse_base_info(sam.base_info(young), date(2026, 11, 22), str).age_class == "adult"


def test_id_card_that_is_not_a_card_is_refused():
    with pytest.raises(sam.CardError):
        sam.parse_base_info(sam.base_info(b"\x00" * 256), date(2026, 11, 22), str)
    with pytest.raises(sam.CardError):
        sam.parse_base_info(b"\x01", date(2026, 11, 22), str)


# ---------------------------------------------------------------------------- round trips
byte = st.integers(0, 255)


@given(addr=byte, cmd=byte.filter(lambda c: c not in (2, 3)), data=st.binary(max_size=60))
def test_ff68_round_trip(addr, cmd, data):
    frame = ff68.Frame(addr, cmd, data)
    assert ff68.Decoder().feed(frame.encode()) == [frame]


@given(addr=byte, seq=byte, cmd=byte, data=st.binary(max_size=ybus.MAX_DATA))
def test_ybus_round_trip(addr, seq, cmd, data):
    frame = ybus.Frame(addr, seq, cmd, data)
    assert ybus.Decoder().feed(frame.encode()) == [frame]


@given(dst=st.integers(0, 0xFFFF), text=st.text(alphabet=st.sampled_from("A0123456789请到号窗口办理暂停 "),
                                               max_size=40), area=byte)
def test_onbon_round_trip(dst, text, area):
    frames = onbon.Decoder().feed(onbon.area_text(dst, text, area).encode())
    assert [onbon.message(f) for f in frames] == [onbon.AreaText(dst, area, text)]


@given(payload=st.binary(min_size=1, max_size=300))
def test_sam_round_trip(payload):
    assert sam.Decoder().feed(sam.frame(payload)) == [payload]


# -------------------------------------------------------------------- noise and truncation
DECODERS = {"ff68": ff68.Decoder, "ybus": ybus.Decoder, "onbon": onbon.Decoder,
            "sam": sam.Decoder}


def _frames(codec: str, data: bytes) -> list:
    return DECODERS[codec]().feed(data)


GOOD = {
    "ff68": ff68.readout(1, 7, 12).encode(),
    "ybus": ybus.Frame(4, 9, ybus.EVENT, b"\x01\x01").encode(),
    "onbon": onbon.area_text(1, "A012").encode(),
    "sam": sam.response(sam.OK, b"\x01\x02"),
}


@pytest.mark.parametrize("codec", sorted(GOOD))
@settings(max_examples=300)
@given(noise=st.binary(max_size=200), cut=st.integers(0, 1000))
def test_decoders_survive_noise_and_wait_for_a_truncated_frame(codec, noise, cut):
    """Fuzz: any bytes decode without an exception; a good frame after noise is still found
    (when the noise does not itself end in a frame's beginning); split anywhere, it comes out
    once, whole."""
    DECODERS[codec]().feed(noise)                         # must not raise
    good = GOOD[codec]
    fresh = DECODERS[codec]()
    at = cut % (len(good) + 1)
    first = fresh.feed(good[:at])
    second = fresh.feed(good[at:])
    assert first == [] if at < len(good) else len(first) == 1
    assert len(first) + len(second) == 1
    # between frames, noise that cannot start a frame changes nothing
    clean = bytes(b for b in noise if b not in (0xFF, 0xAA, 0xA5, 0x5A, 0xA6, 0x5B))
    mixed = _frames(codec, clean + good + clean + good)
    assert len(mixed) == 2 and mixed[0] == mixed[1]


@pytest.mark.parametrize("codec", sorted(GOOD))
def test_a_corrupted_frame_is_counted_and_dropped(codec):
    bad = bytearray(GOOD[codec])
    bad[-3] ^= 0x40                             # inside the body or the check bytes
    decoder = DECODERS[codec]()
    assert decoder.feed(bytes(bad) + GOOD[codec]) != []
    assert decoder.stream.bad_frames >= 1 and decoder.stream.frames == 1

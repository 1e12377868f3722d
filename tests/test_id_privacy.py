"""A citizen's ID number and phone number at the doors. A card reader's ID number crosses MQTT
only sealed to the hall server's public key (``protocol.idseal``); only the hall server opens
it, makes the hall's token with a key only it has, and stores and logs the number nowhere. A
value that cannot be opened (garbage, altered, sealed to another hall's key or for another
hall, holding no ID number) is refused and changes nothing; an ID number sent as a token, a
raw ``id_number`` or a whole phone number is refused with a clear message, with nothing
stored."""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.bus.credentials import id_token_key
from controller.bus.idcards import UNREADABLE, IdCards, id_token
from controller.core.commands import BadArguments, Take, decode
from controller.server import create_app
from devices.simulators import Refusal
from protocol import idseal
from tests.bushelp import devices, hall_server, open_broker, unique
from tests.helpers import bearer, demo_config

NUMBER = "11010119900307777X"
OTHER = "110101200001011236"            # sent raw (as a token, as id_number), to be refused
KEY = b"k" * 32
HALL = IdCards(KEY, "demo")
ELSEWHERE = IdCards(b"another hall's secret", "demo")
ID_NUMBERS = st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True)


@pytest.mark.parametrize(("fields", "message"), [
    ({"id_token": NUMBER}, "身份证号不能作为令牌（id_token）发送"),
    ({"id_token": NUMBER.lower()}, "身份证号不能作为令牌（id_token）发送"),
    ({"id_token": "110101199003077777"}, "身份证号不能作为令牌（id_token）发送"),
    ({"id_token": "tok1"}, "指令参数有误"),
    ({"phone_tail": "13800138000"}, "只接受手机号的后四位"),
    ({"phone_tail": "+8613800138000"}, "只接受手机号的后四位"),
    ({"phone_tail": "12345"}, "只接受手机号的后四位"),
    ({"phone_tail": "123"}, "指令参数有误"),
])
def test_an_id_number_as_a_token_or_a_whole_phone_number_is_refused(fields, message):
    with pytest.raises(BadArguments) as info:
        decode(Take, {"service": "A", **fields})
    said = info.value.as_dict()
    assert said["message"] == message and not info.value.missing
    value = next(iter(fields.values()))
    assert value not in str(said) and value.lower() not in str(said)      # not repeated back


def unreadable(ids: IdCards, value: object) -> dict:
    """``value`` as a take's ``id_sealed`` is refused, saying so without repeating it."""
    with pytest.raises(BadArguments) as info:
        ids.with_token({"service": "A", "id_sealed": value})
    said = info.value.as_dict()
    assert said["message"] == UNREADABLE and not info.value.missing
    assert str(value) not in str(said) and NUMBER[:17] not in str(said)
    return said


def tampered(sealed: str) -> str:
    """``sealed`` with one character of its ciphertext changed (still URL-safe base64)."""
    at = len(sealed) - 30
    return sealed[:at] + ("A" if sealed[at] != "A" else "B") + sealed[at + 1:]


def test_a_sealed_number_becomes_the_halls_token_and_goes_no_further():
    sealed = idseal.seal(HALL.public_key, NUMBER.lower(), "demo")
    assert sealed.startswith("v1.") and len(sealed) == 91 and NUMBER[:17] not in sealed
    assert idseal.seal(HALL.public_key, NUMBER, "demo") != sealed               # a new key each time
    fields = HALL.with_token({"service": "A", "id_sealed": sealed})
    assert fields == {"service": "A", "id_token": id_token(KEY, NUMBER)}        # the same token
    assert decode(Take, fields).id_token == id_token(KEY, NUMBER)
    assert HALL.with_token({"service": "A", "id_sealed": ""}) == {"service": "A"}
    assert ELSEWHERE.public_key != HALL.public_key and id_token(b"another", NUMBER) != id_token(KEY, NUMBER)
    assert KEY.decode() not in repr(HALL) and HALL.public_key in repr(HALL)


@pytest.mark.parametrize("value", [
    "v1.garbage", "v1.", "v2." + "A" * 88, "A" * 91, "v1." + "A" * 88, "v1." + "A" * 87 + "=",
    "v1." + "A" * 300, "v1.AAAA\ud800", 12, ["v1."], {"sealed": 1}, "11010119900307777X",
])
def test_garbage_in_id_sealed_is_refused(value):
    unreadable(HALL, value)


def test_a_value_altered_or_sealed_to_another_key_or_hall_or_holding_no_id_is_refused():
    sealed = idseal.seal(HALL.public_key, NUMBER, "demo")
    unreadable(HALL, tampered(sealed))
    unreadable(HALL, sealed[:-2])                                           # cut short
    unreadable(HALL, idseal.seal(ELSEWHERE.public_key, NUMBER, "demo"))     # another hall's key
    unreadable(IdCards(KEY, "elsewhere"), sealed)                           # for another hall
    said = unreadable(HALL, idseal.seal(HALL.public_key, "not an ID number", "demo"))
    assert "does not hold an ID number" in said["message_en"]
    unreadable(HALL, idseal.seal(HALL.public_key, NUMBER + "1", "demo"))
    with pytest.raises(BadArguments) as both:
        HALL.with_token({"service": "A", "id_sealed": sealed, "id_token": "a" * 32})
    assert both.value.message == "身份证信息和令牌只能发送其一"
    with pytest.raises(ValueError, match="x25519"):
        idseal.seal("x25519:short", NUMBER, "demo")                         # a box's broken key


@settings(max_examples=50, deadline=None)
@given(number=ID_NUMBERS, hall=st.from_regex(r"[a-z0-9][a-z0-9-]{0,31}", fullmatch=True))
def test_seal_and_unseal_round_trip(number, hall):
    ids = IdCards(KEY, hall)
    sealed = idseal.seal(ids.public_key, number, hall)
    assert ids.unseal(sealed) == number.upper() and number[:17] not in sealed
    assert ids.token(sealed) == id_token(KEY, number)


@settings(max_examples=100, deadline=None)
@given(number=ID_NUMBERS, data=st.data())
def test_any_change_to_a_sealed_value_is_detected(number, data):
    sealed = idseal.seal(HALL.public_key, number, "demo")
    raw = bytearray(idseal.unb64(sealed[3:]))
    at = data.draw(st.integers(0, len(raw) - 1), "byte")
    raw[at] ^= data.draw(st.integers(1, 255), "flip")
    unreadable(HALL, "v1." + idseal.b64(bytes(raw)))
    where = data.draw(st.integers(0, len(sealed) - 1), "character")
    other = data.draw(st.sampled_from("AQgw-_09azXYv.=+/ "), "for")
    if other != sealed[where]:
        unreadable(HALL, sealed[:where] + other + sealed[where + 1:])
    cut = data.draw(st.integers(1, len(sealed) - 1), "cut")
    unreadable(HALL, sealed[:cut])


async def test_the_http_door_refuses_them_and_stores_nothing(tmp_path, clock):
    config = demo_config()
    app = create_app(config, tmp_path, clock=clock, bus=False)
    sealed = idseal.seal(IdCards(id_token_key(tmp_path), config.hall.id).public_key, NUMBER, config.hall.id)
    async with TestClient(TestServer(app), headers=await bearer(config, tmp_path)) as client:
        for body in ({"service": "A", "id_token": NUMBER}, {"service": "A", "phone_tail": "13800138000"},
                     {"service": "A", "id_number": NUMBER},         # ID cards reach MQTT's door only
                     {"service": "A", "id_sealed": sealed}):
            r = await client.post("/api/tickets", json=body)
            said = await r.json()
            assert r.status == 400 and said["error"]["code"] == "bad_arguments", said
            assert NUMBER not in str(said) and "13800138000" not in str(said) and sealed not in str(said)
        assert (await (await client.get("/api/tickets")).json())["tickets"] == []


@pytest.mark.slow                               # a hall server and a broker
async def test_the_mqtt_door_opens_sealed_numbers_and_refuses_the_rest(tmp_path, clock, caplog):
    caplog.set_level(logging.DEBUG)
    config = unique(demo_config())
    hall = config.hall.id
    async with open_broker("own", config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ["kiosk-1", "kiosk-2"]) as dev:
        seen: list[bytes] = []                  # every message as the controller receives it
        heard = server.bus.link.on_message
        assert heard is not None
        server.bus.link.on_message = lambda topic, payload: (seen.append(payload), heard(topic, payload))[1]
        key = server.bus.id_public_key
        assert key == IdCards(id_token_key(tmp_path / "data"), hall).public_key
        first, second = dev["kiosk-1"], dev["kiosk-2"]
        first.seal = second.seal = idseal.sealer(key, hall)
        ticket = await first.take("A", id_card=NUMBER, priority="green")
        stored = (await server.engine.settled()).ticket(ticket["number"])
        assert stored.id_token == id_token(id_token_key(tmp_path / "data"), NUMBER)
        with pytest.raises(Refusal) as again:                # the same card at another kiosk
            await second.take("A", id_card=NUMBER.lower())
        assert again.value.code == "already_waiting"
        sealed = idseal.seal(key, NUMBER, hall)
        refusals = [({"id_token": OTHER}, "身份证号不能作为令牌（id_token）发送"),
                    ({"phone_tail": "13800138000"}, "只接受手机号的后四位"),
                    ({"id_number": OTHER}, "身份证号不能明文发送"),
                    ({"id_sealed": "v1.garbage"}, UNREADABLE),
                    ({"id_sealed": tampered(sealed)}, UNREADABLE),
                    ({"id_sealed": idseal.seal(ELSEWHERE.public_key, NUMBER, hall)}, UNREADABLE),
                    ({"id_sealed": idseal.seal(key, NUMBER, "another-hall")}, UNREADABLE),
                    ({"id_sealed": idseal.seal(key, "12345", hall)}, UNREADABLE),
                    ({"id_sealed": sealed, "id_token": "a" * 32}, "身份证信息和令牌只能发送其一")]
        for fields, message in refusals:
            with pytest.raises(Refusal) as info:
                await first.take("B", **fields)
            assert (info.value.code, info.value.message) == ("bad_field", message)
            assert all(str(v) not in str(info.value.reply) for v in fields.values())
        assert len((await server.engine.settled()).queue.all) == 1
        assert server.bus.errors["bad_field"] == len(refusals)
        takes = [p for p in seen if b'"take"' in p]
        assert len(takes) == 2 + len(refusals) and sum(b'"id_sealed":"v1.' in p for p in takes) >= 2
        assert not any(NUMBER[:17].encode() in p for p in seen)     # never in clear on MQTT
        ticket_b = await first.take("B")                           # the door still works
        assert ticket_b["number"].startswith("B")
    for path in tmp_path.rglob("*"):            # the data folder and the broker's files
        if path.is_file():
            data = path.read_bytes()
            assert NUMBER[:17].encode() not in data and OTHER.encode() not in data, path
            assert b"13800138000" not in data, path
    assert NUMBER[:17] not in caplog.text and OTHER not in caplog.text
    assert "13800138000" not in caplog.text

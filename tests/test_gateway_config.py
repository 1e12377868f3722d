"""The gateway's file: the example loads; a broken one is refused with the key that is wrong;
it holds its own devices' passwords and no secret of the hall's."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from controller.config import ConfigError
from devices.gateway_config import load, parse
from tests.test_cli import yimen

EXAMPLE = Path(__file__).resolve().parent.parent / "controller" / "halls" / "gateway-example.toml"


def test_the_example_gateway_file_loads():
    config = load(EXAMPLE)
    assert [b.protocol for b in config.buses] == ["ff68", "onbon", "ybus"]
    assert config.buses[2].baud == 115200 and config.buses[0].baud == 9600
    assert config.gpio[0].buttons[1].arg == "B"
    assert config.readers[0].kiosk == config.printers[0].kiosk == "kiosk-2"
    assert config.readers[0].baud == 115200 and config.printers[0].width == 576
    assert sorted(config.passwords) == sorted(config.device_ids)           # one per device
    assert "paste-the-password" not in repr(config)                        # never shown
    assert config.id_public_key.startswith("x25519:")                      # seals ID numbers


def bus(**over) -> dict:  # noqa: ANN003
    b = {"port": "/dev/null", "protocol": "ff68",
         "devices": [{"id": "caller-w01", "kind": "caller", "addr": 1}]}
    return {"hall": "demo", "bus": [{**b, **over}],
            "devices": {d["id"]: {"password": "pw-" + d["id"]} for d in over.get("devices", b["devices"])
                        if isinstance(d.get("id"), str) and d["id"].islower()}}


@pytest.mark.parametrize(("raw", "key"), [
    (bus(protocol="modbus"), "bus[0].protocol"),
    (bus(devices=[{"id": "led-w01", "kind": "window_display", "addr": 1}]), "bus[0].devices[0].kind"),
    (bus(devices=[{"id": "a", "kind": "caller", "addr": 1}, {"id": "b", "kind": "caller", "addr": 1}]),
     "bus[0].devices[1].addr"),
    (bus(devices=[{"id": "Caller 1", "kind": "caller", "addr": 1}]), "bus[0].devices[0].id"),
    (bus(devices=[{"id": "a", "kind": "caller", "addr": 300}]), "bus[0].devices[0].addr"),
    (bus(baud="fast"), "bus[0].baud"),
    (bus(devices=[]), "bus[0].devices"),
    ({"hall": "demo"}, "bus"),
    ({**bus(), "secret": "s"}, "secret"),                      # no hall-wide secret any more
    ({**bus(), "devices": {}}, "devices.caller-w01.password"),  # each device needs its own
    ({**bus(), "devices": {"caller-w01": {"password": ""}}}, "devices.caller-w01.password"),
    ({**bus(), "devices": {"caller-w01": {"password": "p"}, "led-w09": {"password": "p"}}},
     "devices.led-w09"),
    ({**bus(), "reader": [{"port": "/dev/null", "kiosk": "caller-w01"}]}, "reader[0].kiosk"),
    ({**bus(), "hall": ""}, "hall"),
    ({**bus(), "id_public_key": "x25519:short"}, "id_public_key"),    # the hall server's public key
    ({**bus(), "id_public_key": "a" * 43}, "id_public_key"),
    ({**bus(), "id_public_key": 7}, "id_public_key"),
])
def test_a_broken_gateway_file_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=rf"<gateway>: {re.escape(key)}:"):
        parse(raw)


def test_yimen_gateway_with_a_broken_file_says_why_and_exits_2(tmp_path):
    bad = tmp_path / "gw.toml"
    bad.write_text('hall = "demo"\n[[bus]]\nport = "/dev/null"\nprotocol = "x"\n',
                   encoding="utf-8")
    r = yimen("gateway", "--config", str(bad))
    assert r.returncode == 2 and "bus[0].protocol" in r.stderr


def test_the_old_shared_secret_is_refused_with_what_to_do_instead():
    with pytest.raises(ConfigError) as info:
        parse({**bus(), "secret": "change-me"})
    assert "yimen device credentials" in str(info.value) and "不再使用全厅共享" in str(info.value)


def test_inside_the_server_missing_passwords_are_allowed():
    config = parse({**bus(), "devices": {}}, passwords_needed=False)
    assert config.passwords == {} and config.device_ids == ["caller-w01"]


def test_readers_without_the_halls_public_key_say_so_and_read_no_cards(caplog):
    """The readers seal ID numbers to the hall server's public key: without it they read no
    cards, and the gateway says so at start; a gateway inside the server is handed it."""
    from controller.bus.idcards import IdCards
    from devices.gateway import Gateway

    raw = {**bus(protocol="ybus", devices=[{"id": "kiosk-1", "kind": "kiosk", "addr": 1}]),
           "reader": [{"port": "/dev/ttyUSB3", "kiosk": "kiosk-1"}]}
    caplog.set_level(logging.WARNING)
    assert Gateway(parse(raw)).readers == []
    assert "kiosk-1" in caplog.text and "id_public_key" in caplog.text and "reads no cards" in caplog.text
    key = IdCards(b"s" * 32, "demo").public_key
    assert len(Gateway(parse(raw), id_public_key=key).readers) == 1
    assert len(Gateway(parse({**raw, "id_public_key": key})).readers) == 1

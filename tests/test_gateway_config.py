"""The gateway's file: the example loads; a broken one is refused with the key that is wrong."""

from __future__ import annotations

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


def bus(**over) -> dict:  # noqa: ANN003
    b = {"port": "/dev/null", "protocol": "ff68",
         "devices": [{"id": "caller-w01", "kind": "caller", "addr": 1}]}
    return {"hall": "demo", "secret": "s", "bus": [{**b, **over}]}


@pytest.mark.parametrize(("raw", "key"), [
    (bus(protocol="modbus"), "bus[0].protocol"),
    (bus(devices=[{"id": "led-w01", "kind": "window_display", "addr": 1}]), "bus[0].devices[0].kind"),
    (bus(devices=[{"id": "a", "kind": "caller", "addr": 1}, {"id": "b", "kind": "caller", "addr": 1}]),
     "bus[0].devices[1].addr"),
    (bus(devices=[{"id": "Caller 1", "kind": "caller", "addr": 1}]), "bus[0].devices[0].id"),
    (bus(devices=[{"id": "a", "kind": "caller", "addr": 300}]), "bus[0].devices[0].addr"),
    (bus(baud="fast"), "bus[0].baud"),
    (bus(devices=[]), "bus[0].devices"),
    ({"hall": "demo", "secret": "s"}, "bus"),
    ({**bus(), "reader": [{"port": "/dev/null", "kiosk": "caller-w01"}]}, "reader[0].kiosk"),
    ({**bus(), "hall": ""}, "hall"),
])
def test_a_broken_gateway_file_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=rf"<gateway>: {re.escape(key)}:"):
        parse(raw)


def test_yimen_gateway_with_a_broken_file_says_why_and_exits_2(tmp_path):
    bad = tmp_path / "gw.toml"
    bad.write_text('hall = "demo"\nsecret = "s"\n[[bus]]\nport = "/dev/null"\nprotocol = "x"\n',
                   encoding="utf-8")
    r = yimen("gateway", "--config", str(bad))
    assert r.returncode == 2 and "bus[0].protocol" in r.stderr

"""The ``yimen`` command line: check-config, db upgrade, and broken configurations."""

from __future__ import annotations

import subprocess
import sys

import pytest

from controller.cli import main
from controller.config import ConfigError, load_config
from tests.helpers import DEMO, EXAMPLE


def yimen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "controller.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_shipped_configs_are_valid(capsys):
    assert main(["check-config", str(DEMO), str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "hall demo" in out and "5 services, 12 windows, 12 clerks, 40 devices" in out


def test_demo_hall_is_as_promised():
    cfg = load_config(DEMO)
    assert (cfg.hall.id, cfg.hall.timezone) == ("demo", "Asia/Shanghai")
    assert [(s.prefix, s.name, s.daily_cap) for s in cfg.services] == [
        ("A", "综合受理", 999), ("B", "不动产登记", 999), ("C", "社保医保", 999),
        ("D", "公安户政", 999), ("E", "税务", 999)]
    serves = {w.id: w.services for w in cfg.windows}
    assert serves["1"] == serves["3"] == ("A",) and serves["5"] == ("B",)
    assert serves["11"] == ("E",) and serves["12"] == ("A", "B", "C", "D", "E")
    assert next(w for w in cfg.windows if w.id == "12").green_first
    assert {c.id: c.windows for c in cfg.clerks}["1007"] == ("7",)
    ids = {d.id for d in cfg.devices}
    assert {"kiosk-1", "kiosk-2", "hall-screen-1", "announcer-1", "caller-w12", "led-w01",
            "eval-w07"} <= ids
    assert next(d for d in cfg.devices if d.id == "eval-w07").window == "7"


@pytest.mark.parametrize("toml, where", [
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n'
     '[[windows]]\nid = "1"\nservices = ["Q"]\n', "windows[0].services: unknown service 'Q'"),
    ('[hall]\nid = "x"\nname = "x"\ntimezone = "Mars/Base"\n[[services]]\ncode = "A"\n'
     'name = "a"\n[[windows]]\nid = "1"\nservices = ["A"]\n', "hall.timezone: unknown time zone"),
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\ndaily_cap = -1\n'
     '[[windows]]\nid = "1"\nservices = ["A"]\n', "services[0].daily_cap"),
    ('[hall]\nid = "x"\nname = "x"\nhours = ["09:00-08:00"]\n[[services]]\ncode = "A"\n'
     'name = "a"\n[[windows]]\nid = "1"\nservices = ["A"]\n', "hall.hours: span"),
    ('[hall]\nid = "BAD ID"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n'
     '[[windows]]\nid = "1"\nservices = ["A"]\n', "hall.id"),
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n[[windows]]\n'
     'id = "1"\nservices = ["A"]\n[[devices]]\nid = "caller-1"\nkind = "caller"\n',
     "devices[0]: a caller must name its window"),
    ('[hall\nid = ', "not valid TOML"),
])
def test_broken_config_names_the_file_and_the_key(tmp_path, toml, where):
    path = tmp_path / "broken.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and where in str(info.value)
    run = yimen("check-config", str(path))
    assert run.returncode == 2 and where in run.stderr


@pytest.mark.slow                               # starts `yimen serve`
def test_serve_refuses_a_broken_config(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[hall]\nid = "x"\n', encoding="utf-8")
    run = yimen("serve", "--config", str(path), "--data", str(tmp_path))
    assert run.returncode == 2 and "broken.toml" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow                               # a yimen process migrating a database: ~2 s
def test_db_upgrade_creates_the_schema(tmp_path):
    run = yimen("db", "upgrade", "--data", str(tmp_path))
    assert run.returncode == 0 and "revision 0003" in run.stdout
    assert (tmp_path / "yimen.db").exists()

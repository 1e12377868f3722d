"""The ``yimen`` command line: check-config, db upgrade, and broken configurations."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from controller.cli import build_parser, main
from controller.config import ConfigError, load_config
from tests.helpers import DEMO, EXAMPLE
from tests.test_storage import HEAD


def yimen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "controller.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_shipped_configs_are_valid(capsys):
    assert main(["check-config", str(DEMO), str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "hall demo" in out and "5 services, 12 windows, 12 clerks, 41 devices" in out


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
     '[[windows]]\nid = "1"\nservices = ["Q"]\n',
     "windows[0].services: 未知的业务 'Q' / unknown service 'Q'"),
    ('[hall]\nid = "x"\nname = "x"\ntimezone = "Mars/Base"\n[[services]]\ncode = "A"\n'
     'name = "a"\n[[windows]]\nid = "1"\nservices = ["A"]\n',
     "hall.timezone: 未知的时区 'Mars/Base' / unknown time zone"),
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\ndaily_cap = -1\n'
     '[[windows]]\nid = "1"\nservices = ["A"]\n', "services[0].daily_cap: 应不小于 0 / "),
    ('[hall]\nid = "x"\nname = "x"\nhours = ["09:00-08:00"]\n[[services]]\ncode = "A"\n'
     'name = "a"\n[[windows]]\nid = "1"\nservices = ["A"]\n',
     "hall.hours: 时间段 '09:00-08:00' 的结束早于开始 / span"),
    ('[hall]\nid = "BAD ID"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n'
     '[[windows]]\nid = "1"\nservices = ["A"]\n', "hall.id: 格式不对"),
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n[[windows]]\n'
     'id = "1"\nservices = ["A"]\n[[devices]]\nid = "caller-1"\nkind = "caller"\n',
     "devices[0].window: caller 需要写明所属窗口（window） / a caller must name its window"),
    ('[hall\nid = ', "不是有效的 TOML / not valid TOML"),
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n[[windows]]\n'
     'id = "1"\nservices = ["A"]\n[server]\nhttp = "8480"\n',
     "server.http: 应为 主机:端口，而不是 '8480' / expected HOST:PORT"),
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n[[windows]]\n'
     'id = "1"\nservices = ["A"]\n[tier]\nupper = "county"\nupper_broker = "http://county:1883"\n',
     "tier.upper_broker: 应为 mqtt://主机:端口"),
    ('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n[[windows]]\n'
     'id = "1"\nservices = ["A"]\n[bus]\nenabled = false\n[[devices]]\nid = "kiosk-1"\nkind = "kiosk"\n',
     "bus.enabled: 设备总线已关闭，设备无法连接"),
])
def test_broken_config_names_the_file_and_the_key(tmp_path, toml, where):
    path = tmp_path / "broken.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and where in str(info.value)
    run = yimen("check-config", str(path))
    assert run.returncode == 2 and where in run.stderr


def test_check_config_reports_every_error_in_chinese_and_english(tmp_path):
    """Three mistakes in different sections, one of them a field's: all three are reported,
    each on its own line with the file, the key and both languages."""
    path = tmp_path / "hall.toml"
    path.write_text('[hall]\nid = "x"\nname = "x"\n'
                    '[[services]]\ncode = "A"\nname = "a"\ndaily_cap = -1\n'
                    '[[windows]]\nid = "1"\nservices = ["Q"]\n'
                    '[[clerks]]\nid = "1001"\nname = "甲"\nwindows = ["9"]\n', encoding="utf-8")
    run = yimen("check-config", str(path), str(DEMO))
    assert run.returncode == 2 and "hall demo" in run.stdout        # the good file is still checked
    assert run.stderr.splitlines() == [
        f"{path}: services[0].daily_cap: 应不小于 0 / Input should be greater than or equal to 0",
        f"{path}: windows[0].services: 未知的业务 'Q' / unknown service 'Q'",
        f"{path}: clerks[0].windows: 未知的窗口 '9' / unknown window '9'",
    ]
    path.write_text('[hall]\nid = "x"\nname = "x"\n[[services]]\ncode = "A"\nname = "a"\n'
                    '[[services]]\ncode = "A"\nname = "b"\n[[windows]]\nid = "1"\nservices = ["A"]\n'
                    '[[devices]]\nid = "led-1"\nkind = "window_display"\nwindow = "2"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:                      # all valid fields, three
        load_config(path)                                          # problems across sections
    assert [line.split(": ")[1] for line in str(info.value).splitlines()] == [
        "services[1].code", "services[1].prefix", "devices[0].window"]


@pytest.mark.slow                               # starts `yimen serve`
def test_serve_refuses_a_broken_config(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[hall]\nid = "x"\n', encoding="utf-8")
    run = yimen("serve", "--config", str(path), "--data", str(tmp_path))
    assert run.returncode == 2 and "broken.toml" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow                               # a yimen process migrating a database: ~2 s
def test_db_upgrade_creates_the_schema(tmp_path):
    run = yimen("db", "upgrade", "--data", str(tmp_path))
    assert run.returncode == 0 and f"revision {HEAD}" in run.stdout
    assert (tmp_path / "yimen.db").exists()


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):  # noqa: ANN202
    """Every subcommand's words and parser, nested ones (``db upgrade``) included."""
    for action in parser._actions:                                   # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):             # noqa: SLF001
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def test_every_subcommand_says_what_it_does_in_chinese_and_english(capsys):
    commands = list(_subcommands(build_parser()))
    assert {"serve", "demo", "check-config", "db upgrade", "bench screens"} <= {
        " ".join(words) for words, _ in commands}
    for words, sub in commands:
        zh, _, en = (sub.description or "").partition(" / ")
        assert re.search(r"[\u4e00-\u9fff]", zh) and re.search(r"[A-Za-z]{3,} [a-z]+", en), words
        with pytest.raises(SystemExit) as done:
            main([*words, "--help"])
        out = capsys.readouterr().out
        assert done.value.code == 0
        assert zh[:8] in out and " ".join(en.split()[:4]) in " ".join(out.split()), words

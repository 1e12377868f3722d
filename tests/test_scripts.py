"""The way in for a new user: the set-up script says why apt-get failed, and Yimen installed
as a package (not editable, not run from the source tree) serves its demo hall."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers import ROOT


def test_a_failed_apt_get_is_explained(tmp_path):
    """scripts/setup and scripts/test install Debian packages with ``apt_install``: when apt-get
    fails, its own last lines say why."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-get").write_text('#!/bin/sh\n[ "$1" = update ] && exit 0\n'
                                  'echo "Reading package lists..."\n'
                                  'echo "E: Unable to locate package fonts-unifont" >&2\nexit 100\n')
    (fake / "apt-get").chmod(0o755)
    run = subprocess.run(["bash", "-c", ". scripts/apt.sh && apt_install fonts-unifont sox"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"})
    assert run.returncode != 0
    assert "yimen: could not install fonts-unifont sox" in run.stderr
    assert "E: Unable to locate package fonts-unifont" in run.stderr


@pytest.mark.slow                  # builds and installs the package, then runs it: ~10 s
def test_installed_package_runs_the_demo_hall_and_the_screens_bench(tmp_path):
    source, target = tmp_path / "source", tmp_path / "site"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("controller", "devices", "display", "kiosk", "protocol"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "--no-deps", "--target", str(target), str(source)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert (target / "controller" / "halls" / "demo.toml").is_file()
    shutil.rmtree(source)                                       # nothing left to fall back on

    # the installed copy, not the source tree: another working directory, the target first
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONUNBUFFERED": "1"}
    where = subprocess.run([sys.executable, "-c", "import controller; print(controller.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(target)), where

    log = tmp_path / "demo.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "demo", "--no-devices",
                                 "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0",
                                 "--data", str(tmp_path / "data")],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        said = proc.stdout.readline()                 # who the administrator is, once
        assert "管理员 administrator: admin / " in said, said
        while not (m := re.search(r"listening on (http://[\d.]+:\d+)", line := proc.stdout.readline())):
            assert line, log.read_text()                        # the demo prints where it listens
        def health() -> dict:
            with urllib.request.urlopen(m.group(1) + "/api/health", timeout=10) as r:
                return json.loads(r.read())
        for _ in range(100):                      # the device bus connects just after "listening"
            if (said := health()) == {"ok": True}:
                break
            time.sleep(0.1)
        assert said == {"ok": True}                             # and no internals to strangers
        with urllib.request.urlopen(m.group(1) + "/kiosk", timeout=10) as r:
            assert "<html" in r.read().decode()                 # the pages came along too
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        proc.stdout.close()

    bench = subprocess.run([sys.executable, "-m", "controller.cli", "bench", "screens",
                            "--clients", "2", "--calls", "2", "--interval", "0.01"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bench.returncode == 0 and "2 calls" in bench.stdout, bench.stderr[-3000:]

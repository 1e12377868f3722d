"""The shared ``protocol`` package keeps the device side light: a kiosk box, the serial
gateway, the announcer and the simulators load protocol v1 without the hall server's engine,
storage, web app or database drivers (a deployer installs them on small boxes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_SIDE = ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "controller.engine",
               "controller.storage", "controller.web", "controller.server")


def loaded_after(imports: str) -> list[str]:
    """The modules a fresh interpreter has loaded after ``import {imports}``."""
    code = f"import sys, {imports}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize(("imports", "forbidden"), [
    # the programs on device boxes: only protocol/, never the controller's bus either
    ("kiosk.program, devices.gateway, devices.simulators, devices.announcer, devices.bridge",
     (*SERVER_SIDE, "controller.bus")),
    # the package itself: nothing of the controller's server, bus or hall configuration
    ("protocol, protocol.client, protocol.link, protocol.credentials, protocol.tasks",
     (*SERVER_SIDE, "controller.bus", "controller.config", "pydantic")),
    # a simulated hall reads the hall file and its passwords, still without the server
    ("devices.simhall", SERVER_SIDE),
])
def test_device_side_imports_stay_light(imports: str, forbidden: tuple[str, ...]) -> None:
    bad = [m for m in loaded_after(imports) if m.startswith(forbidden)]
    assert not bad, f"import {imports} loads {bad}"


"""Schemathesis against ``GET /api/openapi.json``, as ``st run`` does it: the examples, coverage
(each field's edge values and wrong types) and fuzzing phases, valid and invalid requests, sent
as an administrator to the hall server running in this process on an ephemeral port. Not one
may be answered with a 5xx — nor with a status, media type or body the document does not give.

Half the time a window, service, clerk, ticket number or item id is one the hall knows
(schemathesis's dictionaries), so commands get past "no such window" to the hall's rules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from schemathesis.engine import Status, events, from_schema

from controller.config import HallConfig
from controller.server import create_app
from tests.helpers import bearer, demo_config

pytestmark = pytest.mark.slow

#: At least this many requests (about 3,500 are made: the coverage phase's cases and up to
#: ``EXAMPLES`` fuzzed ones per operation).
REQUESTS = 2000
EXAMPLES = 10
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance")


def run_config(headers: dict[str, str], config: HallConfig) -> schemathesis.Config:
    windows, services = [w.id for w in config.windows], [s.code for s in config.services]
    known = {"windows": windows, "services": services, "staff": [c.id for c in config.clerks],
             "items": [*windows, *services, *(c.id for c in config.clerks), *(d.id for d in config.devices)],
             "numbers": [f"{s.prefix}{n:03d}" for s in config.services for n in (1, 2)],
             "codes": ["YY1", "YY2"]}
    where = {"path.window": "windows", "body.to_window": "windows", "body.service": "services",
             "body.to_service": "services", "body.staff": "staff", "path.id": "items",
             "path.number": "numbers", "body.number": "numbers", "path.code": "codes", "body.code": "codes",
             "body.appointment": "codes"}
    return schemathesis.Config.from_dict({
        "headers": headers, "workers": 1, "request-timeout": 10,
        "generation": {"max-examples": EXAMPLES, "deterministic": True},
        "phases": {"stateful": {"enabled": False}},              # the document has no links
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "dictionaries": {name: {"values": values} for name, values in known.items()},
        "parameters": {key: {"dictionary": name, "probability": 0.5} for key, name in where.items()},
        "operations": [{"include-path": path, "enabled": False}          # they never end (their job)
                       for path in ("/api/stream", "/api/windows/{window}/stream", "/admin/stream")],
    })


def run(url: str, config: schemathesis.Config) -> tuple[int, list[str]]:
    """Every phase over every operation: (requests sent, what failed)."""
    sent, failures = 0, []
    for event in from_schema(schemathesis.openapi.from_url(url, config=config)).execute():
        if isinstance(event, events.ScenarioFinished):
            sent += len(event.recorder.interactions)
            failures += [_failure(event.recorder, case_id, check) for case_id, checks in
                         event.recorder.checks.items() for check in checks if check.status == Status.FAILURE]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"{type(event).__name__}: {getattr(event, 'info', None) or event}")
    return sent, failures


def _failure(recorder: Any, case_id: str, check: Any) -> str:
    failure = check.failure_info.failure if check.failure_info is not None else ""
    response = recorder.interactions[case_id].response if case_id in recorder.interactions else None
    return (f"{recorder.label}: {check.name} → {response.status_code if response else '?'}: {failure}\n"
            f"{check.failure_info.code_sample if check.failure_info is not None else ''}")


async def test_no_server_error_in_2000_generated_requests_as_an_administrator(tmp_path, clock):
    config = demo_config()
    app = create_app(config, tmp_path, clock=clock, bus=False)
    settings = run_config(await bearer(config, tmp_path, "admin"), config)
    async with TestServer(app, host="127.0.0.1") as server:
        began = time.monotonic()
        sent, failures = await asyncio.to_thread(run, str(server.make_url("/api/openapi.json")), settings)
        took = time.monotonic() - began
    print(f"schemathesis: {sent} requests in {took:.1f} s")
    assert failures == [], "\n\n".join(dict.fromkeys(failures))
    assert sent >= REQUESTS

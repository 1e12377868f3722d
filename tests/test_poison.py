"""One bad sender never hurts another: a kiosk (or an HTTP client) sending lone surrogates,
absurd nesting and out-of-format fields while a hundred others take tickets. Every one of the
hundred gets its ticket, over MQTT and over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from controller.server import create_app
from controller.storage import schema
from controller.storage.db import open_database
from tests.bushelp import devices, hall_server, open_broker, unique
from tests.conftest import pg_database
from tests.helpers import bearer, demo_config
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
KIOSKS = 100

#: Bodies of takes that must be refused at the door, each alone, with nothing changed.
POISON_FIELDS = [
    {"service": "A", "id_token": "\ud800"},                 # a lone surrogate
    {"service": "A\udfff"},
    {"service": "A", "phone_tail": "12345"},                # too long for its column
    {"service": "A", "phone_tail": "12ab"},
    {"service": "A", "id_token": "x" * 200},
    {"service": "A", "appointment": "\x00"},
]
DEEP = b'{"service": "A", "extra": ' + b"[" * 1000 + b"]" * 1000 + b"}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
async def store(request, tmp_path):
    """The hall's database URL: SQLite in the data folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    async with pg_database() as url:
        yield url


def with_kiosks(store: str):
    config = unique(demo_config())
    kiosks = [{"id": f"kiosk-{i}", "kind": "kiosk"} for i in range(1, KIOSKS + 2)]
    others = [d.model_dump() for d in config.devices if d.kind != "kiosk"]
    return config.model_copy(update={
        "devices": tuple(type(config.devices[0]).model_validate(d) for d in kiosks + others),
        "storage": config.storage.model_copy(update={"url": store})})


async def stored_tickets(config, data) -> int:  # noqa: ANN001
    from controller.storage.db import database_url

    db = open_database(database_url(config.storage.url or None, data))
    try:
        async with db.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(schema.tickets).where(
                schema.tickets.c.hall == config.hall.id))).scalar_one()
    finally:
        await db.dispose()


async def test_a_poisoning_kiosk_hurts_no_other_kiosk_over_mqtt(store, tmp_path):
    config = with_kiosks(store)
    ids = [f"kiosk-{i}" for i in range(1, KIOSKS + 2)]
    async with open_broker("mosquitto", config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", None, broker.url) as server, \
            devices(config, broker.address, ids) as dev:
        bad = dev[ids[-1]]
        replies: list[dict] = []

        async def keep(body):  # noqa: ANN001
            replies.append(body)
        bad.on_cmd = keep
        topic = bad.topics.device(bad.id, "event")
        poison = [json.dumps({"event_id": f"p{i}", "type": "take", **f}).encode()
                  for i, f in enumerate(POISON_FIELDS)]
        poison += [b'{"event_id": "\\ud800", "type": "take", "service": "A"}',
                   b'{"event_id": "deep", "type": "take", "service": "A", "x": '
                   + b"[" * 1000 + b"]" * 1000 + b"}"]

        async def poisoner() -> None:
            for _ in range(5):
                for payload in poison:
                    await bad.link.publish(topic, payload)
                await asyncio.sleep(0)

        results = await asyncio.gather(*[dev[i].take("A") for i in ids[:-1]], poisoner(),
                                       return_exceptions=True)
        tickets = [r for r in results[:-1] if isinstance(r, dict)]
        assert len(tickets) == KIOSKS, [r for r in results if not isinstance(r, dict)][:3]
        assert len({t["number"] for t in tickets}) == KIOSKS
        await wait_for(lambda: len(replies) >= 5 * len(poison), what="every poison's error reply")
        assert all(not r["ok"] for r in replies)
        assert {r["error"]["code"] for r in replies} <= {"bad_field", "bad_json", "missing_field"}
        assert server.bus.errors["bad_field"] >= 5 and server.bus.errors["bad_json"] >= 5
        assert server.engine.stats.failed == 0
    assert await stored_tickets(config, tmp_path / "data") == KIOSKS


async def test_a_poisoning_client_hurts_no_other_over_http(store, tmp_path, clock):
    config = with_kiosks(store)
    app = create_app(config, tmp_path, clock=clock, bus=False)
    headers = await bearer(config, tmp_path, "desk", db_url=config.storage.url or None)
    async with TestClient(TestServer(app), headers=headers) as client:
        async def take(body: bytes) -> int:
            r = await client.post("/api/tickets", data=body,
                                  headers={"Content-Type": "application/json"})
            return r.status

        bad = [json.dumps(f).encode() for f in POISON_FIELDS] + [DEEP]
        sent = []                               # (is it poison, body), poison mixed in
        for i in range(KIOSKS):
            sent.append((False, json.dumps({"service": "A"}).encode()))
            if i % 4 == 0:
                sent.append((True, bad[i // 4 % len(bad)]))
        statuses = await asyncio.gather(*[take(body) for _, body in sent])
        good = [st for (poison, _), st in zip(sent, statuses, strict=True) if not poison]
        refused = [st for (poison, _), st in zip(sent, statuses, strict=True) if poison]
        assert good.count(201) == KIOSKS, sorted(set(good))
        assert set(refused) == {400}
        board = await (await client.get("/api/board")).json()
        assert next(s for s in board["services"] if s["service"] == "A")["issued"] == KIOSKS
    assert await stored_tickets(config, tmp_path) == KIOSKS

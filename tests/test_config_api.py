"""The configuration API as the admin page and tools use it, the configuration kept across a
restart (the database's, not the file's), and ``yimen config export`` / ``import``."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller import cli
from controller.config import load_config
from controller.server import create_app
from controller.web.access import permission_of
from tests.helpers import DEMO, bearer, demo_config

NEW_SERVICE = {"code": "F", "name": "公积金", "name_en": "Housing fund", "category": "公积金"}


@pytest.fixture
async def client(tmp_path, clock):
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app), headers=await bearer(demo_config(), tmp_path)) as c:
        yield c


async def ok(response, status: int = 200) -> dict:  # noqa: ANN001
    data = await response.json()
    assert response.status == status, data
    return data


async def test_add_a_service_and_take_its_first_ticket_without_a_restart(client):
    added = await ok(await client.post("/api/config/services", json=NEW_SERVICE), 201)
    assert (added["section"], added["id"]) == ("services", "F")
    await ok(await client.patch("/api/config/windows/1", json={"services": ["A", "F"]}))
    kiosk = await ok(await client.get("/api/kiosk/services"))
    assert "F" in [s["service"] for s in kiosk["services"]]
    ticket = (await ok(await client.post("/api/tickets", json={"service": "F"}), 201))["ticket"]
    assert ticket["number"] == "F001"
    one = await ok(await client.get("/api/config/services/F"))
    assert one["item"]["name"] == "公积金" and one["item"]["enabled"] is True
    listed = await ok(await client.get("/api/config/windows"))
    assert listed["windows"][0]["services"] == ["A", "F"] and len(listed["windows"]) == 12


async def test_disable_instead_of_delete_and_every_refusal_says_why(client):
    await ok(await client.post("/api/tickets", json={"service": "B"}), 201)
    r = await client.delete("/api/config/services/B")
    err = (await ok(r, 422))["error"]
    assert err["code"] == "invalid_config" and {p["key"] for p in err["problems"]} >= {"windows[3].services"}
    await ok(await client.patch("/api/config/services/B", json={"enabled": False}))
    kiosk = await ok(await client.get("/api/kiosk/services"))
    assert "B" not in [s["service"] for s in kiosk["services"]]
    err = (await ok(await client.post("/api/tickets", json={"service": "B"}), 409))["error"]
    assert err["code"] == "service_disabled"
    await ok(await client.post("/api/windows/4/login", json={"staff": "1004"}))
    err = (await ok(await client.patch("/api/config/windows/4", json={"enabled": False}), 409))["error"]
    assert err["code"] == "window_in_use" and err["message"] and err["message_en"]
    r = await client.post("/api/config/windows", json={"id": "13", "services": ["Z"]})
    err = (await ok(r, 422))["error"]
    assert [p["key"] for p in err["problems"]] == ["services"] and "Z" in err["problems"][0]["message"]
    for path, code in (("clerks/9999", "unknown_config_item"), ("cars", "unknown_config_section")):
        assert (await ok(await client.get(f"/api/config/{path}"), 404))["error"]["code"] == code
    r = await client.patch("/api/config/services/A", data=b"[1]",
                           headers={"Content-Type": "application/json"})
    assert (await ok(r, 400))["error"]["code"] == "bad_request"


async def test_settings_calendar_notices_and_devices(client):
    await ok(await client.patch("/api/config/settings", json={"max_recalls": 4, "wait_alert_min": 20}))
    settings = (await ok(await client.get("/api/config/settings")))["settings"]
    assert (settings["max_recalls"], settings["wait_alert_min"]) == (4, 20)
    r = await client.patch("/api/config/settings", json={"max_recalls": 99})
    assert (await ok(r, 422))["error"]["problems"][0]["key"] == "max_recalls"
    await ok(await client.post("/api/config/calendar", json={"day": "2026-12-31", "kind": "holiday"}))
    await ok(await client.patch("/api/config/calendar/2027-01-09", json={"kind": "workday"}))
    calendar = await ok(await client.get("/api/config/calendar"))
    assert calendar["days"] == [{"day": "2026-12-31", "kind": "holiday"},
                                {"day": "2027-01-09", "kind": "workday"}]
    await ok(await client.delete("/api/config/calendar/2026-12-31"))
    r = await client.post("/api/config/calendar", json={"day": "2026-13-40", "kind": "holiday"})
    assert (await ok(r, 400))["error"]["code"] == "bad_arguments"
    notice = {"id": "n1", "text": "今日不动产窗口延时至18:00"}
    await ok(await client.post("/api/config/notices", json=notice), 201)
    board = await ok(await client.get("/api/kiosk/services"))
    assert board["notices"] == [{"id": "n1", "text": "今日不动产窗口延时至18:00", "text_en": ""}]
    await ok(await client.patch("/api/config/devices/caller-w01", json={"window": "2"}))
    assert (await ok(await client.get("/api/config/devices/caller-w01")))["item"]["window"] == "2"


async def test_appointments_are_listed_and_cancelled(client):
    for code, day in (("YY1", "2026-11-23"), ("YY2", "2026-11-24")):
        await ok(await client.post("/api/appointments", json={"code": code, "service": "A", "day": day}), 201)
    await ok(await client.post("/api/appointments/YY2/cancel"))
    listed = (await ok(await client.get("/api/appointments")))["appointments"]
    assert [(a["code"], a["cancelled"]) for a in listed] == [("YY1", False), ("YY2", True)]
    one_day = (await ok(await client.get("/api/appointments?day=2026-11-23")))["appointments"]
    assert [a["code"] for a in one_day] == ["YY1"]
    r = await client.get("/api/appointments?day=1999-99-01")
    assert (await ok(r, 400))["error"]["code"] == "bad_request"
    r = await client.post("/api/appointments/YY2/cancel")
    assert (await ok(r, 404))["error"]["code"] == "unknown_appointment"


def test_every_configuration_route_declares_the_permission_it_needs(tmp_path):
    app = create_app(demo_config(), tmp_path, bus=False)
    routes = [r for r in app.router.routes() if r.resource is not None
              and r.resource.canonical.startswith("/api/config") and r.method != "HEAD"]
    assert len(routes) >= 13
    for route in routes:
        wanted = "config.read" if route.method == "GET" else "config.write"
        assert permission_of(route.method, route.resource.canonical, route.handler) == wanted, route


async def test_after_a_restart_the_database_wins_over_the_hall_file(tmp_path, clock):
    async with TestClient(TestServer(create_app(demo_config(), tmp_path, clock=clock, bus=False)),
                          headers=await bearer(demo_config(), tmp_path)) as c:
        await ok(await c.post("/api/config/services", json=NEW_SERVICE), 201)
        await ok(await c.patch("/api/config/services/A", json={"name": "综合窗口"}))
    async with TestClient(TestServer(create_app(demo_config(), tmp_path, clock=clock, bus=False)),
                          headers=await bearer(demo_config(), tmp_path)) as c:
        services = (await ok(await c.get("/api/config/services")))["services"]
        assert [s["name"] for s in services if s["code"] in "AF"] == ["综合窗口", "公积金"]
        exported = await ok(await c.get("/api/config/export"))
        assert exported["revision"] == 3                       # seeded, then two changes


def test_export_import_round_trip_is_exact_and_a_dry_run_changes_nothing(tmp_path, capsys):
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    assert cli.main(["config", "export", "--data", str(tmp_path / "a"), "-o", str(one)]) == 0
    assert load_config(one) == load_config(DEMO)
    edited = one.read_text().replace('name = "税务"', 'name = "税务服务"')
    (tmp_path / "edited.toml").write_text(edited)
    args = ["--config", str(one), "--data", str(tmp_path / "b")]
    capsys.readouterr()
    assert cli.main(["config", "import", str(tmp_path / "edited.toml"), "--dry-run", *args]) == 0
    assert capsys.readouterr().out.splitlines() == ['~ services E: name: "税务" → "税务服务"']
    assert cli.main(["config", "export", *args, "-o", str(two)]) == 0
    assert two.read_text() == one.read_text()                    # the dry run changed nothing
    assert cli.main(["config", "import", str(tmp_path / "edited.toml"), *args]) == 0
    assert cli.main(["config", "import", str(one), *args]) == 0
    assert cli.main(["config", "export", *args, "-o", str(two)]) == 0
    assert two.read_text() == one.read_text()
    broken = tmp_path / "broken.toml"
    broken.write_text(one.read_text().replace('code = "B"', 'code = "B"\ndaily_cap = -5'))
    with pytest.raises(SystemExit):
        cli.main(["config", "import", str(broken), *args])
    assert "daily_cap" in capsys.readouterr().err
    assert json.loads(json.dumps(load_config(one).model_dump(mode="json")))  # plain data

"""``GET /api/openapi.json``: a valid OpenAPI 3.1 document of every route, whose request bodies
are the very models the handlers validate with."""

from __future__ import annotations

import jsonschema_rs
import pytest
import schemathesis
from aiohttp.test_utils import TestClient, TestServer

import controller
from controller.config import Hall, Service
from controller.core.commands import WINDOW_KEYS, Login, Take
from controller.server import create_app
from controller.web.access import PUBLIC, PUBLIC_ROUTE, SIGNED_IN, permission_of, route_of
from controller.web.openapi import MEDIA, REF, routes
from controller.web.users_api import NewUser
from tests.helpers import bearer, demo_config


@pytest.fixture
async def served(tmp_path, clock):
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app)) as c:
        r = await c.get("/api/openapi.json")
        assert r.status == 200 and r.headers["Content-Type"] == MEDIA
        yield app, await r.json(content_type=None)


def component(doc: dict, ref: str) -> dict:
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def body_schema(doc: dict, method: str, path: str) -> dict:
    schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return component(doc, schema["$ref"]) if "$ref" in schema else schema


def described(method: str, path: str, handler) -> list[tuple[str, str]]:
    """Where the document describes a route: its path, or one path per value of ``by``."""
    route = route_of(handler)
    if route is None or route.by is None:
        return [(method.lower(), path)]
    values = route.body.keys() if isinstance(route.body, dict) else \
        route.path.model_json_schema()["properties"][route.by]["enum"]   # type: ignore[union-attr]
    return [(method.lower(), path.replace(f"{{{route.by}}}", v)) for v in values]


def own_schema(model) -> tuple[dict, dict]:
    """The model's JSON Schema as the document refers to it, and its nested definitions."""
    schema = model.model_json_schema(ref_template=REF)
    return schema, schema.pop("$defs", {})


async def test_the_document_is_valid_openapi_3_1(served):
    _, doc = served
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == controller.__version__ and "Yimen" in doc["info"]["title"]
    schemathesis.openapi.from_dict(doc).validate()               # the OpenAPI 3.1 meta-schema
    for schema in doc["components"]["schemas"].values():           # each a JSON Schema 2020-12
        jsonschema_rs.meta.validate(schema)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert (schemes["session"]["in"], schemes["session"]["name"]) == ("cookie", "yimen_session")
    assert "X-CSRF-Token" in schemes["session"]["description"]


async def test_every_route_is_described_with_its_methods(served):
    app, doc = served
    wanted = {where for method, path, handler in routes(app.router)
              for where in described(method, path, handler)}
    found = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert found == wanted
    assert len(found) >= 80
    assert {f"/api/windows/{{window}}/{key}" for key in WINDOW_KEYS} <= set(doc["paths"])


async def test_who_may_use_each_route_is_its_declaration_and_public_is_the_public_list(served):
    app, doc = served
    for method, path, handler in routes(app.router):
        route, needed = route_of(handler), permission_of(method, path, handler)
        assert needed is not None, (method, path)
        if route is not None:          # a route declared public must be listed public, and back
            assert (route.permission == PUBLIC_ROUTE) == ((method, path) in PUBLIC), (method, path)
        for m, p in described(method, path, handler):
            op = doc["paths"][p][m]
            if needed == PUBLIC_ROUTE:
                assert op["security"] == [], (method, path)
                assert "401" not in op["responses"] or 401 in route.errors, (method, path)   # sign-in
            else:
                assert "security" not in op and op["x-permission"] == needed, (method, path)
                assert "401" in op["responses"]
                assert ("403" in op["responses"]) or needed == SIGNED_IN
    assert doc["security"] == [{"bearer": []}, {"session": []}]
    assert "429" in doc["paths"]["/api/auth/login"]["post"]["responses"]


async def test_a_body_in_the_document_is_the_model_the_handler_validates_with(served):
    _, doc = served
    for method, path, model in (("post", "/api/tickets", Take), ("post", "/api/users", NewUser),
                                ("post", "/api/config/services", Service)):
        schema, nested = own_schema(model)
        assert body_schema(doc, method, path) == schema, path
        for name, definition in nested.items():                    # Span, Quota …: the same too
            assert doc["components"]["schemas"][name] == definition
    # the window comes from the path, not the body; a change may give any of the keys
    login, _ = own_schema(Login)
    got = body_schema(doc, "post", "/api/windows/{window}/login")
    assert got["properties"] == {k: v for k, v in login["properties"].items() if k != "window"}
    assert got["required"] == ["staff"]
    window = doc["paths"]["/api/windows/{window}/login"]["post"]["parameters"][0]
    assert window["schema"]["pattern"] == login["properties"]["window"]["pattern"]
    settings = body_schema(doc, "patch", "/api/config/settings")
    assert settings["properties"] == own_schema(Hall)[0]["properties"] and "required" not in settings
    assert doc["paths"]["/api/config/settings"]["patch"]["requestBody"]["required"] is False


async def test_statuses_queries_and_media_types(served):
    _, doc = served
    take = doc["paths"]["/api/tickets"]["post"]["responses"]
    assert {"201", "400", "401", "403", "404", "409", "415", "503"} <= set(take)
    assert "200" not in take
    audit = {p["name"]: p for p in doc["paths"]["/api/audit"]["get"]["parameters"]}
    assert audit["since"]["schema"] == {"type": "string", "format": "date-time"}
    assert not any(p["required"] for p in audit.values())
    assert "text/html" in doc["paths"]["/kiosk"]["get"]["responses"]["200"]["content"]
    assert "image/svg+xml" in doc["paths"]["/t/{id}/qr.svg"]["get"]["responses"]["200"]["content"]
    assert "/static" not in doc["paths"] and "/static/" not in doc["paths"]
    error = doc["components"]["responses"]["409"]["content"]["application/json"]["schema"]
    assert component(doc, error["$ref"])["required"] == ["ok", "error"]


async def test_a_declared_query_model_is_what_the_handler_reads(tmp_path, clock):
    """Query parameters are refused as the document's schema says (and the day a real date)."""
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app), headers=await bearer(demo_config(), tmp_path)) as c:
        r = await c.get("/api/audit?since=2026-11-23T09:00:00")           # no time zone
        assert r.status == 400 and (await r.json())["error"]["problems"][0]["key"] == "since"
        r = await c.get("/api/audit?before=99999999999999999999999")
        assert r.status == 400
        r = await c.post("/api/config/import?dry_run=maybe", json={})
        assert r.status == 400 and (await r.json())["error"]["problems"][0]["key"] == "dry_run"
        for day in ("0", "20261123", "2026-02-30"):
            assert (await c.get(f"/api/appointments?day={day}")).status == 400, day
            assert (await c.delete(f"/api/config/calendar/{day}")).status == 400, day

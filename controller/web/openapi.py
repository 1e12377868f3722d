"""The API document (接口文档): ``GET /api/openapi.json``, OpenAPI 3.1, built from the app's
router and each route's declaration (``controller.web.access.Route``) — the models its handler
validates with, so the document cannot drift from what the server accepts.

Each route: its path parameters (the fields of the route's model they fill), its query
parameters (the query model's fields), its JSON body (the body model's JSON Schema, with the
fields the path gives left out; for a change, any of its keys), its success status and media
type, the errors it answers (all ``{"ok": false, "error": {…}}``) and who may use it. A path
parameter that chooses the operation (``by``) is written out, one path per value
(``/api/windows/{window}/next``). The HTML pages are described as ``text/html``; the pages'
folder of static files (``/static/``) is not. A route declared without a summary (the
sign-in routes) is described from its docstring, with any error (``default``).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import controller
from controller.auth.roles import PERMISSIONS
from controller.web.access import PUBLIC_ROUTE, SIGNED_IN, Handler, Route, permission_of, route_of
from controller.web.auth import COOKIE

REF = "#/components/schemas/{model}"
#: The document's own media type.
MEDIA = "application/vnd.oai.openapi+json;version=3.1"
#: The error statuses the routes answer, and what each means (``components.responses``).
ERRORS = {
    400: "请求有误 / a bad body, query or path parameter",
    401: "请先登录 / no credentials, or a token that is not valid",
    403: "没有权限 / a role that may not, or a change from another Origin or without X-CSRF-Token",
    404: "不存在 / something unknown (a ticket, a window, an item …)",
    409: "不允许 / refused by the hall's rules",
    413: "请求过大 / the body is too large",
    415: "须为 JSON / the body is not application/json",
    421: "主机名不属于本厅 / the Host is not this hall's",
    422: "无法处理 / an invalid configuration, or an Idempotency-Key reused for another request",
    429: "尝试次数过多 / too many sign-in attempts: wait (Retry-After)",
    503: "系统繁忙 / storage cannot answer now: retry",
}
CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
_ERROR_SCHEMA = {
    "type": "object", "required": ["ok", "error"],
    "properties": {"ok": {"const": False}, "error": {
        "type": "object", "required": ["code", "message", "message_en"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "message_en": {"type": "string"},
                       "problems": {"type": "array", "items": {
                           "type": "object", "required": ["key", "message", "message_en"],
                           "properties": {"key": {"type": "string"}, "message": {"type": "string"},
                                          "message_en": {"type": "string"}}}}}}},
}
_OK_SCHEMA = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}},
              "description": "ok, and what the route answers"}


def openapi_route() -> Handler:
    """The handler of ``GET /api/openapi.json`` for one app: the document is built on the first
    request (every route is added by then) and kept."""
    built: list[bytes] = []

    async def openapi_json(request: web.Request) -> web.Response:
        """This API's OpenAPI 3.1 document."""
        if not built:
            built.append(json.dumps(document(request.app.router), ensure_ascii=False).encode())
        return web.Response(body=built[0], headers={"Content-Type": MEDIA})

    return openapi_json


def routes(router: web.UrlDispatcher) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of each route the document describes: all but HEAD (which
    answers as GET does) and the static files' folder."""
    return [(r.method, r.resource.canonical, r.handler) for r in router.routes()
            if r.method != "HEAD" and isinstance(r.resource, (web.PlainResource, web.DynamicResource))]


def document(router: web.UrlDispatcher) -> dict[str, Any]:
    found = routes(router)
    models = _models([route_of(h) for _, _, h in found])
    refs, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = {**defs.get("$defs", {}), "Error": _ERROR_SCHEMA, "Ok": _OK_SCHEMA}
    build = _Builder(schemas, {m: refs[(m, "validation")]["$ref"].rsplit("/", 1)[1] for m in models})
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in found:
        for concrete, operation in build.operations(method, path, handler):
            paths.setdefault(concrete, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Yimen 一门 hall server API", "version": controller.__version__,
                 "description": "一门大厅服务器的 HTTP 接口。错误一律为 "
                                "`{\"ok\": false, \"error\": {\"code\", \"message\", \"message_en\"}}`。\n\n"
                                "The hall server's HTTP API. Every error is "
                                "`{\"ok\": false, \"error\": {\"code\", \"message\", \"message_en\", "
                                "\"problems\"?}}`."},
        "paths": dict(sorted(paths.items())),
        "security": SECURITY,
        "components": {
            "schemas": schemas,
            "responses": {str(status): _error(text) for status, text in ERRORS.items()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "ymt_…",
                           "description": "程序的 API 令牌（`yimen token add`）/ a program's API token: "
                                          "`Authorization: Bearer ymt_…`"},
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                            "description": "登录会话（POST /api/auth/login）/ a person's or an enrolled "
                                           "screen's session. A change (POST, PATCH, DELETE) on a session "
                                           "must also send its `X-CSRF-Token` header (the `csrf` of the "
                                           "login's or GET /api/auth/session's answer) and come from "
                                           "this hall's `Origin`."},
            },
        },
    }


_PAGE_404 = {"description": "不存在：页面地址答以“没有这个页面”网页，否则同接口 / unknown: the 404 page "
                             "for a page's address, else the API's error",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                         "text/html": {"schema": {"type": "string"}}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def _models(declared: list[Route | None]) -> list[type[BaseModel]]:
    out: dict[type[BaseModel], None] = {}
    for route in declared:
        if route is None:
            continue
        bodies = route.body.values() if isinstance(route.body, Mapping) else [route.body]
        for model in (*bodies, route.path, route.query):
            if model is not None:
                out[model] = None
    return list(out)


class _Builder:
    """The operations of one document, with its component schemas (``schemas``) and each
    model's name among them."""

    def __init__(self, schemas: dict[str, Any], names: dict[type[BaseModel], str]) -> None:
        self.schemas = schemas
        self.names = names

    def operations(self, method: str, path: str, handler: Handler) -> list[tuple[str, dict[str, Any]]]:
        """The route's operation, or one per value of its ``by`` parameter."""
        route = route_of(handler)
        permission = permission_of(method, path, handler)
        if route is None or route.by is None:
            model = route.model({}) if route is not None and not isinstance(route.body, Mapping) else None
            return [(path, self._operation(method, path, handler, route, model, permission))]
        out = []
        for value in self._values(route):
            concrete = path.replace(f"{{{route.by}}}", value)
            operation = self._operation(method, concrete, handler, route, route.model({route.by: value}),
                                        permission, value)
            out.append((concrete, operation))
        return out

    def _values(self, route: Route) -> list[str]:
        """The values of the route's ``by`` parameter: its bodies' keys, or its path model's enum."""
        if isinstance(route.body, Mapping):
            return list(route.body)
        if route.path is None or route.by is None:
            raise ValueError(f"by={route.by!r} needs a body per value or a path model naming its values")
        return list(self._properties(route.path)[route.by]["enum"])

    def _properties(self, model: type[BaseModel]) -> dict[str, Any]:
        return self.schemas[self.names[model]].get("properties", {})

    def _operation(self, method: str, path: str, handler: Handler, route: Route | None,
                   model: type[BaseModel] | None, permission: str | None,
                   choice: str | None = None) -> dict[str, Any]:
        """One operation; ``choice``: the value of the route's ``by`` parameter it is for."""
        in_path = re.findall(r"\{(\w+)\}", path)
        doc = inspect.cleandoc(handler.__doc__ or "")
        summary = route.summary if route is not None and route.summary else doc.split("\n")[0] or path
        if choice is not None:
            summary = f"{summary} · {choice}"
        if model is not None:                                   # what the command or body is
            doc = inspect.cleandoc(model.__dict__.get("__doc__") or "") or doc
        operation: dict[str, Any] = {
            "operationId": re.sub(r"[^a-z0-9]+", "_", f"{method} {path}".lower()).strip("_"),
            "summary": summary, "tags": [_tag(path)],
        }
        if doc and doc.split("\n")[0] != summary:
            operation["description"] = doc
        parameters = [{"name": name, "in": "path", "required": True,
                       "schema": self._parameter(name, route, model)} for name in in_path]
        if route is not None and route.query is not None:
            required = self.schemas[self.names[route.query]].get("required", [])
            parameters += [{"name": name, "in": "query", "required": name in required,
                            "schema": _plain(_no_null(schema))}
                           for name, schema in self._properties(route.query).items()]
        if parameters:
            operation["parameters"] = parameters
        documented = route is not None and bool(route.summary)
        body = self._body(model, route, in_path) if model is not None and route is not None else None
        if body is not None:
            operation["requestBody"] = body
        elif not documented and method in CHANGING:
            operation["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": {"type": "object"}}}}
        operation["responses"] = self._responses(method, route, permission, model is not None)
        if method == "GET" and not path.startswith("/api/") and "404" in operation["responses"]:
            operation["responses"]["404"] = _PAGE_404      # a browser's unknown page: the 404 page
        if permission == PUBLIC_ROUTE:
            operation["security"] = []
        else:
            operation["x-permission"] = permission
            what = PERMISSIONS.get(permission or "", "任何已登录者 / anyone signed in"
                                   if permission == SIGNED_IN else "")
            operation["description"] = f"{operation.get('description', '')}\n\n权限 / permission: " \
                                       f"`{permission}` — {what}".strip()
        return operation

    def _parameter(self, name: str, route: Route | None, model: type[BaseModel] | None) -> dict[str, Any]:
        for source in (route.path if route is not None else None, model):
            if source is not None and name in self._properties(source):
                return _plain(self._properties(source)[name])
        return {"type": "string"}

    def _body(self, model: type[BaseModel], route: Route, in_path: list[str]) -> dict[str, Any] | None:
        name = self.names[model]
        full = self.schemas[name]
        properties = {k: v for k, v in full.get("properties", {}).items() if k not in in_path}
        if not properties:
            return None                      # all of it is in the path
        required = [] if route.partial else [k for k in full.get("required", []) if k not in in_path]
        if len(properties) == len(full.get("properties", {})) and not route.partial:
            schema: dict[str, Any] = {"$ref": REF.format(model=name)}
        else:
            schema = {k: v for k, v in full.items() if k not in ("properties", "required", "title")}
            schema |= {"title": f"{full.get('title', name)}{' (changes)' if route.partial else ''}",
                       "properties": properties}
            if required:
                schema["required"] = required
        return {"required": bool(required), "content": {"application/json": {"schema": schema}}}

    def _responses(self, method: str, route: Route | None, permission: str | None,
                   has_body: bool) -> dict[str, Any]:
        status, media = (route.status, route.media) if route is not None else (200, "application/json")
        schema = {"$ref": REF.format(model="Ok")} if media == "application/json" \
            else {"type": "object"} if "json" in media else {"type": "string"}
        out: dict[str, Any] = {str(status): {"description": "成功 / done",
                                             "content": {media: {"schema": schema}}}}
        errors = {421, *(route.errors if route is not None else ())}
        if permission != PUBLIC_ROUTE:
            errors.add(401)
        if permission not in (PUBLIC_ROUTE, SIGNED_IN) or method in CHANGING:
            errors.add(403)                  # a role that may not; a change from another Origin
        if has_body:
            errors |= {400, 413, 415}
        if route is not None and route.query is not None:
            errors.add(400)
        for code in sorted(errors):
            out[str(code)] = {"$ref": f"#/components/responses/{code}"}
        if route is None or not route.summary:       # declared without its answers: any error
            out["default"] = _error("其他错误 / another error")
        return out


def _tag(path: str) -> str:
    parts = path.strip("/").split("/")
    return parts[1] if parts[0] == "api" and len(parts) > 1 else "pages"


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema as a parameter's: without its title and default."""
    return {k: v for k, v in schema.items() if k not in ("title", "default")}


def _no_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter's schema: absent, not null."""
    branches = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if len(branches) == 1:
        return {**{k: v for k, v in schema.items() if k != "anyOf"}, **branches[0]}
    return schema

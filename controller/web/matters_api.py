"""The matter catalogue's API (事项清单接口), for the admin page, the desk and tools.

``GET /api/matters`` (``?q=`` by code, name or pinyin initials as one types, ``service``,
``limit``), ``GET …/{code}``, ``POST`` a new matter, ``PATCH …/{code}`` some keys (``{"enabled":
false}`` takes it off the desk's search), ``DELETE …/{code}``; ``POST /api/matters/import`` a
whole xlsx or CSV file (base64 in JSON; ``dry_run`` only counts; ``replace`` makes the
catalogue exactly the file's), all or nothing, every problem named by row and column;
``GET /api/matters/export.xlsx`` and ``.csv``. Every change is a command through the engine
(``SetMatters``, ``RemoveMatter``) with who sent it, and audited.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from controller import matters_io
from controller.core.commands import RemoveMatter, SetMatters, decode
from controller.core.errors import Refused
from controller.core.matters import Catalogue, Matter, initials, validate
from controller.web.access import audited, guarded
from controller.web.api import (
    ENGINE,
    READS,
    REFUSALS,
    Body,
    body,
    json_response,
    parse,
    query,
    run_command,
    source,
)

#: A catalogue file as base64 in JSON: the file's limit and a third more.
IMPORT_LIMIT = 8 * 1024 * 1024
#: One matter's body (sixty materials of a hundred Chinese characters fit).
MATTER_LIMIT = 64 * 1024
#: At most this many problems are answered (each names its row and column).
MAX_PROBLEMS = 500
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"


class MatterQuery(BaseModel):
    """``GET /api/matters``: ``q`` matches the code, the name or its pinyin initials (营业执照 →
    yyzz), best first; ``service`` keeps the matters of that queue service (and those of
    any); disabled matters only with ``disabled=true``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    q: str = Field(default="", max_length=40)
    service: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,8}$")
    limit: int = Field(default=50, ge=1, le=5000)
    disabled: bool = False


class MatterFile(Body):
    """``POST /api/matters/import``: a catalogue file (xlsx or CSV, as base64)."""

    #: ends in .xlsx or .csv, which says how the content is read
    filename: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=IMPORT_LIMIT)
    #: the catalogue becomes exactly the file's matters (those left out are removed)
    replace: bool = False
    #: only read and count: nothing changes
    dry_run: bool = False


def find(cat: Catalogue, text: str, limit: int, service: str | None, disabled: bool) -> list[Matter]:
    """The catalogue's own search; with ``disabled``, the disabled matters that match too."""
    if not text.strip() and not service and disabled:
        return list(cat.matters.values())[:limit]
    found = cat.search(text, limit, service)
    if disabled and len(found) < limit:
        q = text.strip().lower()
        found += [m for m in cat.matters.values() if not m.enabled
                  and (not service or not m.service or m.service == service)
                  and (q in m.code.lower() or q in m.name or q in initials(m.name))][:limit - len(found)]
    return found


def _matter(cat: Catalogue, code: str) -> Matter:
    matter = cat.matters.get(code)
    if matter is None:
        raise Refused("unknown_matter", f"没有事项 {code[:40]}", f"no matter {code[:40]!r}")
    return matter


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    """One matter's keys, validated here so each problem names its field (for the form)."""
    matters, problems = validate([data])
    if problems:
        raise Refused("invalid_matters", "事项有误，未作更改", "the matter is invalid; nothing changed",
                      tuple((key.partition(": ")[2] or key, zh.partition("：")[2] or zh, en)
                            for key, zh, en in problems))
    return matters[0].model_dump(mode="json")


async def list_matters(request: web.Request) -> web.Response:
    q = query(request)
    cat = (await request.app[ENGINE].settled()).catalogue
    found = find(cat, q.q, q.limit, q.service, q.disabled)
    return json_response({"ok": True, "total": len(cat.matters), "matters": [m.view() for m in found]})


async def get_matter(request: web.Request) -> web.Response:
    cat = (await request.app[ENGINE].settled()).catalogue
    return json_response({"ok": True, "matter": _matter(cat, request.match_info["code"]).view()})


async def add_matter(request: web.Request) -> web.Response:
    data = await body(request, MATTER_LIMIT)
    cat = (await request.app[ENGINE].settled()).catalogue
    checked = _checked(data)
    if checked["code"] in cat.matters:
        raise Refused("matter_exists", f"事项编码 {checked['code']} 已存在",
                      f"there is already a matter {checked['code']!r}",
                      (("code", f"编码 {checked['code']} 已存在", "this code is taken"),))
    return await run_command(request, SetMatters(matters=[checked]))


async def change_matter(request: web.Request) -> web.Response:
    changes = await body(request, MATTER_LIMIT)
    code = request.match_info["code"]
    cat = (await request.app[ENGINE].settled()).catalogue
    current = _matter(cat, code)
    if changes.get("code", code) != code:
        raise Refused("bad_request", "事项编码不能修改", "a matter's code cannot change",
                      (("code", "编码不能修改", "the code cannot change"),))
    return await run_command(request, SetMatters(matters=[_checked({**current.model_dump(mode="json"),
                                                                    **changes})]))


async def remove_matter(request: web.Request) -> web.Response:
    return await run_command(request, decode(RemoveMatter, {"code": request.match_info["code"]}))


def _counts(cat: Catalogue, matters: list[Matter], replace: bool) -> dict[str, int]:
    codes, now = {m.code for m in matters}, set(cat.matters)
    added = len(codes - now)
    return {"matters": len(codes if replace else now | codes), "added": added,
            "changed": len(codes) - added, "removed": len(now - codes) if replace else 0}


async def import_matters(request: web.Request) -> web.Response:
    """A catalogue file: every problem by row and column and nothing changed, or its matters
    (with ``dry_run`` only counted)."""
    file = parse(MatterFile, await body(request, IMPORT_LIMIT))
    try:
        data = base64.b64decode(file.content, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("bad_request", "文件内容须为 base64", "content must be base64",
                      (("content", "文件内容须为 base64", "content must be base64"),)) from None
    checked = matters_io.check(matters_io.read(file.filename, data))
    if checked.problems:
        shown = checked.problems[:MAX_PROBLEMS]
        more = len(checked.problems) - len(shown)
        raise Refused("invalid_matters",
                      f"事项清单有 {len(checked.problems)} 处错误，未导入任何事项"
                      + (f"（仅列出前 {len(shown)} 处）" if more else ""),
                      f"{len(checked.problems)} problems in the catalogue; nothing imported"
                      + (f" (the first {len(shown)} listed)" if more else ""),
                      tuple((p["key"], p["message"], p["message_en"]) for p in shown))
    engine = request.app[ENGINE]
    if file.dry_run:
        cat = (await engine.settled()).catalogue
        return json_response({"ok": True, "dry_run": True, **_counts(cat, checked.matters, file.replace)})
    reply = await engine.execute(SetMatters(matters=[m.model_dump(mode="json") for m in checked.matters],
                                            replace=file.replace), source(request))
    await audited(request, "matters_import", request.path,
                  {"filename": file.filename, "replace": file.replace, "reply": reply})
    return json_response({"ok": True, "dry_run": False, **reply})


async def _attachment(request: web.Request, data: bytes, suffix: str, media: str) -> web.Response:
    engine = request.app[ENGINE]
    hall = await engine.settled()
    name = f"matters-{hall.config.hall.id}-{hall.local(engine.clock.now()):%Y%m%d}.{suffix}"
    return web.Response(body=data, content_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def export_xlsx(request: web.Request) -> web.Response:
    cat = (await request.app[ENGINE].settled()).catalogue
    return await _attachment(request, matters_io.to_xlsx(cat.matters.values()), "xlsx", XLSX)


async def export_csv(request: web.Request) -> web.Response:
    cat = (await request.app[ENGINE].settled()).catalogue
    return await _attachment(request, matters_io.to_csv(cat.matters.values()), "csv", CSV)


def add_matters_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/matters", guarded(
        "cases.read", list_matters, query=MatterQuery, errors=READS,
        summary="事项清单 / the matter catalogue (search by code, name or pinyin initials)"))
    r.add_post("/api/matters", guarded(
        "matters.write", add_matter, body=Matter, status=201, errors=REFUSALS,
        summary="新增事项 / add a matter"))
    r.add_post("/api/matters/import", guarded(
        "matters.write", import_matters, body=MatterFile, errors=REFUSALS,
        summary="导入事项清单 / import a catalogue file (xlsx or CSV), all or nothing"))
    r.add_get("/api/matters/export.xlsx", guarded(
        "cases.read", export_xlsx, errors=READS, media=XLSX, summary="导出事项清单 / export as xlsx"))
    r.add_get("/api/matters/export.csv", guarded(
        "cases.read", export_csv, errors=READS, media=CSV, summary="导出事项清单 / export as CSV"))
    r.add_get("/api/matters/{code}", guarded(
        "cases.read", get_matter, path=RemoveMatter, errors=(404, 503), summary="事项 / one matter"))
    r.add_patch("/api/matters/{code}", guarded(
        "matters.write", change_matter, body=Matter, partial=True, path=RemoveMatter, errors=REFUSALS,
        summary="修改事项 / change a matter (停用: enabled false)"))
    r.add_delete("/api/matters/{code}", guarded(
        "matters.write", remove_matter, path=RemoveMatter, errors=REFUSALS,
        summary="删除事项 / remove a matter"))

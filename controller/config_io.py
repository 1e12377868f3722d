"""``yimen config export`` / ``import``: the live configuration as a hall file and back.

Export writes the database's configuration with the hall file's deployment sections (storage,
server, bus, simulation) as TOML. Import takes a hall file's live sections through the engine
as one command (``ImportConfig``): on the database directly when no server runs on the data
folder, else through the running server's API. A dry run lists the differences only.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import urllib.error
import urllib.request
from contextlib import ExitStack
from typing import Any

import tomli_w
from sqlalchemy import select

from controller.config import HallConfig
from controller.core.commands import ImportConfig, Origin, Source
from controller.core.configuration import live_data, planned, with_live
from controller.core.errors import Refused
from controller.engine import Engine
from controller.startup import FolderInUse, StartupError, data_folder_lock, migrate
from controller.storage import schema
from controller.storage.db import database_url, open_database


def to_toml(config: HallConfig) -> str:
    """``config`` as a hall file: the file's sections in order, defaults left out."""
    data = config.model_dump(mode="python", exclude_defaults=True)
    data["hall"] = {"id": config.hall.id, **data["hall"]}          # the identity, always
    return tomli_w.dumps({k: v for k, v in data.items() if v not in ({}, [], ())})


async def stored_config(file: HallConfig, url: str) -> HallConfig:
    """The database's live configuration over ``file``'s deployment (the file's own, when
    no server has started on this database yet)."""
    db = open_database(url)
    try:
        async with db.connect() as conn:
            h = schema.hall_config
            try:
                row = (await conn.execute(select(h.c.data).where(h.c.hall == file.hall.id))).first()
            except Exception:  # noqa: BLE001 - a database never migrated has no configuration
                row = None
    finally:
        await db.dispose()
    return with_live(file, row.data, "数据库中的配置 / the stored configuration") if row else file


async def export_text(file: HallConfig, db_url: str | None, data_dir: str) -> str:
    return to_toml(await stored_config(file, database_url(db_url or file.storage.url, data_dir)))


def describe(differences: list[dict[str, Any]]) -> list[str]:
    """One line per difference, as a dry run shows them."""
    mark = {"added": "+", "removed": "-", "changed": "~", "reordered": "~"}
    lines = []
    for d in differences:
        what = f"{d['section']} {d['id']}" if d["id"] is not None else d["section"]
        if d["action"] == "changed":
            detail = "; ".join(f"{k}: {json.dumps(d['before'].get(k), ensure_ascii=False)} → "
                               f"{json.dumps(v, ensure_ascii=False)}" for k, v in d["changes"].items())
        elif d["action"] == "reordered":
            detail = "order: " + ", ".join(d["changes"]["order"])
        else:
            detail = d["action"]
        lines.append(f"{mark[d['action']]} {what}: {detail}")
    return lines


async def import_offline(file: HallConfig, new: HallConfig, db_url: str | None, data_dir: str,
                         dry_run: bool) -> list[dict[str, Any]]:
    """Import ``new``'s live sections on the database itself (no server runs on it)."""
    db = open_database(database_url(db_url or file.storage.url, data_dir), file.storage.synchronous)
    try:
        await migrate(db)
        engine = Engine(file, db)
        await engine.start()
        try:
            if dry_run:
                return planned(engine.config, live_data(new))[1]
            reply = await engine.execute(ImportConfig(data=live_data(new)),
                                         Source(f"cli:{getpass.getuser()}", Origin.CLI))
            return list(reply["differences"])
        finally:
            await engine.stop()
    finally:
        await db.dispose()


def post_to_server(server: str, path: str, data: Any) -> dict[str, Any]:
    """POST ``data`` as JSON to the running server's API; its JSON answer (``server_request``)."""
    return dict(json.loads(server_request(server, "POST", path, data)))


def server_request(server: str, method: str, path: str, data: Any = None, timeout: float = 60) -> bytes:
    """The running server's answer to ``method path`` with ``data`` as JSON, if any
    (``server``: HOST:PORT or a URL), as the program whose API token is in ``$YIMEN_TOKEN``
    (``yimen token add``), if any; its refusal as a ``Refused``, no answer as a
    ``StartupError``."""
    base = server if "://" in server else f"http://{server}"
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if os.environ.get("YIMEN_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['YIMEN_TOKEN']}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(f"{base.rstrip('/')}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}").get("error", {})
        raise Refused(error.get("code", f"http_{exc.code}"), error.get("message", str(exc)),
                      error.get("message_en", ""),
                      tuple((p["key"], p["message"], p["message_en"]) for p in error.get("problems", ()))) \
            from None
    except (urllib.error.URLError, OSError) as exc:
        raise StartupError(f"连接不上运行中的服务器 {base}：{exc}",
                           f"cannot reach the running server at {base}: {exc}") from None


def import_online(server: str, new: HallConfig, dry_run: bool) -> list[dict[str, Any]]:
    """Import through the running server's API (``server``: HOST:PORT or a URL)."""
    path = "/api/config/import" + ("?dry_run=1" if dry_run else "")
    return list(post_to_server(server, path, live_data(new))["differences"])


def import_config(file: HallConfig, new: HallConfig, db_url: str | None, data_dir: str,
                  server: str, dry_run: bool) -> list[dict[str, Any]]:
    """On the database when the data folder is free; else through the server that holds it."""
    with ExitStack() as held:
        try:
            held.enter_context(data_folder_lock(data_dir))
        except FolderInUse:
            return import_online(server, new, dry_run)
        return asyncio.run(import_offline(file, new, db_url, data_dir, dry_run))

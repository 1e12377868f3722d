"""``yimen matters import FILE`` / ``export FILE``: the matter catalogue (事项清单) as xlsx or CSV.

Import reads the file, names every problem by row and column and imports nothing from a file
with any; else its matters go through the engine as one command (``SetMatters``: all or
nothing; ``--replace`` makes the catalogue exactly the file's). As ``yimen config import``
does: on the database itself when no server holds the data folder, else through the running
server's API (``POST /api/matters/import``, as the program whose token is in ``$YIMEN_TOKEN``).
Export writes the catalogue as it is now, by the same two roads.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import json
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from controller import matters_io
from controller.config import HallConfig
from controller.config_io import server_request
from controller.core.commands import Origin, SetMatters, Source
from controller.core.errors import Refused
from controller.core.matters import Matter

#: The demo hall's catalogue, which ``yimen demo`` imports into an empty hall.
DEMO_MATTERS = Path(__file__).parent / "halls" / "demo-matters.csv"
DEMO_SOURCE = Source("system", Origin.CLI)


async def demo_catalogue(engine: Any) -> int:
    """Import the demo catalogue through ``engine`` when its hall has no matters yet; how
    many were imported (0: the hall had its own)."""
    if (await engine.settled()).catalogue.matters:
        return 0
    matters = matters_io.load(DEMO_MATTERS.name, DEMO_MATTERS.read_bytes())
    command = SetMatters(matters=[m.model_dump(mode="json") for m in matters])
    reply = await engine.execute(command, DEMO_SOURCE)
    return int(reply["added"])


def _counts(current: set[str], matters: list[Matter], replace: bool) -> dict[str, int]:
    codes = {m.code for m in matters}
    added = len(codes - current)
    return {"matters": len(codes if replace else current | codes), "added": added,
            "changed": len(codes) - added, "removed": len(current - codes) if replace else 0}


async def _on_database(file: HallConfig, db_url: str | None, data_dir: str,
                       act: Callable[[Any], Any]) -> Any:
    """Run ``act(engine)`` on the hall's database, with the engine started on it."""
    from controller.engine import Engine
    from controller.startup import migrate
    from controller.storage.db import database_url, open_database

    db = open_database(database_url(db_url or file.storage.url, data_dir), file.storage.synchronous)
    try:
        await migrate(db)
        engine = Engine(file, db)
        await engine.start()
        try:
            return await act(engine)
        finally:
            await engine.stop()
    finally:
        await db.dispose()


def import_file(file: HallConfig, path: str, db_url: str | None, data_dir: str, server: str,
                replace: bool, dry_run: bool) -> dict[str, Any]:
    """The file's matters into the hall (or only counted): on the database when the data
    folder is free, else through the server that holds it."""
    from controller.startup import FolderInUse, data_folder_lock

    data = Path(path).read_bytes()
    matters = matters_io.load(Path(path).name, data)      # every problem, before anything opens
    with ExitStack() as held:
        try:
            held.enter_context(data_folder_lock(data_dir))
        except FolderInUse:
            answer = server_request(server, "POST", "/api/matters/import", {
                "filename": Path(path).name, "content": base64.b64encode(data).decode(),
                "replace": replace, "dry_run": dry_run})
            return dict(json.loads(answer))

        async def act(engine: Any) -> dict[str, Any]:
            if dry_run:
                return _counts(set((await engine.settled()).catalogue.matters), matters, replace)
            return dict(await engine.execute(
                SetMatters(matters=[m.model_dump(mode="json") for m in matters], replace=replace),
                Source(f"cli:{getpass.getuser()}", Origin.CLI)))

        return dict(asyncio.run(_on_database(file, db_url, data_dir, act)))


def export_file(file: HallConfig, path: str, db_url: str | None, data_dir: str, server: str) -> int:
    """Write the catalogue to ``path`` (.xlsx or .csv); how many matters."""
    from controller.startup import FolderInUse, data_folder_lock

    suffix = Path(path).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise matters_io.CatalogueFileError("只能导出为 .xlsx 或 .csv", "export to a .xlsx or .csv file")
    with ExitStack() as held:
        try:
            held.enter_context(data_folder_lock(data_dir))
        except FolderInUse:
            data = server_request(server, "GET", f"/api/matters/export{suffix}")
            Path(path).write_bytes(data)
            try:
                return len(matters_io.read(Path(path).name, data).rows)
            except matters_io.CatalogueFileError:          # a header and no matters
                return 0

        async def act(engine: Any) -> list[Matter]:
            return list((await engine.settled()).catalogue.matters.values())

        matters = asyncio.run(_on_database(file, db_url, data_dir, act))
    matters_io.write(path, matters)
    return len(matters)


def _refused(exc: Refused) -> int:
    print(f"yimen: 未导入 not imported: {exc.message} / {exc.message_en}", file=sys.stderr)
    for _, zh, en in exc.problems:
        print(f"  {zh} / {en}", file=sys.stderr)
    return 1


def cmd_matters_import(args: argparse.Namespace, config: HallConfig) -> int:
    server = args.server or os.environ.get("YIMEN_HTTP") or config.server.http
    try:
        done = import_file(config, args.file, args.db, args.data, server, args.replace, args.dry_run)
    except Refused as exc:
        return _refused(exc)
    except OSError as exc:
        print(f"yimen: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    verb = "将 would:" if args.dry_run else "已导入 imported:"
    print(f"{verb} 新增 added {done['added']}，修改 changed {done['changed']}，删除 removed "
          f"{done['removed']}；共 {done['matters']} 项 matters")
    return 0


def cmd_matters_export(args: argparse.Namespace, config: HallConfig) -> int:
    server = args.server or os.environ.get("YIMEN_HTTP") or config.server.http
    try:
        count = export_file(config, args.file, args.db, args.data, server)
    except Refused as exc:
        print(f"yimen: 未导出 not exported: {exc.message} / {exc.message_en}", file=sys.stderr)
        return 1
    print(f"已导出 exported {count} 项 matters: {args.file}")
    return 0


def add_parsers(sub: argparse._SubParsersAction,
                add_common: Callable[[argparse.ArgumentParser, Callable[..., int]], None]) -> None:
    """The ``matters`` subcommands; ``add_common`` adds --config and the storage options."""
    p = sub.add_parser(
        "matters", help="事项清单的导入、导出 / import or export the matter catalogue",
        description="事项清单（xlsx 或 CSV）：import 导入，整体生效或整体不生效，逐行逐列指出错误；"
                    "export 导出。服务器运行时经由其接口（$YIMEN_TOKEN 中的令牌）。 / The matter "
                    "catalogue as xlsx or CSV: import takes a file in, all or nothing, naming "
                    "every problem by row and column; export writes it out. While a server runs "
                    "on the data folder this goes through its API (with the token in $YIMEN_TOKEN).")
    msub = p.add_subparsers(dest="matters_command", required=True)
    c = msub.add_parser("import", help="导入事项清单 / import a catalogue file",
                        description="导入 .xlsx 或 .csv 事项清单（UTF-8 或 GB18030），中文或英文表头。 / "
                                    "Import a .xlsx or .csv catalogue (UTF-8 or GB18030), with "
                                    "Chinese or English headers.")
    c.add_argument("file", help="the .xlsx or .csv file")
    c.add_argument("--replace", action="store_true",
                   help="清单变为文件中的事项（其余删除）/ the catalogue becomes exactly the file's")
    c.add_argument("--dry-run", action="store_true", help="只检查、统计，不导入 / only check and count")
    c.add_argument("--server", metavar="HOST:PORT",
                   help="the running server's HTTP address (default: $YIMEN_HTTP, then the config's)")
    add_common(c, cmd_matters_import)
    c = msub.add_parser("export", help="导出事项清单 / export the catalogue",
                        description="把事项清单写成 .xlsx 或 .csv（按扩展名）。 / Write the catalogue "
                                    "as .xlsx or .csv (by the name's ending).")
    c.add_argument("file", help="FILE.xlsx or FILE.csv")
    c.add_argument("--server", metavar="HOST:PORT",
                   help="the running server's HTTP address (default: $YIMEN_HTTP, then the config's)")
    add_common(c, cmd_matters_export)

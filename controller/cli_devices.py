"""``yimen device credentials ID``: a device's new MQTT password, shown once, with what its box
needs to log in (broker, user name, hall, device id) and, for a kiosk or terminal (which may
have an ID-card reader, on its own box or on a gateway), the hall server's ID-card public key
it seals ID numbers to (no secret: it opens nothing).

On the database when no server holds the data folder; else through the running server's API
(``POST /api/config/devices/{id}/credentials``, as the program whose token is in
``$YIMEN_TOKEN``), which makes its Mosquitto take the new password at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from contextlib import ExitStack

from controller.config import HallConfig

#: the device kinds that may have an ID-card reader
CARD_KINDS = ("kiosk", "terminal")


async def _offline(file: HallConfig, devices: list[str], db_url: str | None,
                   data_dir: str) -> dict[str, str]:
    from controller.bus import credentials
    from controller.config_io import stored_config
    from controller.startup import migrate
    from controller.storage.db import database_url, open_database

    url = database_url(db_url or file.storage.url, data_dir)
    db = open_database(url)
    try:
        await migrate(db)
        return await credentials.issue(db, await stored_config(file, url), devices)
    finally:
        await db.dispose()


def issue(file: HallConfig, devices: list[str], db_url: str | None, data_dir: str,
          server: str) -> dict[str, str]:
    """New passwords for ``devices`` (device → password): on the database when the data
    folder is free, else through the server that holds it."""
    from controller.config_io import post_to_server
    from controller.startup import FolderInUse, data_folder_lock

    with ExitStack() as held:
        try:
            held.enter_context(data_folder_lock(data_dir))
        except FolderInUse:
            return {d: post_to_server(server, f"/api/config/devices/{d}/credentials", {})["password"]
                    for d in devices}
        return asyncio.run(_offline(file, devices, db_url, data_dir))


def broker_url(config: HallConfig) -> str:
    """Where the hall's devices log in."""
    if config.bus.broker:
        return config.bus.broker
    url = f"mqtt://{config.bus.listen}"
    if config.bus.tls_listen:
        url += f" (TLS: mqtts://{config.bus.tls_listen})"
    if config.bus.listen.startswith(("0.0.0.0:", "[::]:")):
        url += " — this server's address in the hall's network"
    return url


def id_public_key(config: HallConfig, data_dir: str) -> str | None:
    """The hall server's ID-card public key, from the hall's ID secret in the data folder (made
    there if no server has started on it yet); None, said why, when it cannot be read."""
    from controller.bus import credentials
    from controller.bus.idcards import IdCards

    try:
        return IdCards(credentials.id_token_key(data_dir), config.hall.id).public_key
    except OSError as exc:
        why = exc.strerror or exc
        print(f"yimen: 读不到数据目录 {data_dir} 中的身份证密钥，无法给出 id_public_key：{why} / "
              f"cannot read the ID key in the data folder {data_dir}, so no id_public_key: {why}",
              file=sys.stderr)
        return None


def cmd_device_credentials(args: argparse.Namespace, config: HallConfig) -> int:
    from controller.core.errors import Refused

    server = args.server or config.server.http
    try:
        password = issue(config, [args.id], args.db, args.data, server)[args.id]
    except Refused as exc:
        print(f"yimen: {exc.message} / {exc.message_en}", file=sys.stderr)
        return 1
    print(f"password: {password}\nbroker:   {broker_url(config)}\nusername: {args.id}\n"
          f"hall:     {config.hall.id}\ndevice:   {args.id}")
    kind = next((d.kind for d in config.devices if d.id == args.id), None)   # None: added later
    key = id_public_key(config, args.data) if kind in (None, *CARD_KINDS) else None
    if key:
        print(f"id_public_key: {key}")
    print(f"设备 {args.id} 的新密码只显示这一次，旧密码已失效；请写入该设备的配置（取号机：password = …；"
          f"网关：[devices.{args.id}] password = …） / {args.id}'s new password is shown only this "
          f"once and its old one no longer works: put it in the device's file (a kiosk box: "
          f"password = …; a gateway: [devices.{args.id}] password = …)", file=sys.stderr)
    if key:
        print("有身份证阅读器的取号机或网关，请在其配置中写入 id_public_key = \"…\"（大厅服务器的公钥，"
              "用于加密身份证号，无需保密） / a kiosk box or gateway with an ID-card reader: put "
              "id_public_key = \"…\" in its file (it seals ID numbers; it is not a secret)",
              file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction,
                add_common: Callable[[argparse.ArgumentParser, Callable[..., int]], None]) -> None:
    """The ``device`` subcommands; ``add_common`` adds --config and the storage options and
    runs the command as ``command(args, hall file)``."""
    p = sub.add_parser(
        "device", help="设备凭据 / a device's MQTT credentials",
        description="设备：credentials 为一台设备生成新的 MQTT 密码。 / Devices: credentials makes a "
                    "device's new MQTT password.")
    dsub = p.add_subparsers(dest="device_command", required=True)
    c = dsub.add_parser(
        "credentials", help="生成设备的新密码（只显示一次）/ make a device's new password (shown once)",
        description="为一台设备生成新的随机 MQTT 密码并显示一次，连同代理地址、用户名、大厅和设备编号；"
                    "数据库只保存其哈希，旧密码立即失效。服务器运行时经由其接口（$YIMEN_TOKEN 中的令牌）"
                    "生成，代理立即生效。 / Make a device's new random MQTT password and show it "
                    "once, with the broker's address, the user name, the hall and the device id; "
                    "the database keeps only its hash and the old password stops working. While a "
                    "server runs on the data folder this goes through its API (with the token in "
                    "$YIMEN_TOKEN) and its broker takes the new password at once.")
    c.add_argument("id", help="the device's id, e.g. kiosk-2")
    c.add_argument("--server", metavar="HOST:PORT",
                   help="the running server's HTTP address (default: the config's server.http)")
    add_common(c, cmd_device_credentials)

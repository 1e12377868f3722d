"""The hall's own Mosquitto, with the files ``yimen serve`` writes: each device is only itself.

A kiosk's credential cannot publish as another device or as the controller, read another
device's ``set`` or ``cmd``, or read everything; anonymous clients and wrong passwords are
refused; a CONNECT naming another client's id cuts nobody off; a will on a topic the device may
not write is never published; a disabled device is cut off within a second; a dead broker is
reported and restarted, and the devices come back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import time

import aiomqtt
import pytest
from sqlalchemy import select

from controller.bus import credentials
from controller.bus.mosquitto import conf_text
from controller.config import ConfigError, parse_config
from controller.core.commands import ChangeItem, Origin, RemoveItem, Source
from controller.storage import schema
from protocol.link import BrokerAddress
from tests.bushelp import PASSWORDS, devices, free_port, hall_server, receive, unique
from tests.helpers import bearer, demo_config
from tests.waiting import wait_for

ADMIN = Source("user:test-admin", Origin.ADMIN)


def client(address: BrokerAddress, user: str | None, password: str | None = None,
           identifier: str | None = None, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(address.host, address.port, identifier=identifier or user or "anon",
                          username=user, password=password, will=will, timeout=5)


def connect_with_will(address: BrokerAddress, user: str, password: str, will_topic: str,
                      will: bytes) -> socket.socket:
    """A raw MQTT 3.1.1 CONNECT with a QoS 1 will; the open socket once Mosquitto accepted it
    (closing it without DISCONNECT makes the broker send the will)."""
    def field(b: bytes) -> bytes:
        return struct.pack("!H", len(b)) + b

    flags = 0x80 | 0x40 | 0x02 | 0x04 | 0x08                # user, password, clean, will QoS 1
    body = field(b"MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + field(user.encode()) \
        + field(will_topic.encode()) + field(will) + field(user.encode()) + field(password.encode())
    length, n = b"", len(body)
    while True:
        length += bytes([(n % 128) | (0x80 if n >= 128 else 0)])
        n //= 128
        if not n:
            break
    sock = socket.create_connection((address.host, address.port), timeout=5)
    sock.sendall(b"\x10" + length + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00", "CONNACK: accepted"
    return sock


# ------------------------------------------------------------------ the files (no broker)
def test_the_conf_listens_where_the_hall_file_says_and_refuses_anonymous_clients(tmp_path):
    config = unique(demo_config())
    tls = (BrokerAddress("0.0.0.0", 8883), "/etc/yimen/cert.pem", "/etc/yimen/key.pem")
    conf = conf_text(config.hall.id, BrokerAddress("127.0.0.1", 1884), tmp_path, tls)
    lines = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert "allow_anonymous false" in lines and "per_listener_settings false" in lines
    assert "listener 1884 127.0.0.1" in lines and "listener 8883 0.0.0.0" in lines
    assert "certfile /etc/yimen/cert.pem" in lines and "keyfile /etc/yimen/key.pem" in lines
    # each listener binds client ids to user names (before any listener it would open a default
    # listener on every interface)
    listeners = [i for i, line in enumerate(lines) if line.startswith("listener ")]
    assert all(lines[i + 1] == "use_username_as_clientid true" for i in listeners)
    assert lines.index("use_username_as_clientid true") > listeners[0]
    assert f"password_file {tmp_path}/passwd" in lines and f"acl_file {tmp_path}/acl" in lines
    assert {"set_tcp_nodelay true", "persistence true",
            f"log_dest file {tmp_path}/mosquitto.log"} <= set(lines)
    assert any(line.startswith("max_queued_messages ") for line in lines)
    assert any(line.startswith("max_inflight_messages ") for line in lines)


async def test_broker_config_for_a_hall_with_halls_below_lets_its_own_link_in(tmp_path):
    """``yimen broker-config``'s files give ``tier-hub`` the hall's tier topics (its password's
    hash only) and each hall below its own link's topics, nothing more."""
    from controller.bus.hall_broker import external_files

    data = demo_config().model_dump(mode="json")
    data["tier"] = {"level": "county", "lower": [{"id": "hexi", "name": "河西镇"}]}
    config = parse_config(data, "<county>")
    files = await external_files(config, tmp_path, None, free_port())
    hub = credentials.hub_password(tmp_path)
    passwd = dict(line.split(":", 1) for line in files["passwd"].splitlines())
    assert "tier-hub" in passwd and hub not in files["passwd"]
    assert credentials.matches(passwd["tier-hub"], hub)
    acl = files["acl"].split("\n\n")
    hub_rules = next(block for block in acl if block.startswith("user tier-hub"))
    assert hub_rules.splitlines()[1:] == ["topic write yimen/v1/demo/tier/#",
                                          "topic read yimen/v1/demo/tier/#"]
    hexi = next(block for block in acl if block.startswith("user hall-hexi"))
    assert "topic write yimen/v1/demo/tier/hexi/up" in hexi and "#\n" not in hexi + "\n"


def test_the_hall_file_keeps_the_broker_on_this_machine_unless_it_says_otherwise():
    config = demo_config()
    assert config.bus.listen.startswith("127.0.0.1:")
    with pytest.raises(ConfigError, match="tls_listen needs tls_cert and tls_key"):
        parse_config({**config.model_dump(mode="json"), "bus": {"tls_listen": "0.0.0.0:8883"}})
    with pytest.raises(ConfigError, match="no hall-wide bus secret"):
        parse_config({**config.model_dump(mode="json"), "bus": {"secret": "s3cret"}})
    device = {"id": "kiosk-9", "kind": "kiosk", "password": "plain"}
    with pytest.raises(ConfigError, match="yimen device credentials"):
        parse_config({**config.model_dump(mode="json"), "devices": [device]})


def test_a_device_password_is_kept_only_as_mosquittos_hash():
    secret = "kiosk-password-2026"          # long enough not to turn up in a hash by chance
    hashed = credentials.mosquitto_hash(secret)
    kind, rounds, salt, digest = hashed.split("$")[1:]
    assert (kind, int(rounds)) == ("7", credentials.ITERATIONS) and credentials.ITERATIONS > 101
    assert secret not in salt + digest and hashed != credentials.mosquitto_hash(secret)   # salted


def test_the_controllers_password_and_the_id_key_are_random_and_never_empty(tmp_path):
    """An empty or missing file means a new random secret, kept owner-only: nobody can derive
    the controller's password, and two halls never share one."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / credentials.CONTROLLER_FILE).write_text("\n")          # empty: a new one
    first = credentials.controller_password(tmp_path / "a")
    assert len(first) >= 32 and credentials.controller_password(tmp_path / "a") == first
    assert credentials.controller_password(tmp_path / "b") != first
    key = credentials.id_token_key(tmp_path / "a")
    assert len(key) >= 32 and key != first.encode() and credentials.id_token_key(tmp_path / "a") == key
    for name in (credentials.CONTROLLER_FILE, credentials.ID_KEY_FILE):
        assert (tmp_path / "a" / name).stat().st_mode & 0o077 == 0


# ------------------------------------------------------------------ the broker
@pytest.mark.slow
async def test_a_kiosk_is_only_itself(tmp_path, clock):
    config = unique(demo_config())
    root = f"yimen/v1/{config.hall.id}/"
    async with hall_server(config, tmp_path / "data", clock) as server, \
            devices(config, server.bus.link.broker, ["led-w01", "kiosk-2", "hall-screen-1"]) as dev:
        led, kiosk_2 = dev["led-w01"], dev["kiosk-2"]
        await led.wait_until(lambda: led.lines == ["1号窗口", "暂停服务"])
        forged: list[dict] = []

        async def other_cmd(body: dict) -> None:
            forged.append(body)
        kiosk_2.on_cmd = other_cmd
        address, passwords = server.bus.link.broker, PASSWORDS[config.hall.id]
        async with client(address, "kiosk-1", passwords["kiosk-1"]) as kiosk:
            for topic in (root + "device/led-w01/set", root + "device/kiosk-2/cmd",
                          root + "device/caller-w01/cmd", root + "device/+/event", root + "board",
                          root + "#", "#", "$SYS/#"):
                await kiosk.subscribe(topic, qos=1)
            # as the controller: a display's set, a call, the controller's state
            await kiosk.publish(root + "device/led-w01/set", b'{"op":"show","lines":["HACKED"]}',
                                qos=1, retain=True)
            await kiosk.publish(root + "calls", b'{"text":"fake call"}', qos=1)
            await kiosk.publish(root + "controller/state", b'{"state":"offline"}', qos=1, retain=True)
            await kiosk.publish(root + "device/kiosk-2/cmd", b'{"op":"ticket","ref":"x","ok":true}', qos=1)
            # as other devices: a keypad's login, another kiosk's take
            await kiosk.publish(root + "device/caller-w01/event",
                                b'{"event_id":"h1","type":"key","key":"login","staff":"1001"}', qos=1)
            await kiosk.publish(root + "device/kiosk-2/event",
                                b'{"event_id":"h2","type":"take","service":"A"}', qos=1)
            ticket = await kiosk_2.take("A")              # kiosk-2's own reply, meanwhile
            got = await receive(kiosk)
        # it read nothing but the controller's state (which every device may read): not the
        # display's set, not kiosk-2's reply with its ticket, not the events, not the board
        assert {t for t, _ in got} <= {root + "controller/state"}
        assert all(json.loads(p)["state"] == "online" for _, p in got)
        # nothing it wrote reached anyone: the controller saw no forged event, the display
        # shows what it showed, the screens heard no call, every device still sees the
        # controller online
        await asyncio.sleep(0.3)
        assert led.lines == ["1号窗口", "暂停服务"] and list(dev["hall-screen-1"].calls) == []
        assert led.controller["state"] == "online" and led.controller["boot_id"] == server.bus.boot_id
        after = await server.engine.settled()
        assert [t.number for t in after.queue.all.values()] == [ticket["number"]]   # kiosk-2's own
        assert after.desk.windows["1"].clerk is None and server.bus.errors == {}
        assert forged == []                                    # no cmd to kiosk-2 but its reply


@pytest.mark.slow
async def test_anonymous_wrong_and_missing_credentials_are_refused(tmp_path, clock):
    config = unique(demo_config())
    async with hall_server(config, tmp_path / "data", clock) as server:
        address, passwords = server.bus.link.broker, PASSWORDS[config.hall.id]
        for user, password in [(None, None), ("kiosk-1", None), ("kiosk-1", "wrong"),
                               ("nobody", "x"), ("controller", passwords["kiosk-1"]),
                               ("kiosk-1", passwords["kiosk-2"])]:
            with pytest.raises(aiomqtt.MqttError):
                async with client(address, user, password):
                    pass
        async with client(address, "kiosk-1", passwords["kiosk-1"]):
            pass                                            # the right one gets in
        # a device whose credential is gone (or was never made) cannot log in until an
        # administrator makes one; a new one replaces the old, which is cut off
        async with server.engine.db.begin() as conn:
            await conn.execute(schema.device_credentials.delete().where(
                schema.device_credentials.c.device == "kiosk-2"))
        await server.broker_own.refresh()
        with pytest.raises(aiomqtt.MqttError):
            async with client(address, "kiosk-2", passwords["kiosk-2"]):
                pass
        new = await credentials.reset(server.engine.db, server.engine.config, "kiosk-2")
        await server.broker_own.refresh()
        async with client(address, "kiosk-2", new) as kiosk_2:
            again = await credentials.reset(server.engine.db, server.engine.config, "kiosk-2")
            await server.broker_own.refresh()
            await wait_for(lambda: _cut_off(kiosk_2), 2, "the old password's session to end")
        async with client(address, "kiosk-2", again):
            pass
        assert "controller" not in (await _stored_devices(server))


async def _cut_off(c: aiomqtt.Client) -> bool:
    try:
        await c.subscribe("x", timeout=1)
    except aiomqtt.MqttError:
        return True
    return False


async def _stored_devices(server) -> set[str]:  # noqa: ANN001
    async with server.engine.db.connect() as conn:
        t = schema.device_credentials
        return {r.device for r in await conn.execute(select(t.c.device).where(
            t.c.hall == server.config.hall.id))}


@pytest.mark.slow
async def test_a_disabled_device_is_cut_off_within_a_second(tmp_path, clock):
    config = unique(demo_config())
    async with hall_server(config, tmp_path / "data", clock) as server, \
            devices(config, server.bus.link.broker, ["kiosk-1", "kiosk-2"]) as dev:
        kiosk_2 = dev["kiosk-2"]
        t0 = time.perf_counter()
        await server.engine.execute(ChangeItem(section="devices", id="kiosk-2",
                                               changes={"enabled": False}), ADMIN)
        await wait_for(lambda: not kiosk_2.link.connected.is_set(), 1.0,
                       "the disabled kiosk-2 to be disconnected")
        assert time.perf_counter() - t0 < 1.0
        address, passwords = server.bus.link.broker, PASSWORDS[config.hall.id]
        with pytest.raises(aiomqtt.MqttError):                 # and it cannot come back
            async with client(address, "kiosk-2", passwords["kiosk-2"]):
                pass
        # Mosquitto sends no will for it: the bus says it is offline in its stead
        await wait_for(lambda: not server.bus.registry["kiosk-2"].online, 1.0, "kiosk-2 listed offline")
        assert dev["kiosk-1"].link.connected.is_set()           # nobody else was touched
        assert (await dev["kiosk-1"].take("A"))["number"] == "A001"
        # enabled again, it logs in with the credential it has; removed, its credential goes
        await server.engine.execute(ChangeItem(section="devices", id="kiosk-2",
                                               changes={"enabled": True}), ADMIN)
        await wait_for(lambda: kiosk_2.link.connected.is_set(), 15, "kiosk-2 back once enabled")
        await server.engine.execute(RemoveItem(section="devices", id="kiosk-2"), ADMIN)
        await wait_for(lambda: not kiosk_2.link.connected.is_set(), 1.0, "the removed kiosk-2 cut off")
        stored = await wait_for(lambda: _gone(server), 5, "kiosk-2's credential deleted")
        assert "kiosk-2" not in stored and "kiosk-1" in stored


async def _gone(server) -> set[str] | None:  # noqa: ANN001
    stored = await _stored_devices(server)
    return stored if "kiosk-2" not in stored else None


@pytest.mark.slow
async def test_another_clients_id_cuts_nobody_off(tmp_path, clock):
    config = unique(demo_config())
    async with hall_server(config, tmp_path / "data", clock) as server, \
            devices(config, server.bus.link.broker, ["kiosk-1"]) as dev:
        kiosk_1, controller = dev["kiosk-1"].link, server.bus.link
        connects = (kiosk_1.connects, controller.connects)
        address, passwords = server.bus.link.broker, PASSWORDS[config.hall.id]
        # kiosk-1's id with a wrong password: refused before it could take the session over
        with pytest.raises(aiomqtt.MqttError):
            async with client(address, "kiosk-1", "guess", identifier="kiosk-1"):
                pass
        # a device with its own valid credential naming kiosk-1's and the controller's ids:
        # it is let in as itself (its id is its user name), and they stay connected
        for identifier in ("kiosk-1", "controller", controller.client_id):
            async with client(address, "kiosk-2", passwords["kiosk-2"], identifier=identifier) as c:
                await c.subscribe(f"yimen/v1/{config.hall.id}/device/kiosk-2/cmd", qos=1)
        await asyncio.sleep(0.5)
        assert kiosk_1.connected.is_set() and controller.connected.is_set()
        assert (kiosk_1.connects, controller.connects) == connects
        assert (await dev["kiosk-1"].take("A"))["number"] == "A001"


@pytest.mark.slow
async def test_a_will_only_on_the_devices_own_topics(tmp_path, clock):
    """Mosquitto 2.0.11 accepts the CONNECT but checks the will against the ACL when it
    would send it: one on another device's event, the controller's state or a display's set
    is never published; one on the device's own availability is."""
    config = unique(demo_config())
    root = f"yimen/v1/{config.hall.id}/"
    async with hall_server(config, tmp_path / "data", clock) as server, \
            devices(config, server.bus.link.broker, ["led-w01", "kiosk-2"]) as dev:
        led = dev["led-w01"]
        await led.wait_until(lambda: led.lines == ["1号窗口", "暂停服务"])
        address, password = server.bus.link.broker, PASSWORDS[config.hall.id]["kiosk-1"]
        for topic, will in [("device/kiosk-2/event", b'{"event_id":"w1","type":"take","service":"A"}'),
                            ("controller/state", b'{"state":"offline"}'),
                            ("device/led-w01/set", b'{"op":"show","lines":["HACKED"]}')]:
            connect_with_will(address, "kiosk-1", password, root + topic, will).close()
        await asyncio.sleep(0.5)
        assert led.lines == ["1号窗口", "暂停服务"] and led.controller["state"] == "online"
        assert (await server.engine.settled()).queue.all == {} and server.bus.errors == {}
        # the control: its own availability's will is published
        await wait_for(lambda: server.bus.registry.get("kiosk-1") is None
                       or not server.bus.registry["kiosk-1"].online, 5, "")
        connect_with_will(address, "kiosk-1", password, root + "device/kiosk-1/availability",
                          b"online").close()
        await wait_for(lambda: "kiosk-1" in server.bus.registry and server.bus.registry["kiosk-1"].online,
                       5, "kiosk-1's own will to reach the controller")


@pytest.mark.slow
async def test_a_dead_broker_is_reported_restarted_and_the_devices_come_back(tmp_path, clock):
    from aiohttp import web

    config = unique(demo_config())
    async with hall_server(config, tmp_path / "data", clock) as server, \
            devices(config, server.bus.link.broker, ["kiosk-1", "led-w01"], retry_s=0.5) as dev:
        site = web.TCPSite(server.runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api/health"  # noqa: SLF001
        import aiohttp

        async with aiohttp.ClientSession(headers=await bearer(config, tmp_path / "data", "viewer")) as http:
            async def health() -> dict:
                async with http.get(url) as r:
                    return await r.json()

            assert (await health())["ok"]
            mosquitto = server.broker_own.mosquitto
            pid, connects = mosquitto.pid, dev["kiosk-1"].link.connects
            os.kill(pid, signal.SIGKILL)
            down = await wait_for(lambda: _down(health), 5, "health to say the broker is down")
            assert down["checks"]["broker"]["ok"] is False
            assert (await health())["ok"] is False
            await wait_for(lambda: _up(health), 15, "the broker to be restarted and health ok")
            assert mosquitto.pid not in (None, pid) and mosquitto.restarts == 1
            await wait_for(lambda: dev["kiosk-1"].link.connects > connects, 15, "kiosk-1 back")
            assert (await dev["kiosk-1"].take("A"))["number"] == "A001"
            log = (tmp_path / "data" / "broker" / "mosquitto.log").read_text()
            assert log.count("mosquitto version 2") >= 2


async def _down(health) -> dict | None:  # noqa: ANN001
    h = await health()
    return h if not h["checks"]["broker"]["ok"] else None


async def _up(health) -> bool:  # noqa: ANN001
    h = await health()
    return h["ok"] and h["checks"]["broker"]["ok"] and h["checks"]["bus"]["ok"]


async def test_a_retained_event_is_acted_on_once_never_replayed(tmp_path, clock):
    """The ACL lets a device publish its own events retained (or leave such a will): the
    controller acts on the event once, and not again when it reconnects, however late."""
    config = unique(demo_config())
    topic = f"yimen/v1/{config.hall.id}/device/kiosk-1/event"

    def take(event_id: str) -> bytes:
        return json.dumps({"event_id": event_id, "type": "take", "service": "A"}).encode()

    async def today(server) -> int:  # noqa: ANN001
        hall = await server.engine.settled()
        return sum(t.day == hall.day for t in hall.queue.all.values())

    async with hall_server(config, tmp_path / "data", clock) as server:
        passwords = PASSWORDS[config.hall.id]
        async with client(server.bus.link.broker, "kiosk-1", passwords["kiosk-1"]) as kiosk:
            await kiosk.publish(topic, take("kept-1"), qos=1, retain=True)
        await wait_for(lambda: server.engine.stats.commands >= 1, what="the first take")
        assert await today(server) == 1
        clock.advance(hours=25)                      # past remembering the event's id (24 h)
        await server.stop()
        await server.start()                         # the broker keeps the retained event
        passwords = PASSWORDS[config.hall.id]        # the test's server makes new ones each start
        async with client(server.bus.link.broker, "kiosk-1", passwords["kiosk-1"]) as kiosk:
            await kiosk.publish(topic, take("live-2"), qos=1)
        await wait_for(lambda: server.engine.stats.commands >= 1, what="the second take")
        assert await today(server) == 1               # the live one, not the retained one again

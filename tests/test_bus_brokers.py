"""What the hall's own Mosquitto guarantees the hall: each device's own password, the topic
ACL, retained ``set``s across broker restarts, and no call lost when the broker restarts in the
middle of a burst. (The attacks a device's credential might try: ``test_broker_security``.)"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from devices.simulators import Caller
from tests.bushelp import PASSWORDS, big_hall, devices, hall_server, open_broker, receive, unique
from tests.helpers import demo_config
from tests.waiting import wait_for

# A Mosquitto of our own starts in a few tens of milliseconds: these stay in the fast lane.


def client(broker, user: str, password: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(broker.address.host, broker.address.port, identifier=f"{user}-probe",
                          username=user, password=password, timeout=5)


async def test_wrong_password_and_strangers_are_refused(tmp_path):
    config = unique(demo_config())
    async with open_broker("own", config, tmp_path) as broker:
        passwords = PASSWORDS[config.hall.id]
        for user, password in [("kiosk-1", "wrong"), ("nobody", "x"), ("kiosk-1", None),
                               ("kiosk-1", passwords["kiosk-2"])]:
            with pytest.raises(aiomqtt.MqttError):
                async with client(broker, user, password):
                    pass
        async with client(broker, "kiosk-1", passwords["kiosk-1"]):
            pass                                            # the right one gets in


async def test_a_device_reads_and_writes_only_its_own_topics(tmp_path, clock):
    config = unique(demo_config())
    root = f"yimen/v1/{config.hall.id}/"
    async with open_broker("own", config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, ["led-w01", "hall-screen-1"]) as dev:
        passwords = PASSWORDS[config.hall.id]
        await dev["led-w01"].wait_until(lambda: dev["led-w01"].lines == ["1号窗口", "暂停服务"])
        async with client(broker, "kiosk-1", passwords["kiosk-1"]) as kiosk:
            # the kiosk cannot read another device's set, the board, or every event
            for topic in (root + "device/led-w01/set", root + "board", root + "device/+/event",
                          root + "#"):
                await kiosk.subscribe(topic, qos=1)
            # nor write as the controller or as another device
            await kiosk.publish(root + "device/led-w01/set", b'{"op":"show","lines":["HACKED"]}',
                                qos=1, retain=True)
            await kiosk.publish(root + "calls", b'{"text":"fake call"}', qos=1)
            await kiosk.publish(root + "device/caller-w01/event",
                                b'{"event_id":"h1","type":"key","key":"login","staff":"1001"}', qos=1)
            leaked = [t for t, _ in await receive(kiosk) if t != root + "controller/state"]
            assert leaked == []
        assert dev["led-w01"].lines == ["1号窗口", "暂停服务"]
        assert list(dev["hall-screen-1"].calls) == []
        assert (await server.engine.settled()).desk.windows["1"].clerk is None
        # a screen may read the board (and calls)
        screen = dev["hall-screen-1"]
        await screen.wait_until(lambda: screen.board is not None)
        assert {w["window"] for w in screen.board["windows"]} == {w.id for w in config.windows}


async def test_the_broker_keeps_retained_sets_across_its_restart(tmp_path, clock):
    config = unique(big_hall(3))
    async with open_broker("own", config, tmp_path) as broker:
        async with hall_server(config, tmp_path / "data", clock, broker.url), \
                devices(config, broker.address, ["kiosk-1", "caller-w01", "led-w01"]) as dev:
            await dev["kiosk-1"].take("A")
            await dev["caller-w01"].press("login", staff="101")
            await dev["caller-w01"].press("next")
            await dev["led-w01"].wait_until(lambda: dev["led-w01"].lines[:1] == ["A001"])
        await broker.restart()                  # with no controller running
        async with devices(config, broker.address, ["led-w01", "led-w02"]) as rebooted:
            await rebooted["led-w01"].wait_until(lambda: rebooted["led-w01"].lines[:1] == ["A001"])
            await rebooted["led-w02"].wait_until(lambda: rebooted["led-w02"].lines[:1] == ["02号窗口"])


@pytest.mark.slow
async def test_a_broker_restart_mid_burst_loses_no_call(tmp_path, clock):
    windows = 8
    config = unique(big_hall(windows))
    async with open_broker("own", config, tmp_path) as broker, \
            hall_server(config, tmp_path / "data", clock, broker.url) as server, \
            devices(config, broker.address, retry_s=1.0) as dev:
        presses = 6
        for _ in range(windows * presses):
            await dev["kiosk-1"].take("A")
        callers: list[Caller] = [dev[f"caller-w{i:02d}"] for i in range(1, windows + 1)]
        await asyncio.gather(*[c.press("login", staff=f"1{c.id[-2:]}") for c in callers])
        called: dict[str, list[str]] = {c.id: [] for c in callers}

        async def burst(caller: Caller) -> None:
            for _ in range(presses):
                reply = await caller.press("next")
                called[caller.id].append(reply["result"]["ticket"]["number"])
                await asyncio.sleep(0.05)       # paces the burst so the restart lands inside it

        async def restart_midway() -> None:
            await wait_for(lambda: sum(map(len, called.values())) >= windows * presses // 3,
                           10, "a third of the burst's presses to be called before the restart")
            await broker.restart(down_s=0.5)

        await asyncio.gather(*[burst(c) for c in callers], restart_midway())
        numbers = [n for ns in called.values() for n in ns]
        # every press called exactly one ticket: none lost, none twice
        assert len(numbers) == len(set(numbers)) == windows * presses
        hall = await server.engine.settled()
        assert sum(1 for t in hall.queue.all.values() if t.called_at is not None) == windows * presses
        assert server.bus.link.connects >= 2
        for c in callers:                       # displays caught up with the last call
            led = dev[f"led-w{c.id[-2:]}"]
            await led.wait_until(lambda led=led, n=called[c.id][-1]: led.lines[:1] == [n], 15)

"""Several halls on one server (``yimen serve-halls``), on one PostgreSQL database: a hall added
while the others serve starts without stopping them, a broken hall file is said and left out,
a removed one stops; each hall keeps its own engine, numbers and data folder."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import pytest

from controller.core.commands import Origin, Source, Take
from controller.multi import Halls
from controller.web.api import ENGINE
from tests.bushelp import mosquitto_available

pytestmark = pytest.mark.slow
KIOSK = Source("device:kiosk", Origin.MQTT)


def hall_file(folder: Path, name: str, hall: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'''[hall]
id = "{hall}"
name = "{name} 便民服务中心"

[[services]]
code = "A"
name = "综合"

[[windows]]
id = "1"
services = ["A"]

[server]
http = "127.0.0.1:0"

[bus]
listen = "127.0.0.1:0"
''', encoding="utf-8")
    return path


async def until(check, seconds: float = 30.0) -> None:  # noqa: ANN001
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within time")


async def test_a_hall_is_added_and_removed_while_the_others_serve(tmp_path, pg_url):
    mosquitto_available()
    folder = tmp_path / "halls"
    folder.mkdir()
    tag = uuid.uuid4().hex[:6]
    a, b = f"a-{tag}", f"b-{tag}"
    hall_file(folder, "hexi", a)
    halls = Halls(folder, tmp_path / "data", pg_url, None, scan_s=0.2)
    task = asyncio.create_task(halls.run())
    failures: list[str] = []
    try:
        await until(lambda: any(h.hall == a for h in halls.running.values()))
        first = next(h for h in halls.running.values() if h.hall == a)

        async def keep_asking() -> None:                 # the first hall answers throughout
            async with aiohttp.ClientSession() as http:
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{first.port}/api/health") as r:
                            if r.status != 200:
                                failures.append(str(r.status))
                    except aiohttp.ClientError as exc:
                        failures.append(str(exc))
                    await asyncio.sleep(0.05)

        asker = asyncio.create_task(keep_asking())
        number_a = (await first.app[ENGINE].execute(Take(service="A"), KIOSK))["ticket"]["number"]
        hall_file(folder, "liuzhuang", b)                 # a hall added
        await until(lambda: any(h.hall == b for h in halls.running.values()))
        second = next(h for h in halls.running.values() if h.hall == b)
        number_b = (await second.app[ENGINE].execute(Take(service="A"), KIOSK))["ticket"]["number"]
        assert number_a == number_b == "A001"            # each hall its own numbers, one database
        assert second.app[ENGINE] is not first.app[ENGINE] and second.port != first.port
        (folder / "broken.toml").write_text("[hall]\nid = 'Bad Id'\n", encoding="utf-8")
        wrong = hall_file(folder, "wrong", f"c-{tag}")         # loads as TOML, but its addresses are wrong
        wrong.write_text(wrong.read_text(encoding="utf-8").replace('http = "127.0.0.1:0"', 'http = "8480"')
                         + '\n[tier]\nlevel = "town"\nupper = "county"\nupper_broker = "http://county"\n',
                         encoding="utf-8")
        await until(lambda: {p.name for p in halls.failed} >= {"broken.toml", "wrong.toml"})
        assert "HOST:PORT" in halls.failed[wrong.resolve()] and "mqtt://" in halls.failed[wrong.resolve()]
        assert not task.done()
        assert {h.hall for h in halls.running.values()} == {a, b}
        (folder / "liuzhuang.toml").unlink()              # a hall removed
        await until(lambda: {h.hall for h in halls.running.values()} == {a})
        assert (await first.app[ENGINE].execute(Take(service="A"), KIOSK))["ticket"]["number"] == "A002"
        asker.cancel()
        assert failures == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert halls.running == {}

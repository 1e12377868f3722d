"""Three hall servers — a county, a town, a village — each with its own data folder and its own
Mosquitto, linked as the county's network is: cases forwarded up and decided there, results
back down, every case and every status change applied exactly once and in order per case, also
across a link cut while both sides go on working; and bad input from below refused."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from controller import tier_link
from controller.bus import credentials
from controller.bus.security import Grants
from controller.config import HallConfig, parse_config
from controller.core.cases import view as case_view
from controller.core.commands import CaseStep, OpenCase, Origin, SetMatters, Source, UpperRefused
from controller.storage.schema import events
from controller.tier_link import PASSWORD_FILE, TIERS
from controller.web.api import BUS
from protocol.link import MqttLink
from protocol.topics import hall_user, tier_topics
from tests.bushelp import HallServer, hall_server

DESK = Source("user:desk", Origin.HTTP)
U15 = {"code": "U15", "name": "采矿许可", "department": "自然资源局", "promised_days": 15,
       "statutory_days": 20}


def config(hall: str, level: str, upper: tuple[str, int] | None = None,
           lower: str | None = None) -> HallConfig:
    """A hall; a village runs small: no device bus, no broker of its own."""
    return parse_config({
        **({"bus": {"enabled": False}} if level == "village" else {}),
        "hall": {"id": hall, "name": f"{hall} 便民服务中心", "national_calendar": False},
        "services": [{"code": "A", "name": "综合", "avg_service_min": 6}],
        "windows": [{"id": "1", "services": ["A"]}],
        "tier": {"level": level, "upper": upper[0] if upper else "",
                 "upper_broker": f"mqtt://127.0.0.1:{upper[1]}" if upper else "",
                 "lower": [{"id": lower, "name": lower}] if lower else []},
    }, f"<{hall}>")


async def admit(upper: HallServer, lower: str, data: Path) -> None:
    """The upper hall issues ``lower``'s credential; the lower hall keeps it in its data folder."""
    password = (await credentials.issue(upper.engine.db, upper.engine.config, [hall_user(lower)]))[
        hall_user(lower)]
    await upper.broker_own.refresh()
    data.mkdir(parents=True, exist_ok=True)
    (data / PASSWORD_FILE).write_text(password)


async def send_up(hall: HallServer, applicant: str) -> str:
    number = (await hall.engine.execute(OpenCase(matter="U15", applicant=applicant), DESK))["case"]["number"]
    await hall.engine.execute(CaseStep(number=number, action="escalate"), DESK)
    return number


async def cases_from(hall: HallServer, peer: str) -> dict[str, Any]:
    """The hall's cases forwarded by ``peer``, by their number there."""
    state = await hall.engine.settled()
    return {c.origin_number: c for c in state.cases.by_number.values() if c.origin_hall == peer}


async def states(hall: HallServer, numbers: list[str]) -> set[str]:
    state = await hall.engine.settled()
    return {state.cases.by_number[n].state for n in numbers}


async def until(check: Any, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not within time")


async def has(hall: HallServer, peer: str, n: int) -> bool:
    return len(await cases_from(hall, peer)) == n


async def decided(hall: HallServer, numbers: list[str]) -> bool:
    return await states(hall, numbers) == {"decided"}


async def counted(link: Any, n: int, what: str = "refused:") -> bool:
    return sum(v for k, v in link.counts.items() if k.startswith(what)) == n


async def _true(value: object) -> bool:
    return bool(value)


async def is_state(hall: HallServer, number: str, state: str) -> bool:
    return await states(hall, [number]) == {state}


async def heard_waiting(link: Any, n: int) -> bool:
    return link.overview.get("town", {}).get("waiting") == n


async def decide_all(county: HallServer, peer: str) -> None:
    for case in list((await cases_from(county, peer)).values()):
        if case.state == "accepted":
            await county.engine.execute(CaseStep(number=case.number, action="review"), DESK)
            await county.engine.execute(CaseStep(number=case.number, action="decide"), DESK)


async def remote_steps(hall: HallServer) -> dict[str, list[str]]:
    """Each case's mirrored upper states, in the order the hall applied them."""
    async with hall.engine.db.connect() as conn:
        rows = (await conn.execute(select(events.c.payload).where(
            events.c.hall == hall.engine.config.hall.id, events.c.kind == "case_step")
            .order_by(events.c.id))).all()
    out: dict[str, list[str]] = {}
    for (payload,) in rows:
        p = json.loads(payload)
        if p["action"] == "remote":
            out.setdefault(p["case"], []).append(p["upper_state"])
    return out


@pytest.mark.slow
async def test_cases_go_up_and_results_come_down_exactly_once_across_a_link_cut(tmp_path):
    async with AsyncExitStack() as stack:
        county = await stack.enter_async_context(hall_server(config("county", "county", lower="town"),
                                                             tmp_path / "county"))
        cid = county.engine.config.hall.id
        await admit(county, "town", tmp_path / "town")
        town = await stack.enter_async_context(hall_server(config(
            "town", "town", (cid, county.broker_own.address.port), lower="village"), tmp_path / "town"))
        tid = town.engine.config.hall.id
        await admit(town, "village", tmp_path / "village")
        village = await stack.enter_async_context(hall_server(config(
            "village", "village", (tid, town.broker_own.address.port)), tmp_path / "village"))
        vid = village.engine.config.hall.id
        for hall, form in ((county, "promised"), (town, "upper"), (village, "upper")):
            await hall.engine.execute(SetMatters(matters=[{**U15, "form": form}]), DESK)

        # 200 cases from the town and 10 from the village (代办, through the town) go up
        town_cases = [await send_up(town, f"申请人{i}") for i in range(200)]
        village_cases = [await send_up(village, f"村民{i}") for i in range(10)]
        await until(lambda: has(town, vid, 10))
        for case in (await cases_from(town, vid)).values():                  # the town forwards them on
            await town.engine.execute(CaseStep(number=case.number, action="escalate"), DESK)
        await until(lambda: has(county, tid, 210))
        await decide_all(county, tid)
        await until(lambda: decided(town, town_cases))
        await until(lambda: decided(village, village_cases))
        town_case = (await town.engine.settled()).cases.by_number[town_cases[0]]
        assert town_case.upper_number == (await cases_from(county, tid))[town_cases[0]].number   # gained
        assert town_case.number == town_cases[0]                                          # kept

        # the link cut: the county's broker stops while both sides go on working
        await county.broker_own.mosquitto.stop()
        during = [await send_up(town, f"断网{i}") for i in range(20)]
        await county.engine.execute(OpenCase(matter="U15", applicant="县里本地"), DESK)
        await asyncio.sleep(1.0)
        assert len(await cases_from(county, tid)) == 210
        await county.broker_own.mosquitto.start()
        await until(lambda: has(county, tid, 230))
        await decide_all(county, tid)
        await until(lambda: decided(town, during))

        # exactly once and in order: one county case per town case, each state change once
        assert sorted(await cases_from(county, tid)) == sorted(
            [*town_cases, *during, *(c.number for c in (await cases_from(town, vid)).values())])
        steps = await remote_steps(town)
        for number in [*town_cases, *during]:
            assert steps[number] == ["accepted", "in_review", "decided"], number
        village_steps = await remote_steps(village)             # the deciding tier's states, passed on
        for number in village_cases:
            assert village_steps[number] == ["accepted", "escalated", "accepted", "in_review", "decided"]
        assert town.runner.app[TIERS].counts["refused:malformed"] == 0
        state = town.runner.app[TIERS].status()
        assert all(link["connected"] for link in state["links"]) and state["counts"]["applied"] > 0


async def test_bad_input_from_below_is_refused_counted_and_changes_nothing(tmp_path, monkeypatch):
    async with hall_server(config("county", "county", lower="town"), tmp_path / "county") as county:
        cid = county.engine.config.hall.id
        link = county.runner.app[TIERS]
        before = len(county.engine.hall.cases.by_number)
        await county.engine.execute(SetMatters(matters=[U15]), DESK)
        tier = f"yimen/v1/{cid}/tier/#"
        county.broker_own.extra["probe"] = (credentials.mosquitto_hash("probe-password"),
                                            Grants(write=frozenset({tier}), read=frozenset({tier})))
        await county.broker_own.refresh()
        answers: list[dict[str, Any]] = []
        probe = MqttLink(county.broker_own.address, "probe", username="probe", password="probe-password",
                         subscriptions=[tier_topics(cid, "town").up_ack],
                         on_message=lambda _topic, payload: answers.append(json.loads(payload)))
        task = asyncio.create_task(probe.run())
        try:
            await asyncio.wait_for(probe.connected.wait(), 10)
            await asyncio.wait_for(link.links[0].connected.wait(), 10)
            good = {"peer": "town", "seq": 1, "number": "000000-town-20261130-0001", "matter": "U15",
                    "matter_name": "采矿许可", "department": "自然资源局", "limit_days": 15,
                    "applicant": "张*丰", "accepted_on": "2026-11-30", "base": 0, "row": 7}
            await probe.publish(f"yimen/v1/{cid}/tier/stranger/up", json.dumps({**good, "peer": "stranger"}))
            await probe.publish(tier_topics(cid, "town").up, json.dumps({**good, "peer": "village"}))
            await probe.publish(tier_topics(cid, "town").up, b"{not json")
            await probe.publish(tier_topics(cid, "town").up, json.dumps({**good, "limit_days": "fifteen"}))
            await until(lambda: counted(link, 4), 10)
            assert link.counts["refused:unknown_hall"] == 1 and link.counts["refused:forged_hall"] == 1
            assert link.counts["refused:malformed"] == 2
            assert len(county.engine.hall.cases.by_number) == before and not county.engine.hall.inbox
            # the malformed case was the next one: its sender is told, and goes on with the one after
            await until(lambda: _true(answers), 10)
            assert answers == [{"applied": 0, "epoch": "", "refused": 1, "row": 7,
                                "reason": "上报内容不完整或格式不符"}]
            deep = b"[" * 100_000 + b"]" * 100_000                 # past the JSON parser's recursion
            topics = tier_topics(cid, "town")
            for topic in (topics.up, topics.status, topics.down_ack):
                await probe.publish(topic, deep)
            await probe.publish(topics.up, json.dumps({**good, "notes": "x" * 300_000}))   # too long
            await until(lambda: counted(link, 8), 10)
            assert link.counts["refused:malformed"] == 6
            told = await county.runner.app[TIERS].summary()         # a summary of the right shape…
            await probe.publish(topics.status, json.dumps({**told, "hall": "town", "waiting": "many"}))
            await until(lambda: counted(link, 1, "refused:bad_status"), 10)
            assert (await link.halls())[1] == {"hall": "town", "name": "town", "online": None}
            await probe.publish(topics.status, json.dumps({**told, "hall": "town", "name": "县政府",
                                                           "waiting": 7, "extra": [1] * 1000}))
            await until(lambda: heard_waiting(link, 7), 10)
            town_row = (await link.halls())[1]
            assert town_row["name"] == "town" and town_row["online"] and "extra" not in town_row
            monkeypatch.setattr(tier_link, "MAX_INFLIGHT", 0)     # a flood: what is not taken is sent again
            await probe.publish(tier_topics(cid, "town").up, json.dumps(good))
            await until(lambda: counted(link, 1, "dropped_busy"), 10)
            monkeypatch.undo()
            assert not county.engine.hall.inbox
            await probe.publish(tier_topics(cid, "town").up, json.dumps(good))          # and then a good one
            await until(lambda: counted(link, 1, "applied"), 10)
            await probe.publish(tier_topics(cid, "town").up, json.dumps(good))          # a repeat: once
            await until(lambda: counted(link, 1, "duplicates"), 10)
            assert len(await cases_from(county, "town")) == 1
        finally:
            probe.close()
            task.cancel()


async def test_a_case_the_county_refuses_for_good_comes_back_to_the_town_desk(tmp_path, monkeypatch):
    """The county will never take one case (here: it does not know the applicant's matter for
    that one): the town hears so, the case is back at its desk as 已受理 with the refusal said,
    and the next case takes its place in the numbering and goes through."""
    from controller.core import hall as core_hall
    from controller.core.commands import ReceiveCase
    from controller.core.errors import Refused

    taken = core_hall.HANDLERS[ReceiveCase]

    def refusing(hall, cmd, now):  # noqa: ANN001, ANN202
        if cmd.applicant == "赵*":
            raise Refused("matter_unknown", "本厅没有此事项", "no such matter here")
        return taken(hall, cmd, now)

    monkeypatch.setitem(core_hall.HANDLERS, ReceiveCase, refusing)
    async with AsyncExitStack() as stack:
        county = await stack.enter_async_context(hall_server(config("county", "county", lower="town"),
                                                             tmp_path / "county"))
        await admit(county, "town", tmp_path / "town")
        town = await stack.enter_async_context(hall_server(config(
            "town", "town", ("county", county.broker_own.address.port)), tmp_path / "town"))
        for hall in (county, town):
            await hall.engine.execute(SetMatters(matters=[{**U15, "form": "upper"}]), DESK)
        refused = await send_up(town, "赵六")
        taken_up = await send_up(town, "钱七")
        await until(lambda: has(county, "town", 1), 20)
        assert list(await cases_from(county, "town")) == [taken_up]
        assert county.engine.hall.inbox[("town", "up")].applied == 1       # it took number 1
        await until(lambda: upper_known(town, taken_up), 20)
        await until(lambda: is_state(town, refused, "accepted"), 20)
        state = await town.engine.settled()
        shown = case_view(state, state.cases.by_number[refused], state.day)
        assert "上级大厅拒收（本厅没有此事项）" in shown["refused_above"] and "escalate" in shown["actions"]
        link = town.runner.app[TIERS]
        assert link.counts["refused_there"] == 1
        assert [r["key"] for r in link.status()["refused_there"]["up"]] == [refused]


@pytest.mark.slow
async def test_the_county_overview_follows_the_halls_below_live(tmp_path):
    """The county's page shows each hall below as it reports itself — its line, within a
    second of a ticket taken there — and, when a hall goes away, since when."""
    from aiohttp import web
    from playwright.async_api import async_playwright, expect

    from controller.auth.accounts import Accounts
    from controller.cli_auth import open_hall_db
    from controller.core.commands import Take
    from tests.axe import assert_accessible
    from tests.pagehelp import PASSWORD
    from tests.test_admin_pages import _signed_in
    from tests.test_pages import CHROMIUM, browser_or_skip, shots

    browser_or_skip()
    db = await open_hall_db(tmp_path / "county", None)
    try:
        await Accounts(db, "county").add_user("admin", ["admin"], PASSWORD)
    finally:
        await db.dispose()
    async with AsyncExitStack() as stack:
        county = await stack.enter_async_context(hall_server(config("county", "county", lower="town"),
                                                             tmp_path / "county"))
        site = web.TCPSite(county.runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
        await admit(county, "town", tmp_path / "town")
        town_stack = AsyncExitStack()
        town = await town_stack.enter_async_context(hall_server(config(
            "town", "town", ("county", county.broker_own.address.port)), tmp_path / "town"))
        link = county.runner.app[TIERS]

        async def heard(key: str, value: object) -> bool:
            return link.overview.get("town", {}).get(key) == value

        await until(lambda: heard("online", True), 15)
        p = await stack.enter_async_context(async_playwright())
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await _signed_in(browser, base, path="/admin/county",
                                    viewport={"width": 1366, "height": 768})
            rows = page.locator("table.county tbody tr")
            await expect(rows).to_have_count(2)
            await expect(rows.nth(1)).to_contain_text("在线")
            for _ in range(3):
                await town.engine.execute(Take(service="A"), Source("device:kiosk", Origin.MQTT))
            await expect(rows.nth(1).locator("td").nth(1)).to_contain_text("3", timeout=3000)   # live
            await expect(page.locator("table.county tfoot")).to_contain_text("合计")
            await assert_accessible(page)
            await page.screenshot(path=shots(tmp_path) / "page-admin-county.png", full_page=True)
            await town_stack.aclose()                                  # the town goes away
            await expect(rows.nth(1)).to_contain_text("失联，自", timeout=5000)
        finally:
            await browser.close()


@pytest.mark.slow
async def test_a_village_clerk_sends_a_proxy_case_up_from_the_desk_page(tmp_path):
    """A village room (one clerk, no queue hardware): the clerk finds the matter, opens the
    proxy case (代办) on the desk page and sends it up with one button; the town receives it."""
    from aiohttp import web
    from playwright.async_api import async_playwright, expect

    from controller.auth.accounts import Accounts
    from controller.cli_auth import open_hall_db
    from tests.axe import assert_accessible
    from tests.pagehelp import PASSWORD
    from tests.test_desk_pages import DESK_PC, _page
    from tests.test_pages import CHROMIUM, browser_or_skip, shots

    browser_or_skip()
    async with AsyncExitStack() as stack:
        town = await stack.enter_async_context(hall_server(config("town", "town", lower="village"),
                                                           tmp_path / "town"))
        await town.engine.execute(SetMatters(matters=[U15]), DESK)
        await admit(town, "village", tmp_path / "village")
        db = await open_hall_db(tmp_path / "village", None)
        try:
            await Accounts(db, "village").add_user("cunwu", ["desk"], PASSWORD, "村务员", staff="1001")
        finally:
            await db.dispose()
        village = await stack.enter_async_context(hall_server(config(
            "village", "village", ("town", town.broker_own.address.port)), tmp_path / "village"))
        await village.engine.execute(SetMatters(matters=[{**U15, "form": "upper", "materials": ["申请书"]}]),
                                     DESK)
        site = web.TCPSite(village.runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
        p = await stack.enter_async_context(async_playwright())
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            desk, errors = await _page(browser, base, "cunwu", "/desk")
            await desk.locator("#matter-q").fill("ckxk")                 # 采矿许可 by pinyin initials
            await desk.get_by_role("button", name="采矿许可").click()
            form = desk.locator("#case-form")
            await form.get_by_role("checkbox", name="申请书", exact=True).check()
            await form.locator("#c-applicant").fill("王大山")
            await form.get_by_role("button", name="受理").click()
            card = desk.locator(".case-card")
            await expect(card).to_contain_text("已受理")
            number = (await card.locator(".case-number").inner_text()).strip()
            await card.get_by_role("button", name="上报上级办理").click()
            await expect(desk.locator("#toast")).to_contain_text("已完成")
            await until(lambda: has(town, "village", 1), 15)
            forwarded = (await cases_from(town, "village"))[number]
            assert forwarded.applicant == "王*山" and forwarded.materials == ("申请书",)
            await until(lambda: upper_known(village, number), 15)       # the town's number came back
            assert BUS not in village.runner.app and not (tmp_path / "village" / "broker").exists()
            await assert_accessible(desk)
            await desk.set_viewport_size(DESK_PC)
            await desk.screenshot(path=shots(tmp_path) / "page-desk-village.png")
            # a case the town refuses for good: back on the desk's list, its card says why
            second = (await village.engine.execute(OpenCase(matter="U15", applicant="李小河"), DESK))["case"]
            await village.engine.execute(CaseStep(number=second["number"], action="escalate"), DESK)
            await village.engine.execute(UpperRefused(number=second["number"], reason="本厅没有此事项"),
                                         Source("hall:town", Origin.TIER))
            await desk.reload()
            row = desk.locator("#desk-cases tbody tr").first
            await expect(row).to_contain_text("上级拒收")
            await row.get_by_role("button", name="处理").click()
            await expect(desk.locator("#case-result .case-card .alert")).to_contain_text(
                "上级大厅拒收（本厅没有此事项）")
            card = desk.locator("#case-result")
            await expect(card.get_by_role("button", name="上报上级办理")).to_be_visible()
            await assert_accessible(desk)
            await desk.screenshot(path=shots(tmp_path) / "page-desk-refused-above.png")
            assert errors == [], errors
        finally:
            await browser.close()


async def upper_known(hall: HallServer, number: str) -> bool:
    return (await hall.engine.settled()).cases.by_number[number].upper_number is not None


@pytest.mark.slow
async def test_a_silent_cut_between_town_and_county_loses_and_repeats_nothing(tmp_path):
    """The line between the town and the county goes dead without a word (no FIN, no RST:
    ``tests.netcut``) while both sides go on working: the town's link notices by its keepalive,
    the county's overview shows the town unreachable, and when the line comes back everything
    owed crosses, each case and each step once, in order per case."""
    from tests.netcut import Cut

    async with AsyncExitStack() as stack:
        county = await stack.enter_async_context(hall_server(config("county", "county", lower="town"),
                                                             tmp_path / "county"))
        line = Cut(county.broker_own.address)
        through = await line.start()
        stack.push_async_callback(line.stop)
        await admit(county, "town", tmp_path / "town")
        town = await stack.enter_async_context(hall_server(config("town", "town", ("county", through.port)),
                                                           tmp_path / "town"))
        for hall, form in ((county, "promised"), (town, "upper")):
            await hall.engine.execute(SetMatters(matters=[{**U15, "form": form}]), DESK)
        overview = county.runner.app[TIERS].overview
        up = town.runner.app[TIERS].links[0]

        before = [await send_up(town, f"申请人{i}") for i in range(20)]
        await until(lambda: has(county, "town", 20))
        await until(lambda: _true(overview.get("town", {}).get("online")), 15)
        line.cut()
        during = [await send_up(town, f"断线{i}") for i in range(10)]
        await decide_all(county, "town")                       # their results wait at the county
        await until(lambda: _true(not up.connected.is_set()), 60)            # the keepalive noticed
        await until(lambda: _true(overview["town"]["online"] is False), 60)   # and the county's broker
        assert len(await cases_from(county, "town")) == 20
        assert await states(town, before) == {"escalated"}
        line.heal()
        await until(lambda: has(county, "town", 30), 60)
        await decide_all(county, "town")
        await until(lambda: decided(town, [*before, *during]), 60)
        assert sorted(await cases_from(county, "town")) == sorted([*before, *during])
        steps = await remote_steps(town)
        for number in [*before, *during]:
            assert steps[number] == ["accepted", "in_review", "decided"], number
        assert county.engine.hall.inbox[("town", "up")].applied == 30
        await until(lambda: _true(overview["town"]["online"]), 15)


async def test_a_new_epoch_starts_only_at_its_first_message(db, clock):
    """A hall restored from a backup numbers afresh from what it counts as delivered (``base``):
    its first message starts the new epoch; a later one that overtook it does not, and waits.
    A mark from before epochs takes the sender's first epoch and goes on counting."""
    from controller.core.commands import ReceiveCase
    from controller.core.errors import Refused
    from controller.engine import Engine

    engine = Engine(config("county", "county", lower="town"), db, clock)
    await engine.start()
    try:
        async def send(seq: int, epoch: str, base: int | None) -> dict[str, Any]:
            return await engine.execute(ReceiveCase(
                peer="town", seq=seq, epoch=epoch, base=base, number=f"town-{epoch}-{seq}", matter="U15",
                matter_name="采矿许可", department="自然资源局", limit_days=15, applicant="张*丰",
                accepted_on="2026-11-30"), Source("hall:town", Origin.TIER))

        await send(1, "", None)                                   # from before epochs
        await send(2, "aaaa", 1)                                  # the same numbering goes on
        assert engine.hall.inbox[("town", "up")].applied == 2
        with pytest.raises(Refused, match="out_of_order"):
            await send(4, "aaaa", 2)
        await send(3, "aaaa", 2)
        with pytest.raises(Refused, match="new_epoch"):           # restored there: 2 was lost on the way
            await send(3, "bbbb", 1)
        assert (await send(2, "bbbb", 1))["applied"] == 2         # its first message
        assert (await send(3, "bbbb", 1))["applied"] == 3
        mark = engine.hall.inbox[("town", "up")]
        assert (mark.epoch, mark.applied) == ("bbbb", 3)
        assert sum(c.origin_hall == "town" for c in (await engine.settled()).cases.by_number.values()) == 5
    finally:
        await engine.stop()

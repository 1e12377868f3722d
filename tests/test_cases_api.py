"""The cases API: the desk opens a case (the ID number checked, sealed, masked), the back office
moves it on, each by the permission its route declares; the whole ID number only to a role
that may see it and audited; citizens read the status by the QR token or by number and query
code, with nothing personal beyond the masked name; bad input changes nothing."""

from __future__ import annotations

import json

from sqlalchemy import select

from controller.core.commands import CaseStep, Origin, SetMatters, Source
from controller.storage import schema
from controller.storage.case_figures import on_time
from controller.web.api import ENGINE
from tests.test_security_web import add_user, origin, server, sign_in  # noqa: F401 - the fixture

ID = "110101199003074573"          # a made-up number with a right check digit
MATTER = {"code": "GT01", "name": "个体工商户设立登记", "department": "市场监管局", "promised_days": 3,
          "statutory_days": 15, "materials": ["身份证", "经营场所证明"], "windows": ["2"]}


async def _catalogue(client) -> None:  # noqa: ANN001
    await client.app[ENGINE].execute(SetMatters(matters=[MATTER]), Source("user:admin", Origin.ADMIN))


async def _as(client, name: str, *roles: str, tmp_path,  # noqa: ANN001
              staff: str | None = None) -> dict[str, str]:
    await add_user(tmp_path, name, *roles, staff=staff)
    client.session.cookie_jar.clear()
    return {**origin(client), "X-CSRF-Token": await sign_in(client, name)}


async def test_the_desk_opens_a_case_and_the_back_office_moves_it_to_pick_up(server, tmp_path):  # noqa: F811
    await _catalogue(server)
    desk = await _as(server, "zongtai", "desk", tmp_path=tmp_path)
    bad = await server.post("/api/cases", json={"matter": "GT01", "applicant": "张三丰",
                                                 "id_number": ID[:-1] + "0"}, headers=desk)
    assert bad.status == 400
    assert (await bad.json())["error"]["problems"][0]["key"] == "id_number"
    assert not server.app[ENGINE].hall.cases.by_number                    # nothing opened

    r = await server.post("/api/cases", json={"matter": "GT01", "applicant": "张三丰", "id_number": ID,
                                               "phone": "13800001234", "materials": ["身份证"],
                                               "missing": ["经营场所证明"], "tolerated": True}, headers=desk)
    assert r.status == 201, await r.text()
    case = (await r.json())["case"]
    number = case["number"]
    assert case["state"] == "accepted" and case["tolerated"] and case["id_masked"] == "110101********4573"
    assert ID not in await r.text()
    async with server.app[ENGINE].db.connect() as conn:                    # sealed at rest
        row = (await conn.execute(select(schema.cases).where(
            schema.cases.c.number == number))).mappings().one()
    assert ID not in json.dumps({k: str(v) for k, v in row.items()}) and row["id_sealed"].startswith("v1.")

    whole = await server.get(f"/api/cases/{number}/applicant")
    assert whole.status == 200 and (await whole.json())["id_number"] == ID
    assert (await server.post(f"/api/cases/{number}/review", json={}, headers=desk)).status == 403
    assert (await server.post(f"/api/cases/{number}/hand_off", json={}, headers=desk)).status == 200

    clerk = await _as(server, "lina", "clerk", tmp_path=tmp_path, staff="1002")
    assert (await server.get(f"/api/cases/{number}/applicant")).status == 403   # not for a clerk
    listed = (await (await server.get("/api/cases?window=2")).json())["cases"]
    assert [c["number"] for c in listed] == [number] and listed[0]["id_masked"].count("*") == 8
    for action, body in (("review", {}), ("decide", {"decision": "approved"}), ("ready", {}),
                         ("hand_over", {})):
        step = await server.post(f"/api/cases/{number}/{action}", json=body, headers=clerk)
        assert step.status == 200, (action, await step.text())
    done = (await step.json())["case"]
    assert done["state"] == "handed_over" and done["on_time"] is True
    again = await server.post(f"/api/cases/{number}/review", json={}, headers=clerk)
    assert again.status == 409 and (await again.json())["error"]["code"] in ("bad_transition", "unknown_case")

    # the citizen: by the QR code's token, and at the terminal by number and query code
    token, code = done["status_path"].removeprefix("/c/"), done["query_code"]
    server.session.cookie_jar.clear()
    public = await (await server.get(f"/api/case-status/{token}")).json()
    assert public["case"]["state_name"] == "已取件" and public["case"]["applicant"] == "张*丰"
    assert ID[-4:] not in json.dumps(public, ensure_ascii=False) and "13800001234" not in json.dumps(public)
    by_code = await server.post("/api/case-status", json={"number": number, "code": code},
                                headers=origin(server))
    assert (await by_code.json())["case"]["number"] == number
    page = await server.get(f"/c/{token}")
    assert page.status == 200 and page.headers["Referrer-Policy"] == "no-referrer"


async def test_the_whole_id_number_is_audited_each_time_it_is_seen(server, tmp_path):  # noqa: F811
    await _catalogue(server)
    desk = await _as(server, "zongtai", "desk", tmp_path=tmp_path)
    opened = await server.post("/api/cases", json={"matter": "GT01", "applicant": "李四", "id_number": ID},
                               headers=desk)
    number = (await opened.json())["case"]["number"]
    for _ in range(2):
        assert (await server.get(f"/api/cases/{number}/applicant")).status == 200
    server.session.cookie_jar.clear()
    await sign_in(server)                                                  # the administrator reads the log
    entries = (await (await server.get("/api/audit?action=case_id_viewed")).json())["entries"]
    assert [(e["actor"], e["target"]) for e in entries] == [("user:zongtai", f"case:{number}")] * 2


async def test_wrong_query_codes_are_throttled_and_bad_input_changes_nothing(server, tmp_path):  # noqa: F811
    await _catalogue(server)
    desk = await _as(server, "zongtai", "desk", tmp_path=tmp_path)
    for body, status in (({"matter": "NOPE", "applicant": "王五"}, 404),
                         ({"matter": "GT01", "applicant": ""}, 400),
                         ({"matter": "GT01", "applicant": "王五", "accepted_on": "2099-01-01"}, 409),
                         ({"matter": "GT01", "applicant": "王五", "ticket": "Z999"}, 404)):
        r = await server.post("/api/cases", json=body, headers=desk)
        assert r.status == status, (body, await r.text())
    assert not server.app[ENGINE].hall.cases.by_number
    number = (await (await server.post("/api/cases", json={"matter": "GT01", "applicant": "王五"},
                                        headers=desk)).json())["case"]["number"]
    assert (await server.post(f"/api/cases/{number}/ready", json={}, headers=desk)).status == 403
    server.session.cookie_jar.clear()
    statuses = []
    for _ in range(14):
        r = await server.post("/api/case-status", json={"number": number, "code": "000000"},
                              headers=origin(server))
        statuses.append(r.status)
    assert statuses[:10] == [404] * 10 and 429 in statuses[10:]


async def test_the_on_time_rate_counts_cases_decided_by_their_due_day(server, tmp_path):  # noqa: F811
    await _catalogue(server)
    desk = await _as(server, "zongtai", "desk", tmp_path=tmp_path)
    numbers = []
    for accepted_on in (None, "2026-11-02", "2026-11-03"):      # today; two entered after the fact
        body = {"matter": "GT01", "applicant": "王五", "accepted_on": accepted_on}
        opened = await server.post("/api/cases", json=body, headers=desk)
        numbers.append((await opened.json())["case"]["number"])
    engine = server.app[ENGINE]
    for number in numbers[:2]:
        for action in ("hand_off", "review"):
            await engine.execute(CaseStep(number=number, action=action), Source("user:lina", Origin.HTTP))
    clerk = await _as(server, "lina", "clerk", tmp_path=tmp_path, staff="1002")
    for number in numbers[:2]:                                   # decided today: on time, and late
        r = await server.post(f"/api/cases/{number}/decide", json={"decision": "approved"}, headers=clerk)
        assert r.status == 200, await r.text()
    today = engine.hall.day
    rates = await on_time(engine.db, engine.config.hall.id, today.replace(day=1), today)
    row = next(r for r in rates["window"] if r["key"] == "2")
    assert (row["decided"], row["on_time"], row["rate"], row["overdue"]) == (2, 1, 0.5, 1)

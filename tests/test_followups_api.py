"""Follow-ups over HTTP: a supervisor works them, a clerk sees their own ratings and nobody
else's, and no answer names who rated."""

from __future__ import annotations

from controller.core.commands import CallNext, Evaluate, Login, Origin, Rate, Source, Take
from controller.web.api import ENGINE
from tests.test_security_web import add_user, origin, server, sign_in  # noqa: F401 - the fixture

PAD = Source("device:caller-w01", Origin.MQTT)


async def _rated(client, window: str, staff: str, level: str) -> str:  # noqa: ANN001
    engine = client.app[ENGINE]
    await engine.execute(Take(service="A"), PAD)
    hall = await engine.settled()
    if hall.desk.windows[window].clerk != staff:
        await engine.execute(Login(window=window, staff=staff), PAD)
    await engine.execute(CallNext(window=window), PAD)
    session = (await engine.execute(Evaluate(window=window), PAD))["evaluation"]["session"]
    reasons = ("attitude",) if "dissatisfied" in level else ()
    await engine.execute(Rate(window=window, session=session, level=level, reasons=reasons),
                         Source("device:evaluator", Origin.MQTT))
    return session


async def test_a_supervisor_follows_up_and_a_clerk_sees_only_their_own(server, tmp_path):  # noqa: F811
    mine = await _rated(server, "1", "1001", "dissatisfied")
    await _rated(server, "1", "1001", "very_satisfied")
    theirs = await _rated(server, "2", "1002", "very_dissatisfied")
    await add_user(tmp_path, "zhang", "supervisor")
    await add_user(tmp_path, "wangfang", "clerk", staff="1001")

    csrf = await sign_in(server, "zhang")
    h = {**origin(server), "X-CSRF-Token": csrf}
    listed = (await (await server.get("/api/followups")).json())["followups"]
    assert {f["session"] for f in listed} == {mine, theirs}
    assert all("rater" not in f for f in listed)
    r = await server.post(f"/api/followups/{mine}/visit", json={"note": "已电话回访"}, headers=h)
    assert r.status == 200 and (await r.json())["followup"]["state"] == "visited"
    bad = await server.post(f"/api/followups/{mine}/feed_back", json={}, headers=h)
    assert bad.status == 409 and (await bad.json())["error"]["code"] == "bad_transition"
    assert (await server.post("/api/followups/nope/visit", json={}, headers=h)).status == 404

    server.session.cookie_jar.clear()
    await sign_in(server, "wangfang")
    own = await (await server.get("/api/my/ratings")).json()
    assert own["staff"] == "1001"
    assert sorted((r["level"], r["followup"]) for r in own["ratings"]) == [
        ("dissatisfied", "visited"), ("very_satisfied", None)]                # not 1002's 差评
    assert {r["window"] for r in own["ratings"]} == {"1"}
    assert (await server.get("/api/followups")).status == 403              # not the supervisor's list


async def test_the_evaluation_records_export_with_gbt_39046_items(server, tmp_path):  # noqa: F811
    import csv
    import io

    import openpyxl

    from controller.core.commands import FollowupStep

    bad = await _rated(server, "1", "1001", "very_dissatisfied")
    await _rated(server, "1", "1001", "satisfied")
    engine = server.app[ENGINE]
    boss, other = Source("user:zhang", Origin.HTTP), Source("user:wang", Origin.HTTP)
    await engine.execute(FollowupStep(session=bad, action="appeal", note="误按"), boss)
    await engine.execute(FollowupStep(session=bad, action="uphold", note="核实为误评"), other)
    await add_user(tmp_path, "zhang", "supervisor")
    await sign_in(server, "zhang")
    records = (await (await server.get("/api/reports/evaluations.json")).json())["records"]
    assert [(r["satisfaction"], r["code"], r["count"], r["excluded"], r["rater"]) for r in records] == [
        ("非常不满意", 1, 1, True, "匿名"), ("满意", 4, 1, False, "匿名")]
    assert records[0]["text"] == "服务态度" and records[0]["region"] == "000000"
    assert len(records[0]["time"]) == 15 and records[0]["time"][8] == "T"         # YYYYMMDDThhmmss
    text = (await (await server.get("/api/reports/evaluations.csv")).read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["办件编号", "评价渠道", "评价人", "评价时间"] and len(rows) == 3
    xlsx = await (await server.get("/api/reports/evaluations.xlsx")).read()
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    assert [c.value for c in book.active[2]][5:7] == ["非常不满意", 1]
    day = engine.hall.day.isoformat()
    stats = await (await server.get(f"/api/stats?from={day}&to={day}&by=window")).json()
    window_1 = next(r for r in stats["rows"] if r["key"] == "1")["ratings"]      # the appeal upheld:
    assert (window_1["excluded"], window_1["rated"], window_1["bad"], window_1["good_rate"]) == \
        (1, 1, 0, 1.0)                                                          # out of the rates

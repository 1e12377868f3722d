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

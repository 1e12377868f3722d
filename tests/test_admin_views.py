"""The admin application without a browser: what each role is shown, the English switch, and
the dashboard's rules (a wait alert with the windows that could open, the day's figures)."""

from __future__ import annotations

import pytest

from controller.core.commands import CallNext, Login, Take
from controller.web.admin import dashboard
from tests.helpers import MONDAY_9, demo_config, new_hall
from tests.test_security_web import add_user, server, sign_in  # noqa: F401 - the fixture


async def test_a_supervisor_reads_the_configuration_but_gets_no_forms(server, tmp_path):  # noqa: F811
    await add_user(tmp_path, "zhang", "supervisor")
    await sign_in(server)
    admin_page = await (await server.get("/admin/config/services")).text()
    assert 'data-api="/api/config/services"' in admin_page and "新增业务" in admin_page
    server.session.cookie_jar.clear()
    await sign_in(server, "zhang")
    page = await (await server.get("/admin/config/services")).text()
    assert "综合受理" in page and "data-api" not in page and "新增业务" not in page
    menu = page.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert "值班看板" in menu and "业务" in menu and "用户" not in menu and "审计日志" not in menu
    r = await server.get("/admin/users")
    assert r.status == 403 and "没有权限" in await r.text()


async def test_the_english_switch_and_chinese_by_default(server):  # noqa: F811
    await sign_in(server)
    zh = await (await server.get("/admin")).text()
    assert '<html lang="zh-CN">' in zh and "值班看板" in zh
    server.session.cookie_jar.update_cookies({"yimen_lang": "en"})
    en = await (await server.get("/admin/config/devices")).text()
    assert '<html lang="en">' in en and "Devices" in en and "keypad" in en and "呼叫器" not in en


async def test_a_stranger_is_sent_to_sign_in_and_comes_back(server):  # noqa: F811
    r = await server.get("/admin/audit?actor=user:admin", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/login?next=/admin/audit?actor%3Duser:admin"


def test_a_long_wait_alerts_and_names_the_windows_that_could_open():
    hall, now = new_hall(demo_config()), MONDAY_9
    for _ in range(12):
        hall.apply(Take(service="B"), now)
    hall.apply(Login(window="4", staff="1004"), now)
    hall.apply(CallNext(window="4"), now)
    d = dashboard.dashboard(hall, None, now)
    b = next(s for s in d["lines"] if s["service"] == "B")
    assert b["alert"] and b["waiting"] == 11 and b["open_windows"] == 1
    assert b["could_open"] == ["5号窗口", "12号窗口 绿色通道"]          # closed windows serving B
    assert not next(s for s in d["lines"] if s["service"] == "A")["alert"]   # nobody waiting
    w4 = next(w for w in d["windows"] if w["window"] == "4")
    assert (w4["state"], w4["ticket"], w4["clerk"]) == ("called", "B001", "刘洋")
    assert d["figures"]["issued"] == 12 and d["figures"]["waiting"] == 11
    assert sum(d["figures"]["by_hour"]["tickets"]) == 12
    assert not d["bus"] and d["device_problems"] == []


@pytest.mark.slow
def test_bench_admin_measures_the_dashboard_of_a_big_hall():
    from tests.test_cli import yimen

    r = yimen("bench", "admin", "--requests", "20", "--dashboards", "3", "--seconds", "2")
    assert r.returncode == 0, r.stderr
    assert "60 windows and 300 devices" in r.stdout
    assert "/admin: p50" in r.stdout and "/admin/dashboard/panel: p50" in r.stdout
    assert "3 dashboards open" in r.stdout
    reads = int(r.stdout.split("commands, ")[1].split(" panel reads")[0])
    assert reads >= 3                                  # each open dashboard read its panel again


async def test_the_audit_log_is_found_by_a_persons_user_name(server):  # noqa: F811
    await sign_in(server)
    page = await (await server.get("/admin/audit?actor=admin")).text()
    assert "user:admin" in page and "没有符合条件的记录" not in page       # the sign-in itself
    assert "没有符合条件的记录" in await (await server.get("/admin/audit?actor=nobody")).text()


def test_overdue_bad_rating_follow_ups_show_on_the_dashboard():
    from controller.core.commands import Evaluate, Rate

    hall, now = new_hall(demo_config()), MONDAY_9
    hall.apply(Take(service="A"), now)
    hall.apply(Login(window="1", staff="1001"), now)
    hall.apply(CallNext(window="1"), now)
    session = hall.apply(Evaluate(window="1"), now)["evaluation"]["session"]
    hall.apply(Rate(window="1", session=session, level="very_dissatisfied"), now)
    assert dashboard.dashboard(hall, None, now)["followups"] == {"red": 0, "yellow": 0, "green": 1}
    hall.followups[session].colour = "red"               # as the scheduler leaves it once missed
    assert dashboard.dashboard(hall, None, now)["followups"]["red"] == 1

"""The matter catalogue (事项清单) around the core: files read and written (xlsx and CSV, Chinese
or English headers, UTF-8 or GB18030), broken rows named by row and column with nothing
imported, the demo hall's catalogue, the JSON API, the command line, and the admin page in a
browser."""

from __future__ import annotations

import asyncio
import base64
import io

import openpyxl
import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller import matters_io
from controller.cli_matters import DEMO_MATTERS, demo_catalogue
from controller.core.commands import Origin, SetMatters, Source
from controller.core.matters import Catalogue, Matter
from controller.engine import Engine
from controller.server import create_app
from controller.startup import data_folder_lock, migrate
from controller.storage.db import database_url, open_database
from controller.web.api import ENGINE
from tests.helpers import api_token, bearer, demo_config
from tests.test_cli_auth import yimen
from tests.test_security_web import add_user, origin, sign_in

WHO = Source("user:tests", Origin.HTTP)


def _demo() -> list[Matter]:
    return matters_io.load(DEMO_MATTERS.name, DEMO_MATTERS.read_bytes())


def _xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    ws = book.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


HEADER = ["事项编码", "事项名称", "事项类别", "实施部门", "办理形式", "法定时限", "承诺时限", "申请材料",
          "办理窗口"]
BROKEN = [HEADER,
          ["M-1", "营业执照遗失补领", "公共服务", "市场监管局", "即办件", 0, 0, "申请书；身份证", "1、2"],
          ["M-2", "食品经营许可", "行政许可", "市场监管局", "承诺件", "10个工作日", "20个工作日", "申请书",
           "1"],
          ["M 3", "", "行政许可", "市场监管局", "承诺件", 20, 5, "", ""],
          ["M-4", "药品零售", "许可", "市场监管局", "快办件", 20, "五天", "", ""],
          ["M-1", "重复的编码", "其他", "市场监管局", "承诺件", 20, 5, "", ""]]


# ---------------------------------------------------------------- files
def test_the_catalogue_goes_out_and_comes_back_the_same_as_xlsx_and_csv(tmp_path):
    matters = _demo()
    for name, data in (("m.xlsx", matters_io.to_xlsx(matters)), ("m.csv", matters_io.to_csv(matters))):
        assert matters_io.load(name, data) == matters, name
    book = openpyxl.load_workbook(io.BytesIO(matters_io.to_xlsx(matters)))
    ws = book.active
    assert [c.value for c in ws[1]][:3] == ["事项编码", "事项名称", "事项类别"] and ws["A1"].font.bold
    assert ws.freeze_panes == "A2" and ws.column_dimensions["I"].width >= 40
    joint = next(m for m in matters if m.form == "joint")
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == joint.code)
    assert row[4] == "联办件" and "\n" in row[8] and "、" in row[11]   # materials a line each
    with pytest.raises(ValueError, match="control characters"):       # nor in a worksheet
        Matter(code="C1", name="控制\x01字符", department="d")
    matters_io.write(tmp_path / "out.csv", matters)
    assert (tmp_path / "out.csv").read_bytes().startswith(b"\xef\xbb\xbf")   # Excel reads it as UTF-8


def test_csv_in_gb18030_english_headers_and_cells_as_people_write_them():
    text = ("code,name,category,department,form,statutory_days,promised_days,materials,windows,enabled\n"
            "X1,居民身份证换领,公共服务,公安局,承诺,60,20 个工作日,\"原身份证\n户口簿\",8,9,是\n")
    data = text.replace(",8,9,", ",\"8，9\",").encode("gb18030")
    [m] = matters_io.load("x.csv", data)
    assert (m.form, m.promised_days, m.materials, m.windows, m.category) == \
        ("promised", 20, ("原身份证", "户口簿"), ("8", "9"), "public_service")


def test_a_file_with_broken_rows_names_each_by_row_and_column_and_imports_nothing():
    checked = matters_io.check(matters_io.read("bad.xlsx", _xlsx(BROKEN)))
    assert checked.matters == []
    where = {(p["row"], p["column"]) for p in checked.problems}
    assert where == {(3, "承诺时限"), (4, "事项编码"), (4, "事项名称"), (5, "事项类别"), (5, "办理形式"),
                     (5, "承诺时限"), (6, "事项编码")}
    said = {p["message"] for p in checked.problems}
    assert "第 3 行「承诺时限」：承诺时限不能超过法定时限" in said
    assert "第 5 行「事项类别」：“许可”不可用，应为行政许可、非行政许可审批、公共服务、其他" in said
    assert "第 5 行「承诺时限」：“五天”不可用，应为工作日数，如 5 或 5个工作日" in said
    assert "第 6 行「事项编码」：编码 M-1 与第 2 行重复" in said
    with pytest.raises(matters_io.CatalogueFileError) as refused:
        matters_io.load("bad.xlsx", _xlsx(BROKEN))
    assert refused.value.message.startswith("事项清单有 7 处错误")


@pytest.mark.parametrize(("name", "data", "said"), [
    ("m.xlsx", b"not a zip at all", "不是有效的 xlsx"),
    ("m.xlsx", b"PK\x03\x04broken", "不是有效的 xlsx"),
    ("m.csv", b"", "文件是空的"),
    ("m.csv", "\n\n".encode(), "文件是空的"),
    ("m.csv", "事项编码,事项名称,实施部门\n".encode(), "没有事项"),
    ("m.pdf", b"%PDF-1.4", "只能导入 .xlsx 或 .csv"),
    ("m.xls", b"\xd0\xcf\x11\xe0", "不支持旧版 .xls"),
    ("m.csv", b"x" * (matters_io.MAX_FILE + 1), "文件过大"),
    ("m.csv", "事项编码,事项名称,实施部门\nA,甲,乙,多出来的\n".encode(), "第 2 行有表头之外的内容"),
])
def test_files_that_cannot_be_read_at_all_are_refused_clearly(name, data, said):
    with pytest.raises(matters_io.CatalogueFileError) as refused:
        matters_io.read(name, data)
    assert said in refused.value.message


def test_unknown_and_missing_columns_are_named():
    data = "事项编码,事项名称,经办人,备注\nA,甲,张三,x\n".encode()
    with pytest.raises(matters_io.CatalogueFileError) as refused:
        matters_io.read("m.csv", data)
    said = [zh for _, zh, _ in refused.value.problems]
    assert said[:2] == [f"表头「经办人」：未知的列（可用：{'、'.join(matters_io.HEADERS.values())}）",
                        f"表头「备注」：未知的列（可用：{'、'.join(matters_io.HEADERS.values())}）"]
    assert said[2] == "表头「实施部门」：缺少必需的列"


def test_pinyin_initials_find_the_business_licence():
    cat = Catalogue()
    for m in _demo():
        cat.put(m)
    assert [m.name for m in cat.search("yyzz")] == ["营业执照遗失补领、换发"]
    assert cat.search("bdczy")[0].name == "不动产转移登记"
    assert cat.search("330100-GA-00", 3)[0].code == "330100-GA-001"


# ---------------------------------------------------------------- the demo catalogue
async def test_the_demo_catalogue_imports_clean_into_an_empty_hall_once(tmp_path):
    matters = _demo()
    assert len(matters) >= 40
    assert {m.service for m in matters} == {"A", "B", "C", "D", "E"}
    assert {m.form for m in matters} == {"instant", "promised", "joint", "upper"}
    windows = {w.id for w in demo_config().windows}
    assert all(set(m.windows) <= windows and m.statutory_days >= m.promised_days for m in matters)
    db = open_database(database_url(None, tmp_path))
    try:
        await migrate(db)
        engine = Engine(demo_config(), db)
        await engine.start()
        try:
            assert await demo_catalogue(engine) == len(matters)
            assert await demo_catalogue(engine) == 0                   # the hall has its own now
        finally:
            await engine.stop()
        engine = Engine(demo_config(), db)                              # stored: read back at start
        await engine.start()
        try:
            assert len((await engine.settled()).catalogue.matters) == len(matters)
        finally:
            await engine.stop()
    finally:
        await db.dispose()


# ---------------------------------------------------------------- the API
@pytest.fixture
async def server(tmp_path, clock):
    await add_user(tmp_path, "admin", "admin")
    await add_user(tmp_path, "desk1", "desk")
    app = create_app(demo_config(), tmp_path, clock=clock, bus=False)
    async with TestClient(TestServer(app)) as c:
        yield c


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_the_api_lists_finds_adds_changes_removes_and_imports(server, tmp_path):
    h = {**origin(server), "X-CSRF-Token": await sign_in(server)}
    imported = await server.post("/api/matters/import", headers=h, json={
        "filename": "demo.csv", "content": _b64(DEMO_MATTERS.read_bytes())})
    assert imported.status == 200, await imported.text()
    assert (await imported.json())["added"] == len(_demo())
    found = await (await server.get("/api/matters?q=yyzz")).json()
    assert [m["name"] for m in found["matters"]] == ["营业执照遗失补领、换发"]
    assert found["matters"][0]["form_name"] == "即办件" and found["total"] == len(_demo())
    by_service = await (await server.get("/api/matters?service=E&limit=100")).json()
    assert by_service["matters"] and {m["service"] for m in by_service["matters"]} == {"E"}

    new = {"code": "T-1", "name": "测试事项", "department": "测试局", "form": "promised",
           "statutory_days": 20, "promised_days": 30}
    wrong = await server.post("/api/matters", json=new, headers=h)
    assert wrong.status == 422
    assert (await wrong.json())["error"]["problems"][0]["key"] == "promised_days"
    added = await server.post("/api/matters", json={**new, "promised_days": 5}, headers=h)
    assert added.status == 201 and (await added.json())["added"] == 1
    again = await server.post("/api/matters", json={**new, "promised_days": 5}, headers=h)
    assert again.status == 409
    changed = await server.patch("/api/matters/T-1", json={"enabled": False, "materials": ["申请书"]},
                                 headers=h)
    assert changed.status == 200
    one = (await (await server.get("/api/matters/T-1")).json())["matter"]
    assert one["enabled"] is False and one["materials"] == ["申请书"] and one["promised_days"] == 5
    assert not (await (await server.get("/api/matters?q=cssx")).json())["matters"]   # disabled
    assert (await (await server.get("/api/matters?q=cssx&disabled=true")).json())["matters"]
    assert (await server.delete("/api/matters/T-1", headers=h)).status == 200
    assert (await server.get("/api/matters/T-1")).status == 404
    assert (await server.delete("/api/matters/T-1", headers=h)).status == 404
    assert (await server.delete("/api/matters/%11j", headers=h)).status == 400

    # a broken file: every problem by row and column, nothing changed; a dry run counts only
    bad = await server.post("/api/matters/import", headers=h, json={
        "filename": "bad.xlsx", "content": _b64(_xlsx(BROKEN)), "replace": True})
    assert bad.status == 422
    problems = (await bad.json())["error"]["problems"]
    assert len(problems) == 7 and problems[0]["message_en"].startswith("row 3, column 承诺时限: ")
    dry = await (await server.post("/api/matters/import", headers=h, json={
        "filename": "ok.xlsx", "content": _b64(_xlsx(BROKEN[:2])), "replace": True, "dry_run": True})).json()
    assert dry == {"ok": True, "dry_run": True, "matters": 1, "added": 1, "changed": 0,
                   "removed": len(_demo())}
    assert (await (await server.get("/api/matters?limit=1")).json())["total"] == len(_demo())
    junk = await server.post("/api/matters/import", headers=h, json={"filename": "x.csv", "content": "%%%"})
    assert junk.status == 400

    xlsx = await server.get("/api/matters/export.xlsx")
    assert xlsx.status == 200 and xlsx.content_type == matters_io_media("xlsx")
    assert matters_io.load("x.xlsx", await xlsx.read()) == _demo()
    csv = await server.get("/api/matters/export.csv")
    assert csv.headers["Content-Disposition"].startswith('attachment; filename="matters-demo-')
    assert matters_io.load("x.csv", await csv.read()) == _demo()
    entries = (await (await server.get("/api/audit?action=matters_import")).json())["entries"]
    assert len(entries) == 1 and entries[0]["detail"]["filename"] == "demo.csv"


def matters_io_media(kind: str) -> str:
    from controller.web.matters_api import CSV, XLSX

    return XLSX if kind == "xlsx" else CSV


async def test_the_desk_reads_the_catalogue_and_may_not_change_it(server, tmp_path):
    desk = await bearer(demo_config(), tmp_path, "desk")
    assert (await server.get("/api/matters", headers=desk)).status == 200
    refused = await server.post("/api/matters", headers=desk,
                                json={"code": "Z", "name": "z", "department": "d"})
    assert refused.status == 403
    viewer = await bearer(demo_config(), tmp_path, "viewer")
    assert (await server.get("/api/matters", headers=viewer)).status == 403


async def test_a_large_import_is_accepted_and_a_too_large_body_refused(server):
    from controller.bench.matters import catalogue

    h = {**origin(server), "X-CSRF-Token": await sign_in(server)}
    big = matters_io.to_xlsx(catalogue())
    r = await server.post("/api/matters/import", headers=h, json={"filename": "d.xlsx", "content": _b64(big)})
    assert r.status == 200 and (await r.json())["matters"] == 900
    huge = await server.post("/api/matters/import", headers=h,
                             json={"filename": "d.csv", "content": "A" * (9 * 1024 * 1024)})
    assert huge.status in (400, 413)


# ---------------------------------------------------------------- the command line
def test_the_command_line_imports_checks_and_exports(tmp_path, monkeypatch, capsys):
    data = str(tmp_path / "data")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(_xlsx(BROKEN))
    code, out, err = yimen(monkeypatch, capsys, "matters", "import", str(bad), "--data", data)
    assert code == 1 and "第 3 行「承诺时限」" in err and "row 6, column 事项编码" in err
    code, out, _ = yimen(monkeypatch, capsys, "matters", "import", str(DEMO_MATTERS), "--dry-run",
                         "--data", data)
    assert code == 0 and f"新增 added {len(_demo())}" in out
    code, out, _ = yimen(monkeypatch, capsys, "matters", "import", str(DEMO_MATTERS), "--data", data)
    assert code == 0 and f"共 {len(_demo())} 项" in out
    one = tmp_path / "one.csv"
    one.write_bytes(matters_io.to_csv(_demo()[:1]))
    code, out, _ = yimen(monkeypatch, capsys, "matters", "import", str(one), "--replace", "--data", data)
    assert code == 0 and f"删除 removed {len(_demo()) - 1}" in out
    for name in ("out.xlsx", "out.csv"):
        code, out, _ = yimen(monkeypatch, capsys, "matters", "export", str(tmp_path / name), "--data", data)
        assert code == 0 and "1 项" in out
        assert matters_io.load(name, (tmp_path / name).read_bytes()) == _demo()[:1]
    code, _, err = yimen(monkeypatch, capsys, "matters", "export", str(tmp_path / "out.pdf"), "--data", data)
    assert code == 1 and ".xlsx 或 .csv" in err


async def test_the_command_line_goes_through_the_running_server(tmp_path, monkeypatch, capsys):
    config = demo_config()
    with data_folder_lock(tmp_path):                  # as yimen serve holds it
        app = create_app(config, tmp_path, bus=False)
        async with TestClient(TestServer(app)) as client:
            monkeypatch.setenv("YIMEN_TOKEN", await api_token(config, tmp_path, "admin"))
            server = f"127.0.0.1:{client.server.port}"
            code, out, _ = await asyncio.to_thread(yimen, monkeypatch, capsys, "matters", "import",
                                                   str(DEMO_MATTERS), "--server", server,
                                                   "--data", str(tmp_path))
            assert code == 0 and f"共 {len(_demo())} 项" in out
            path = tmp_path / "out.xlsx"
            code, out, _ = await asyncio.to_thread(yimen, monkeypatch, capsys, "matters", "export", str(path),
                                                   "--server", server, "--data", str(tmp_path))
            assert code == 0 and matters_io.load("out.xlsx", path.read_bytes()) == _demo()


# ---------------------------------------------------------------- the page
async def test_the_page_lists_and_finds_as_one_types(server):
    await sign_in(server)
    engine = server.app[ENGINE]
    await engine.execute(SetMatters(matters=[m.model_dump(mode="json") for m in _demo()]), WHO)
    page = await (await server.get("/admin/matters")).text()
    assert "事项清单" in page and "营业执照遗失补领、换发" in page and 'href="/admin/matters"' in page
    part = await (await server.get("/admin/matters/list?q=bdczy")).text()
    assert "不动产转移登记" in part and "营业执照" not in part and "<html" not in part


@pytest.mark.slow
async def test_an_administrator_keeps_the_catalogue_in_the_browser(tmp_path, clock):
    from playwright.async_api import async_playwright, expect

    from tests.axe import assert_accessible
    from tests.bushelp import unique
    from tests.pagehelp import add_person
    from tests.test_admin_pages import _signed_in
    from tests.test_pages import CHROMIUM, browser_or_skip, served, shots

    browser_or_skip()
    config = unique(demo_config())
    async with served(config, tmp_path, clock) as (srv, base), async_playwright() as p:
        await add_person(srv)
        await srv.engine.execute(SetMatters(matters=[m.model_dump(mode="json") for m in _demo()]), WHO)
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            violations: list[str] = []
            page = await _signed_in(browser, base, path="/admin/matters", violations=violations)
            await expect(page.locator("h1")).to_have_text("事项清单")
            await expect(page.locator("nav a[aria-current=page]")).to_have_text("事项清单")
            await assert_accessible(page)

            # search as one types: pinyin initials, then a name
            box = page.locator("#matter-q")
            await box.press_sequentially("yyzz", delay=30)
            await expect(page.locator("#matter-list .item")).to_have_count(1)
            await expect(page.locator("#matter-list")).to_contain_text("营业执照遗失补领、换发")
            await box.fill("")
            await box.press_sequentially("不动产", delay=30)
            await expect(page.locator("#matter-list .item").first).to_contain_text("不动产")
            row = page.locator("#matter-list .item").first
            await row.locator("summary").click()
            await expect(row.locator("textarea[name=materials]")).to_be_visible()
            await assert_accessible(page)

            # add: a wrong limit first, its error beside the field; then right
            await page.locator("details.new > summary").click()
            new = page.locator("details.new form")
            await new.locator("[name=code]").fill("330100-TEST-001")
            await new.locator("[name=name]").fill("测试许可事项")
            await new.locator("[name=department]").fill("县测试局")
            await new.locator("[name=statutory_days]").fill("10")
            await new.locator("[name=promised_days]").fill("15")
            await new.locator("[name=materials]").fill("申请书\n营业执照\n")
            await new.locator("[name=service]").select_option("A")
            await new.get_by_role("button", name="新增").click()
            await expect(new.locator("[data-error-for=promised_days]")).to_have_text(
                "承诺时限不能超过法定时限")
            assert "330100-TEST-001" not in (await srv.engine.settled()).catalogue.matters
            await new.locator("[name=promised_days]").fill("5")
            await new.get_by_role("button", name="新增").click()
            await expect(page.locator("#toast")).to_have_text("已保存")
            added = (await srv.engine.settled()).catalogue.matters["330100-TEST-001"]
            assert added.materials == ("申请书", "营业执照") and added.service == "A"

            # import: a broken file (every problem shown, nothing changed), then a good one
            bad, good = tmp_path / "bad.xlsx", tmp_path / "good.csv"
            bad.write_bytes(_xlsx(BROKEN))
            good.write_bytes(matters_io.to_csv([*_demo()[:5], Matter(
                code="330100-NEW-1", name="新导入事项", department="县测试局", promised_days=3)]))
            await page.locator("details.import > summary").click()
            form = page.locator("#matters-import")
            await form.locator("input[type=file]").set_input_files(str(bad))
            await form.get_by_role("button", name="导入").click()
            await expect(form.locator(".form-error")).to_contain_text("事项清单有 7 处错误")
            await expect(form.locator("#import-problems li")).to_have_count(7)
            await expect(form.locator("#import-problems")).to_contain_text(
                "第 3 行「承诺时限」：承诺时限不能超过法定时限")
            await assert_accessible(page)
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=shots(tmp_path) / "page-admin-matters.png", full_page=False)
            assert "330100-NEW-1" not in (await srv.engine.settled()).catalogue.matters
            await form.locator("input[type=file]").set_input_files(str(good))
            await form.get_by_role("button", name="只检查").click()
            await expect(page.locator("#import-result")).to_contain_text("新增 1 项，修改 5 项，删除 0 项")
            await form.get_by_role("button", name="导入", exact=True).click()
            await expect(page.locator("#toast")).to_contain_text("已导入")
            assert "330100-NEW-1" in (await srv.engine.settled()).catalogue.matters
            href = await page.get_by_role("link", name="Excel (.xlsx)").get_attribute("href")
            assert href == "/api/matters/export.xlsx"
            assert not violations, violations
        finally:
            await browser.close()

"""The desk's printed notices (受理通知书, 一次性告知书, 不予受理通知书): one layout each, drawn for
the thermal printer (80 and 58 mm) and as an A4 PDF. ``YIMEN_UPDATE_SCREENSHOTS=1`` writes
docs/images/notice-*.png (the thermal slips and each PDF's first page)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest
from PIL import Image

from devices.printer import FilePrinter, TicketPrinter
from display import notices
from display.fonts import print_font
from display.notices import AcceptanceContent, RejectionContent, SupplementContent

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "images"
REQUIRED = os.environ.get("YIMEN_REQUIRE_SERVICES", "") not in ("", "0")

ACCEPTANCE = AcceptanceContent(
    hall="一门政务服务中心", case_number="330106-01-20261130-0042",
    matter_name="公共场所卫生许可（新办）", matter_code="330106-XK-0231", applicant="张*三",
    accepted_at=datetime(2026, 11, 30, 9, 42),
    materials=("公共场所卫生许可申请表（原件1份）", "营业执照复印件（1份）", "从业人员健康合格证明",
               "卫生管理制度"),
    promised_date=date(2026, 12, 8), limit_days=5, window="3号窗口", department="区卫生健康局",
    status_url="http://hall.local/c/8f2c41e0", query_code="482913",
    printed_at=datetime(2026, 11, 30, 9, 43), officer="李*", contact="0571-88001234")
SUPPLEMENT = SupplementContent(
    hall="一门政务服务中心", reference="330106-01-20261130-0043", matter_name="食品经营许可（变更）",
    issued_on=date(2026, 11, 30),
    missing=(("法定代表人身份证明复印件", "须加盖单位公章"),
             ("经营场所平面布局图", "标明各功能区及设备位置，比例不小于1:100"),
             ("食品安全管理制度", "")),
    deadline=date(2026, 12, 7), where="一门政务服务中心一楼3号窗口（周一至周五 9:00-17:00）",
    applicant="王*", contact="0571-88001234")
REJECTION = RejectionContent(
    hall="一门政务服务中心", matter_name="建筑工程施工许可",
    reasons=("申请事项依法不属于本机关职权范围。",), decided_on=date(2026, 11, 30),
    reference="BYSL-20261130-003", applicant="赵*明", applied_on=date(2026, 11, 30),
    refer_to="市住房和城乡建设局")
CONTENTS = {"acceptance_notice": ACCEPTANCE, "supplement_notice": SUPPLEMENT,
            "rejection_notice": REJECTION}
SHORT = {"acceptance_notice": "acceptance", "supplement_notice": "supplement",
         "rejection_notice": "rejection"}
LONG_NAME = ("公共场所卫生许可（新办、延续、变更、注销）及其附属的从业人员健康检查、卫生检测报告"
             "备案和Sanitation-Permit-Registration-2026年度集中换证")


@pytest.fixture
def pdftoppm():
    return need_pdftoppm()


def need_pdftoppm() -> str:
    """The path of poppler's pdftoppm (Debian's poppler-utils); skips the test without it, or
    fails it when YIMEN_REQUIRE_SERVICES says the machine must have it."""
    path = shutil.which("pdftoppm")
    if path is None:
        if REQUIRED:
            pytest.fail("pdftoppm is required here (YIMEN_REQUIRE_SERVICES): install poppler-utils")
        pytest.skip("pdftoppm not installed (Debian's poppler-utils)")
    return path


def rasterise(pdftoppm: str, data: bytes, folder: Path, dpi: int = 100) -> list[Image.Image]:
    """Every page of the PDF ``data`` as a PNG, through pdftoppm."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "in.pdf").write_bytes(data)
    subprocess.run([pdftoppm, "-r", str(dpi), "-png", str(folder / "in.pdf"), str(folder / "page")],
                   check=True, capture_output=True, timeout=60)
    return [Image.open(p) for p in sorted(folder.glob("page-*.png"))]


def ink_right(image: Image.Image) -> int:
    """The rightmost column with a black dot."""
    box = Image.eval(image.convert("L"), lambda v: 255 - v).getbbox()
    assert box is not None, "nothing drawn"
    return box[2] - 1


def has_text(blocks: list[notices.Block], text: str) -> bool:
    return text in repr(blocks)


@pytest.mark.parametrize("kind", notices.KINDS)
@pytest.mark.parametrize("width", [notices.WIDTH_80MM, notices.WIDTH_58MM])
def test_each_notice_prints_on_thermal_paper_within_its_margins(kind, width):
    image = notices.thermal(kind, CONTENTS[kind], width)
    assert image.mode == "1" and image.width == width
    assert image.height > 500
    margin = notices._thermal_style(width).margin
    assert ink_right(image) < width - margin + 1
    box = Image.eval(image.convert("L"), lambda v: 255 - v).getbbox()
    assert box is not None and box[0] >= margin - 1


@pytest.mark.parametrize("kind", notices.KINDS)
def test_each_notice_is_an_a4_pdf_that_poppler_reads(kind, pdftoppm, tmp_path):
    data = notices.pdf(kind, CONTENTS[kind])
    assert data.startswith(b"%PDF-")
    pages = rasterise(pdftoppm, data, tmp_path)
    assert len(pages) == 1
    assert pages[0].size == (827, 1169) or pages[0].size == (827, 1170)   # A4 at 100 dpi
    assert pages[0].convert("L").getextrema()[0] == 0                        # something printed


def test_the_notices_say_what_the_rules_ask():
    accepted = notices.layout("acceptance_notice", ACCEPTANCE)
    for text in ("受理通知书", "330106-01-20261130-0042", "公共场所卫生许可（新办）", "330106-XK-0231",
                 "张*三", "2026年12月8日", "5个工作日", "3号窗口", "区卫生健康局", "482913",
                 "http://hall.local/c/8f2c41e0", "营业执照复印件（1份）", notices.SEAL, "打印时间"):
        assert has_text(accepted, text), text
    supplement = notices.layout("supplement_notice", SUPPLEMENT)
    for text in ("一次性告知", "请于2026年12月7日前补正", "须加盖单位公章", "一楼3号窗口", notices.SEAL):
        assert has_text(supplement, text), text
    rejected = notices.layout("rejection_notice", REJECTION)
    assert notices.Paragraph(notices.APPEAL) in rejected
    assert has_text(rejected, "市住房和城乡建设局") and has_text(rejected, "不属于本机关职权范围")
    numbered = [b for b in accepted if isinstance(b, notices.Numbered)]
    assert numbered and numbered[0].items == ACCEPTANCE.materials


def test_optional_fields_are_left_out_not_printed_empty():
    bare = dataclasses.replace(SUPPLEMENT, deadline=None, where="", contact="", applicant="")
    blocks = notices.layout("supplement_notice", bare)
    labels = [label for b in blocks if isinstance(b, notices.Fields) for label, _ in b.rows]
    assert "补正期限" not in labels and "申请人" not in labels and "提交地点" not in labels
    notices.thermal("supplement_notice", bare)


def test_a_kind_takes_its_own_content():
    with pytest.raises(TypeError):
        notices.layout("rejection_notice", ACCEPTANCE)
    with pytest.raises(ValueError):
        notices.layout("receipt", ACCEPTANCE)


@pytest.mark.parametrize("width", [notices.WIDTH_80MM, notices.WIDTH_58MM])
def test_a_long_matter_name_wraps_instead_of_being_cut(width):
    short = notices.thermal("acceptance_notice", ACCEPTANCE, width)
    long = notices.thermal("acceptance_notice", dataclasses.replace(ACCEPTANCE, matter_name=LONG_NAME),
                           width)
    assert long.height > short.height + 2 * notices._thermal_style(width).sizes["body"]
    assert ink_right(long) <= width - notices._thermal_style(width).margin


def test_a_long_matter_name_wraps_on_a4_too():
    content = dataclasses.replace(REJECTION, matter_name=LONG_NAME * 2)
    page = notices.pages("rejection_notice", content)[0]
    s = notices._a4_style()
    assert ink_right(page) <= s.width - s.margin


def test_a_long_materials_list_runs_onto_more_pages(pdftoppm, tmp_path):
    many = tuple(f"第{n}项申请材料：{'经公证的' * (n % 4)}相关证明文件复印件（加盖公章）"
                 for n in range(1, 61))
    longer = dataclasses.replace(ACCEPTANCE, materials=many)
    pages = rasterise(pdftoppm, notices.pdf("acceptance_notice", longer), tmp_path)
    assert len(pages) >= 2
    assert len(pages) == len(notices.pages("acceptance_notice", longer))
    s = notices._a4_style()
    for page in notices.pages("acceptance_notice", longer):
        box = Image.eval(page.convert("L"), lambda v: 255 - v).getbbox()
        assert box is not None and box[2] <= s.width - s.margin       # the footer sits in the margin


def test_wrapping_keeps_latin_words_and_numbers_together_and_punctuation_off_line_starts():
    font = print_font(24)
    text = "请携带营业执照编号 91330106MA2XXXXX1Y 的副本，以及2026-11-30出具的证明。"
    for width in range(120, 600, 7):
        lines = notices.wrap(text, font, width)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        assert all(font.getlength(line) <= width for line in lines)
        joined = "\n".join(lines)
        for word in ("91330106MA2XXXXX1Y", "2026-11-30"):
            if font.getlength(word) <= width:
                assert word in joined
        assert not any(line[:1] in "，。" for line in lines)
    # a case number wider than the line breaks after a hyphen; anything else wider, anywhere
    assert notices.wrap("330106-01-20261130-0042", print_font(18), 200) == ["330106-01-20261130-", "0042"]
    assert all(font.getlength(line) <= 100 for line in notices.wrap("x" * 80, font, 100))


def test_the_qr_code_has_whole_dots_per_module_and_decodes_if_a_decoder_is_here():
    import qrcode

    url = ACCEPTANCE.status_url
    image = notices.qr_image(url, 220)
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    dot = image.width // len(matrix)
    assert image.width == dot * len(matrix) <= 220 and dot >= 3
    for r, row in enumerate(matrix):
        for c, cell in enumerate(row):
            assert image.getpixel((c * dot + dot // 2, r * dot + dot // 2)) == (0 if cell else 255)
    try:
        from pyzbar.pyzbar import decode  # type: ignore[import-not-found]
    except ImportError:
        return                                # no decoder installed; none is added for this
    slip = notices.thermal("acceptance_notice", ACCEPTANCE)
    assert url.encode() in [d.data for d in decode(slip.convert("L"))]


def test_content_comes_from_a_printer_commands_json():
    data = {"hall": "一门政务服务中心", "case_number": "X-1", "matter_name": "事项", "matter_code": "C1",
            "applicant": "张*三", "accepted_at": "2026-11-30T09:42:00", "materials": ["申请表"],
            "promised_date": "2026-12-08", "limit_days": 5, "window": "3号窗口", "department": "局",
            "status_url": "http://hall.local/c/1", "query_code": "123456",
            "printed_at": "2026-11-30T09:43:00"}
    content = notices.content_from_dict("acceptance_notice", data)
    assert isinstance(content, AcceptanceContent)
    assert content.promised_date == date(2026, 12, 8) and content.materials == ("申请表",)
    supplement = notices.content_from_dict("supplement_notice", {
        "hall": "h", "reference": "r", "matter_name": "m", "issued_on": "2026-11-30",
        "missing": [["身份证复印件", "正反面"], "申请表"], "deadline": "2026-12-07"})
    assert isinstance(supplement, SupplementContent)
    assert supplement.missing == (("身份证复印件", "正反面"), ("申请表", ""))


def test_the_ticket_printer_prints_a_notice_as_escpos_raster(tmp_path):
    folder = FilePrinter(tmp_path)
    printer = TicketPrinter(folder)
    printer.print_notice("acceptance_notice", ACCEPTANCE)
    job = (tmp_path / "0001.bin").read_bytes()
    image = notices.thermal("acceptance_notice", ACCEPTANCE)
    # GS v 0: raster bit image, in bands; 72 bytes a row for 576 dots, the bands add up to it all
    bands = [(m.group(1)[0] | m.group(1)[1] << 8, m.group(1)[2] | m.group(1)[3] << 8)
             for m in re.finditer(rb"\x1dv0\x00(....)", job, re.S)]
    assert bands and all(w == notices.WIDTH_80MM // 8 for w, _ in bands)
    assert sum(h for _, h in bands) == image.height
    assert job.endswith(b"\x1dV\x00") or b"\x1dV" in job[-8:]             # and the cut
    assert Image.open(tmp_path / "0001.png").convert("1").tobytes() == image.tobytes()
    printer.print_notice("rejection_notice", REJECTION)
    assert (tmp_path / "0002.bin").exists()


def test_update_screenshots(tmp_path):
    """docs/images/notice-<kind>-80mm.png, -58mm.png and -a4.png (the PDF's first page as poppler
    draws it, at 100 dpi)."""
    if not os.environ.get("YIMEN_UPDATE_SCREENSHOTS"):
        pytest.skip("YIMEN_UPDATE_SCREENSHOTS is not set")
    pdftoppm = need_pdftoppm()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for kind, content in CONTENTS.items():
        name = SHORT[kind]
        notices.thermal(kind, content).save(SHOTS / f"notice-{name}-80mm.png")
        notices.thermal(kind, content, notices.WIDTH_58MM).save(SHOTS / f"notice-{name}-58mm.png")
        first = rasterise(pdftoppm, notices.pdf(kind, content), tmp_path / name)[0]
        first.save(SHOTS / f"notice-{name}-a4.png")

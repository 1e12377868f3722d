"""The printed notices of the total-reception desk (总台受理): 受理通知书, 一次性告知书 (补正材料通知书)
and 不予受理通知书.

Each notice is described once, as a short list of blocks (title, label/value rows, a numbered
list, a QR code, paragraphs, the seal line), by ``layout``. Two back ends draw the same blocks:

* ``thermal`` — a Pillow mode "1" image at the thermal printer's width (576 dots for 80 mm
  paper, 384 for 58 mm), printed as a raster image like the queue ticket (``display.ticket``);
* ``pdf`` — an A4 PDF for the desk's laser printer, drawn at 200 dpi with 20 mm margins and
  written by Pillow's PDF writer, one page per image, as many pages as the text needs.

Notices are in Chinese only, as official notices are. The module knows nothing of the case
engine: its inputs are plain values (strings, dates, lists). The applicant's name comes
already masked (张*三). Long text wraps by measured width: Chinese anywhere, Latin words and
numbers kept together, closing punctuation never starting a line.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import qrcode
from PIL import Image, ImageDraw, ImageFont

from display.fonts import print_font

WIDTH_80MM, WIDTH_58MM = 576, 384
A4_DPI = 200
KINDS = ("acceptance_notice", "supplement_notice", "rejection_notice")
Kind = Literal["acceptance_notice", "supplement_notice", "rejection_notice"]
APPEAL = "如对本决定不服，可依法申请行政复议或者提起行政诉讼。"
SEAL = "（受理窗口盖章）"


# ---------------------------------------------------------------------------------------------
# Contents: plain values, one dataclass per kind


@dataclass(frozen=True)
class AcceptanceContent:
    """受理通知书: the case is accepted (受理); the applicant keeps this to follow it up."""

    hall: str
    case_number: str                      # 办件编号
    matter_name: str                      # 事项名称
    matter_code: str                      # 事项编码
    applicant: str                        # 申请人, already masked: 张*三
    accepted_at: datetime | date          # 受理时间
    materials: tuple[str, ...]            # 已收材料
    promised_date: date | None            # 承诺办结日期 (None for 即办件)
    limit_days: int | None                # 承诺时限, working days
    window: str                           # 受理窗口, e.g. "3号窗口"
    department: str                       # 承办部门
    status_url: str                       # the case's status page (QR code)
    query_code: str                       # 查询码, 6 digits, for the self-service terminal
    printed_at: datetime                  # 打印时间
    officer: str = ""                     # 受理人
    contact: str = ""                     # 联系电话
    title: str = "受理通知书"


@dataclass(frozen=True)
class SupplementContent:
    """一次性告知书 / 补正材料通知书: everything still missing, told once."""

    hall: str
    reference: str                        # 办件编号, or the desk's reference when not yet a case
    matter_name: str
    issued_on: date                       # 告知日期
    missing: tuple[tuple[str, str], ...]  # (material, short note), note may be ""
    deadline: date | None = None          # 补正期限
    where: str = ""                       # where to bring them (提交地点)
    matter_code: str = ""
    applicant: str = ""                   # masked
    contact: str = ""
    title: str = "一次性告知书"


@dataclass(frozen=True)
class RejectionContent:
    """不予受理通知书: not accepted, with the reasons and the right to appeal."""

    hall: str
    matter_name: str
    reasons: tuple[str, ...]
    decided_on: date                      # the date of the decision
    reference: str = ""                   # 编号 of the notice or the application
    matter_code: str = ""
    applicant: str = ""                   # masked
    applied_on: date | None = None        # 申请日期
    refer_to: str = ""                    # the authority to apply to instead, if outside our remit
    title: str = "不予受理通知书"


NoticeContent = AcceptanceContent | SupplementContent | RejectionContent
_CONTENT: dict[str, type] = {"acceptance_notice": AcceptanceContent,
                             "supplement_notice": SupplementContent,
                             "rejection_notice": RejectionContent}


def content_from_dict(kind: str, data: dict[str, Any]) -> NoticeContent:
    """A content from JSON-like values (a printer ``cmd``'s ``content``): ISO dates and date-times
    as strings, lists for the tuples. Unknown keys are an error."""
    cls = _CONTENT[_check_kind(kind)]
    values = dict(data)
    for key in ("accepted_at", "printed_at"):
        if isinstance(values.get(key), str):
            values[key] = datetime.fromisoformat(values[key])
    for key in ("promised_date", "issued_on", "deadline", "decided_on", "applied_on"):
        if isinstance(values.get(key), str):
            values[key] = date.fromisoformat(values[key])
    for key in ("materials", "reasons"):
        if key in values:
            values[key] = tuple(values[key])
    if "missing" in values:
        values["missing"] = tuple((m, "") if isinstance(m, str) else (m[0], m[1] if len(m) > 1 else "")
                                  for m in values["missing"])
    result: NoticeContent = cls(**values)
    return result


# ---------------------------------------------------------------------------------------------
# Blocks

Size = Literal["title", "org", "large", "body", "small"]


@dataclass(frozen=True)
class Title:
    text: str


@dataclass(frozen=True)
class Center:
    text: str
    size: Size = "body"
    keep: bool = False                    # on the same page as the next block


@dataclass(frozen=True)
class Fields:
    """Label/value rows; the value wraps beside its label."""
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Numbered:
    heading: str
    items: tuple[str, ...]
    notes: tuple[str, ...] = ()           # a short note under each item ("" for none)


@dataclass(frozen=True)
class QR:
    url: str
    caption: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str
    indent: bool = True                   # first line indented by two characters


@dataclass(frozen=True)
class Rule:
    """A thin horizontal line."""


@dataclass(frozen=True)
class Signature:
    """The seal line and the date, at the right; the thermal slip prints only the date."""
    date: str
    seal: str = SEAL


Block = Title | Center | Fields | Numbered | QR | Paragraph | Rule | Signature


def _day(d: date | datetime) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _moment(d: date | datetime) -> str:
    return f"{_day(d)} {d:%H:%M}" if isinstance(d, datetime) else _day(d)


def _fields(*rows: tuple[str, str]) -> Fields:
    return Fields(tuple((label, value) for label, value in rows if value))


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}; one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def layout(kind: str, c: NoticeContent) -> list[Block]:
    """The blocks of notice ``kind`` for content ``c`` (the dataclass of that kind)."""
    expected = _CONTENT[_check_kind(kind)]
    if not isinstance(c, expected):
        raise TypeError(f"{kind} takes {expected.__name__}, not {type(c).__name__}")
    if isinstance(c, AcceptanceContent):
        return _acceptance(c)
    if isinstance(c, SupplementContent):
        return _supplement(c)
    return _rejection(c)


def _acceptance(c: AcceptanceContent) -> list[Block]:
    limit = f"{c.limit_days}个工作日" if c.limit_days is not None else ""
    promised = _day(c.promised_date) if c.promised_date else "即办"
    blocks: list[Block] = [
        Center(c.hall, "org"), Title(c.title), Rule(),
        _fields(("办件编号", c.case_number), ("事项名称", c.matter_name), ("事项编码", c.matter_code),
                ("申请人", c.applicant), ("受理时间", _moment(c.accepted_at)), ("承诺时限", limit),
                ("承诺办结日期", promised), ("受理窗口", c.window), ("承办部门", c.department),
                ("受理人", c.officer), ("联系电话", c.contact)),
    ]
    if c.materials:
        blocks.append(Numbered("已收取材料", tuple(c.materials)))
    blocks += [
        Paragraph("您的申请已受理。请妥善保管本通知书，可凭查询码在自助终端查询，或扫描下方二维码"
                  "查看办理进度。"),
        Center(f"查询码  {c.query_code}", "large", keep=bool(c.status_url)),
    ]
    if c.status_url:
        blocks.append(QR(c.status_url, "扫码查看办理进度"))
    blocks += [Signature(_day(c.accepted_at)),
               Center(f"打印时间 {c.printed_at:%Y-%m-%d %H:%M}", "small")]
    return blocks


def _supplement(c: SupplementContent) -> list[Block]:
    blocks: list[Block] = [
        Center(c.hall, "org"), Title(c.title), Rule(),
        _fields(("编号", c.reference), ("事项名称", c.matter_name), ("事项编码", c.matter_code),
                ("申请人", c.applicant), ("告知日期", _day(c.issued_on))),
        Paragraph("经审查，您的申请材料尚不齐全或者不符合法定形式，现将需要补正的全部材料一次性告知如下："),
        Numbered("需补正的材料", tuple(m for m, _ in c.missing), tuple(n for _, n in c.missing)),
        _fields(("补正期限", f"请于{_day(c.deadline)}前补正" if c.deadline else ""),
                ("提交地点", c.where), ("联系电话", c.contact)),
        Paragraph("请备齐上述材料，携带本告知书到提交地点办理。"),
        Signature(_day(c.issued_on)),
    ]
    return blocks


def _rejection(c: RejectionContent) -> list[Block]:
    blocks: list[Block] = [
        Center(c.hall, "org"), Title(c.title), Rule(),
        _fields(("编号", c.reference), ("事项名称", c.matter_name), ("事项编码", c.matter_code),
                ("申请人", c.applicant), ("申请日期", _day(c.applied_on) if c.applied_on else "")),
        Paragraph(f"经审查，您申请办理的“{c.matter_name}”事项，因下列原因，决定不予受理："),
        Numbered("不予受理的原因", tuple(c.reasons)),
    ]
    if c.refer_to:
        blocks.append(Paragraph(f"请向{c.refer_to}申请办理。"))
    blocks += [Paragraph(APPEAL), Signature(_day(c.decided_on))]
    return blocks


# ---------------------------------------------------------------------------------------------
# Line breaking

_CLOSE = set("，。、；：？！）》」』】〕〉…—％”’,.;:?!)]}%")
_OPEN = set("（《「『【〔〈“‘([{")
_TOKEN = re.compile(r"[\x21-\x7e]+|\s+|.", re.S)
_SOFT = re.compile(r"[^-/_.]+[-/_.]*|[-/_.]+")


def _tokens(text: str) -> list[str]:
    """Breakable pieces: each CJK character, each run of printable ASCII (a word, a number, a
    URL), each run of spaces; closing punctuation sticks to what precedes it, opening
    punctuation to what follows."""
    out: list[str] = []
    carry = ""
    for tok in _TOKEN.findall(text):
        if tok in _OPEN:
            carry += tok
            continue
        if tok in _CLOSE and out and not carry:
            out[-1] += tok
            continue
        out.append(carry + tok)
        carry = ""
    if carry:
        out.append(carry)
    return out


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int, first_indent: int = 0) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels (the first ``first_indent``
    narrower); explicit newlines are kept. A piece wider than a line is cut by character."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""

        def room() -> int:
            return width - (first_indent if not lines else 0)

        for tok in _tokens(para):
            if font.getlength(line + tok) <= room():
                line += tok
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = ""
            tok = tok.lstrip()
            if font.getlength(tok) <= room():
                line = tok
                continue
            # too wide for any line (a long case number, a URL): break after - / _ . where
            # possible, else anywhere
            for piece in _SOFT.findall(tok):
                if font.getlength(line + piece) <= room():
                    line += piece
                    continue
                if font.getlength(piece) <= room():
                    lines.append(line)
                    line = piece
                    continue
                for ch in piece:
                    if line and font.getlength(line + ch) > room():
                        lines.append(line)
                        line = ""
                    line += ch
        lines.append(line.rstrip())
    return lines


# ---------------------------------------------------------------------------------------------
# Back ends: blocks become rows of fixed height, painted in order (thermal) or onto pages (PDF)

Paint = Callable[[Image.Image, ImageDraw.ImageDraw, int], None]


@dataclass
class _Row:
    height: int
    paint: Paint
    keep: bool = False                    # keep on the same page as the next row
    space: bool = False                   # blank space only


@dataclass(frozen=True)
class _Style:
    width: int
    margin: int
    sizes: dict[str, int] = field(hash=False)
    gap: int                              # space between blocks
    qr: int                               # QR code side
    seal_space: int                       # room left above the seal line for the stamp
    seal: bool                            # print the seal line
    rule: int                             # rule thickness

    def font(self, size: Size) -> ImageFont.FreeTypeFont:
        return print_font(self.sizes[size])

    def line_height(self, size: Size) -> int:
        return round(self.sizes[size] * 1.45)

    @property
    def inner(self) -> int:
        return self.width - 2 * self.margin


def _thermal_style(width: int) -> _Style:
    scale = width / WIDTH_80MM
    floor = {"title": 28, "org": 20, "large": 24, "body": 18, "small": 16}
    base = {"title": 40, "org": 28, "large": 34, "body": 24, "small": 20}
    sizes = {k: max(floor[k], round(v * scale)) for k, v in base.items()}
    return _Style(width, max(8, round(16 * scale)), sizes, round(14 * scale), round(220 * scale), 0,
                  False, 2)


def _a4_style(dpi: int = A4_DPI) -> _Style:
    mm = dpi / 25.4
    pt = dpi / 72

    def px(points: float) -> int:
        return round(points * pt)

    sizes = {"title": px(22), "org": px(15), "large": px(16), "body": px(12), "small": px(10.5)}
    return _Style(round(210 * mm), round(20 * mm), sizes, round(4 * mm), round(32 * mm),
                  round(22 * mm), True, max(2, round(0.4 * mm)))


def _text_row(text: str, x: int, size: Size, s: _Style, keep: bool = False) -> _Row:
    font = s.font(size)

    def paint(img: Image.Image, draw: ImageDraw.ImageDraw, y: int) -> None:
        draw.text((x, y), text, font=font, fill=0)

    return _Row(s.line_height(size), paint, keep)


def _centred(text: str, size: Size, s: _Style, keep: bool = False) -> list[_Row]:
    font = s.font(size)
    rows = []
    for line in wrap(text, font, s.inner):
        x = s.margin + (s.inner - round(font.getlength(line))) // 2
        rows.append(_text_row(line, x, size, s, keep=True))
    rows[-1].keep = keep
    return rows


def _space(height: int, keep: bool = False) -> _Row:
    return _Row(height, lambda img, draw, y: None, keep, space=True)


def _rows(block: Block, s: _Style) -> list[_Row]:
    body = s.font("body")
    if isinstance(block, Title):
        return [_space(s.gap // 2, True), *_centred(block.text, "title", s, keep=True), _space(s.gap, True)]
    if isinstance(block, Center):
        return _centred(block.text, block.size, s, keep=block.keep)
    if isinstance(block, Rule):
        def rule(img: Image.Image, draw: ImageDraw.ImageDraw, y: int) -> None:
            draw.rectangle((s.margin, y, s.width - s.margin - 1, y + s.rule - 1), fill=0)
        return [_Row(s.rule, rule, True), _space(s.gap, True)]
    if isinstance(block, Fields):
        return _field_rows(block, s)
    if isinstance(block, Numbered):
        return _numbered_rows(block, s)
    if isinstance(block, Paragraph):
        indent = round(body.getlength("中中")) if block.indent else 0
        lines = wrap(block.text, body, s.inner, indent)
        return [_text_row(line, s.margin + (indent if i == 0 else 0), "body", s)
                for i, line in enumerate(lines)]
    if isinstance(block, QR):
        return _qr_rows(block, s)
    return _signature_rows(block, s)


def _field_rows(block: Fields, s: _Style) -> list[_Row]:
    body = s.font("body")
    labels = [f"{label}：" for label, _ in block.rows]
    label_w = max((round(body.getlength(t)) for t in labels), default=0) + round(body.size * 0.4)
    stacked = label_w > s.inner * 0.45
    rows: list[_Row] = []
    for label, (_, value) in zip(labels, block.rows, strict=True):
        if stacked:
            rows.append(_text_row(label, s.margin, "body", s, keep=True))
            x, width = s.margin + round(body.getlength("中")), s.inner - round(body.getlength("中"))
        else:
            x, width = s.margin + label_w, s.inner - label_w
        lines = wrap(value, body, width)
        for i, line in enumerate(lines):
            row = _text_row(line, x, "body", s, keep=i < len(lines) - 1)
            if i == 0 and not stacked:
                row = _with_label(row, label, s.margin, body)
            rows.append(row)
    return rows


def _with_label(row: _Row, label: str, x: int, font: ImageFont.FreeTypeFont) -> _Row:
    value_paint = row.paint

    def paint(img: Image.Image, draw: ImageDraw.ImageDraw, y: int) -> None:
        draw.text((x, y), label, font=font, fill=0)
        value_paint(img, draw, y)

    return _Row(row.height, paint, row.keep)


def _numbered_rows(block: Numbered, s: _Style) -> list[_Row]:
    body = s.font("body")
    rows = [_text_row(f"{block.heading}：", s.margin, "body", s, keep=True)]
    hang = round(body.getlength(f"{len(block.items)}. ")) + round(body.getlength("中"))
    notes = block.notes or ("",) * len(block.items)
    for n, (item, note) in enumerate(zip(block.items, notes, strict=True), start=1):
        num = f"{n}."
        lines = wrap(item, body, s.inner - hang)
        for i, line in enumerate(lines):
            row = _text_row(line, s.margin + hang, "body", s, keep=i < len(lines) - 1 or bool(note))
            if i == 0:
                num_x = s.margin + hang - round(body.getlength(num + " "))
                row = _with_label(row, num, num_x, body)
            rows.append(row)
        if note:
            small = s.font("small")
            for line in wrap(f"说明：{note}", small, s.inner - hang):
                rows.append(_text_row(line, s.margin + hang, "small", s))
    return rows


def _qr_rows(block: QR, s: _Style) -> list[_Row]:
    image = qr_image(block.url, s.qr)
    x = s.margin + (s.inner - image.width) // 2

    def paint(img: Image.Image, draw: ImageDraw.ImageDraw, y: int) -> None:
        img.paste(image, (x, y))

    rows = [_Row(image.height, paint, keep=bool(block.caption))]
    if block.caption:
        rows += _centred(block.caption, "small", s)
    return rows


def _signature_rows(block: Signature, s: _Style) -> list[_Row]:
    body = s.font("body")
    right = s.width - s.margin
    rows: list[_Row] = []
    texts = [block.seal, block.date] if s.seal else [block.date]
    if s.seal:
        rows.append(_space(s.seal_space, True))
    # the seal line and the date share a centre line, as on stamped forms
    column = max(round(body.getlength(t)) for t in texts)
    for t in texts:
        x = right - column + (column - round(body.getlength(t))) // 2
        rows.append(_text_row(t, x, "body", s, keep=True))
    rows[-1].keep = False
    return rows


def qr_image(url: str, side: int) -> Image.Image:
    """A QR code for ``url``, no bigger than ``side`` dots, with whole dots per module (crisp
    edges on the printer) and a quiet zone of two modules."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    modules = len(matrix)
    dot = max(1, side // modules)
    img = Image.new("1", (modules, modules), 1)
    img.putdata([0 if cell else 255 for row in matrix for cell in row])
    return img.resize((modules * dot, modules * dot), Image.Resampling.NEAREST)


def _all_rows(blocks: Sequence[Block], s: _Style) -> list[_Row]:
    rows: list[_Row] = []
    for block in blocks:
        if rows:
            rows.append(_space(s.gap, keep=rows[-1].keep or isinstance(block, Signature)))
        rows += _rows(block, s)
    return rows


def thermal(kind: str, content: NoticeContent, width: int = WIDTH_80MM) -> Image.Image:
    """The notice as one mode "1" image ``width`` dots wide, for a thermal printer."""
    s = _thermal_style(width)
    rows = _all_rows(layout(kind, content), s)
    top, bottom = round(20 * width / WIDTH_80MM), round(40 * width / WIDTH_80MM)
    image = Image.new("1", (width, top + sum(r.height for r in rows) + bottom), 1)
    draw = ImageDraw.Draw(image)
    y = top
    for row in rows:
        row.paint(image, draw, y)
        y += row.height
    return image


def pages(kind: str, content: NoticeContent, dpi: int = A4_DPI) -> list[Image.Image]:
    """The notice on A4 pages, mode "1" at ``dpi``; rows kept together where they should be
    (a label with its value, a heading with its first item, the seal line with the date), and
    "第 n 页 共 m 页" at the foot and "…（续）" at the head of the next pages when there is
    more than one page."""
    s = _a4_style(dpi)
    height = round(297 * dpi / 25.4)
    top, bottom = s.margin, height - s.margin
    rows = _all_rows(layout(kind, content), s)
    # groups of rows that must stay together
    groups: list[list[_Row]] = [[]]
    for row in rows:
        groups[-1].append(row)
        if not row.keep:
            groups.append([])
    placed: list[list[tuple[int, _Row]]] = [[]]
    y = top
    for group in groups:
        need = sum(r.height for r in group)
        if y + need > bottom and placed[-1] and need <= bottom - top:
            placed.append([])
            y = top
        for row in group:
            if y + row.height > bottom and placed[-1]:
                placed.append([])
                y = top
            if y == top and row.space:
                continue                          # no blank space at the top of a page
            placed[-1].append((y, row))
            y += row.height
    images = []
    small = s.font("small")
    for n, page in enumerate(placed, start=1):
        image = Image.new("1", (s.width, height), 1)
        draw = ImageDraw.Draw(image)
        for y, row in page:
            row.paint(image, draw, y)
        if n > 1:                                 # continued pages say what they continue
            head = f"{content.title}（续）"
            x = (s.width - round(small.getlength(head))) // 2
            draw.text((x, s.margin // 2), head, font=small, fill=0)
        if len(placed) > 1:
            foot = f"第 {n} 页 共 {len(placed)} 页"
            x = (s.width - round(small.getlength(foot))) // 2
            draw.text((x, bottom + s.margin // 3), foot, font=small, fill=0)
        images.append(image)
    return images


def pdf(kind: str, content: NoticeContent, dpi: int = A4_DPI) -> bytes:
    """The notice as an A4 PDF (one image per page, at ``dpi``)."""
    images = pages(kind, content, dpi)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=float(dpi), save_all=True, append_images=images[1:],
                   title=_title(content), creator="Yimen")
    return buf.getvalue()


def _title(content: NoticeContent) -> str:
    return content.title

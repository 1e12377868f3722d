"""The monthly per-window report (月度窗口报表) as an A4 landscape PDF, drawn with Pillow: the
title and period, the hall's figures in one line, the table of ``controller.reports.COLUMNS``
(one row per window, as many pages as it needs, the heading repeated) and a bar chart of the
tickets served per window. The same figures as the xlsx; Chinese only, as the report is filed."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

from PIL import Image, ImageDraw

from controller.reports import COLUMNS, cell, value
from display.fonts import print_font

DPI = 150
WIDTH, HEIGHT = round(297 * DPI / 25.4), round(210 * DPI / 25.4)    # A4 landscape
MARGIN = round(15 * DPI / 25.4)
ROW = 34
INK, GREY, LINE, SHADE, BAR = (20, 20, 20), (90, 90, 90), (170, 170, 170), (240, 243, 247), (46, 94, 170)
HEAD = (220, 229, 241)


def summary(row: dict[str, Any] | None) -> str:
    """The hall's figures in one line."""
    if row is None:
        return "本月暂无业务数据"
    r, c, w = row["ratings"], row["cases"], row["wait"]
    parts = [f"取号 {row['issued']}", f"办结 {row['served']}", f"过号 {row['no_show']}",
             f"平均等候 {cell('', w['mean_min'])} 分钟", f"好评率 {cell('rate', r['good_rate'])}",
             f"差评 {r['bad']}", f"申诉成立 {r['excluded']}", f"受理办件 {c['opened']}",
             f"按时办结率 {cell('rate', c['on_time_rate'])}"]
    return " · ".join(parts)


def _widths() -> list[int]:
    total = sum(width for _, _, width in COLUMNS)
    inner = WIDTH - 2 * MARGIN
    return [round(inner * width / total) for _, _, width in COLUMNS]


def _header(draw: ImageDraw.ImageDraw, title: str, subtitle: str, line: str) -> int:
    draw.text((MARGIN, MARGIN), title, font=print_font(40), fill=INK)
    draw.text((MARGIN, MARGIN + 58), subtitle, font=print_font(20), fill=GREY)
    draw.text((MARGIN, MARGIN + 96), line, font=print_font(22), fill=INK)
    return MARGIN + 146


def _table_row(draw: ImageDraw.ImageDraw, y: int, texts: list[str], heading: bool, shade: bool) -> None:
    font = print_font(21)
    if shade or heading:
        draw.rectangle((MARGIN, y, WIDTH - MARGIN, y + ROW), fill=HEAD if heading else SHADE)
    x = MARGIN
    for i, (text, width) in enumerate(zip(texts, _widths(), strict=True)):
        w = font.getlength(text)
        tx = x + 8 if i == 0 else x + width - 8 - w          # names left, figures right
        draw.text((tx, y + 6), text, font=font, fill=INK)
        x += width
    draw.line((MARGIN, y + ROW, WIDTH - MARGIN, y + ROW), fill=LINE, width=1)


def _chart(draw: ImageDraw.ImageDraw, top: int, rows: list[dict[str, Any]]) -> None:
    """各窗口办结量: one bar per window with its figure above it."""
    font, small = print_font(24), print_font(18)
    draw.text((MARGIN, top), "各窗口办结量（件）", font=font, fill=INK)
    base, height = HEIGHT - MARGIN - 30, HEIGHT - MARGIN - 30 - (top + 60)
    most = max((r["served"] for r in rows), default=0) or 1
    slot = (WIDTH - 2 * MARGIN) / max(1, len(rows))
    draw.line((MARGIN, base, WIDTH - MARGIN, base), fill=GREY, width=2)
    for i, r in enumerate(rows):
        h = round(height * r["served"] / most)
        bar = min(slot * 0.6, 80)
        x0 = MARGIN + (i + 0.5) * slot - bar / 2
        x1 = x0 + bar
        draw.rectangle((x0, base - h, x1, base), fill=BAR)
        for text, y in ((str(r["served"]), base - h - 24), (f"{r['key']}号", base + 6)):
            draw.text(((x0 + x1) / 2 - small.getlength(text) / 2, y), text, font=small, fill=INK)


def monthly_pdf(hall_name: str, first: date, last: date, rows: list[dict[str, Any]],
                hall_row: dict[str, Any] | None, made_at: datetime) -> bytes:
    """The report: ``rows`` per window, ``hall_row`` the hall's own, ``made_at`` local time."""
    title = f"{hall_name} {first:%Y年%m月} 窗口工作报表"
    subtitle = f"统计期间 {first:%Y-%m-%d} 至 {last:%Y-%m-%d} · 生成于 {made_at:%Y-%m-%d %H:%M} · 一门 Yimen"
    headings = [heading for _, heading, _ in COLUMNS]
    table = [[cell(path, value(row, path)) for path, _, _ in COLUMNS] for row in rows]
    pages: list[Image.Image] = []
    chart_room = 360
    i = 0
    while True:
        page = Image.new("RGB", (WIDTH, HEIGHT), "white")
        draw = ImageDraw.Draw(page)
        y = _header(draw, title if not pages else f"{title}（续）", subtitle, summary(hall_row))
        _table_row(draw, y, headings, True, False)
        y += ROW
        while i < len(table) and y + ROW <= HEIGHT - MARGIN - 30:
            _table_row(draw, y, table[i], False, i % 2 == 1)
            y += ROW
            i += 1
        if not table:
            draw.text((MARGIN + 8, y + 8), "本月没有窗口数据", font=print_font(21), fill=GREY)
            y += ROW
        pages.append(page)
        if i >= len(table):
            if rows and y + chart_room <= HEIGHT - MARGIN:
                _chart(draw, y + 30, rows)
            elif rows:
                page = Image.new("RGB", (WIDTH, HEIGHT), "white")
                draw = ImageDraw.Draw(page)
                _chart(draw, _header(draw, f"{title}（续）", subtitle, summary(hall_row)), rows)
                pages.append(page)
            break
    for n, page in enumerate(pages, start=1):
        foot = f"第 {n} 页 共 {len(pages)} 页"
        font = print_font(18)
        ImageDraw.Draw(page).text((WIDTH / 2 - font.getlength(foot) / 2, HEIGHT - MARGIN + 10), foot,
                                  font=font, fill=GREY)
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", resolution=float(DPI), save_all=True, append_images=pages[1:],
                  title=title, creator="Yimen")
    return buf.getvalue()

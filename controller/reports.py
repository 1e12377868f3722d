"""The monthly per-window report (月度窗口报表), as xlsx with a native chart: for each window
the tickets served, no-shows, mean and 90th-percentile waits, the mean service time, ratings
and their good-rating rate, cases decided and the on-time rate — the figures halls are judged
by every month — and a bar chart of the served tickets per window drawn by the spreadsheet
itself. The figures are ``controller.stats``'."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

#: (key path, zh-CN heading, column width)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("key", "窗口", 10), ("served", "办结", 8), ("no_show", "过号", 8),
    ("wait.mean_min", "平均等候（分）", 14), ("wait.p90_min", "90% 等候（分）", 14),
    ("service.mean_min", "平均办理（分）", 14), ("ratings.rated", "评价数", 8),
    ("ratings.good_rate", "好评率", 10), ("ratings.bad", "差评", 8), ("ratings.excluded", "申诉成立", 10),
    ("cases.decided", "办结办件", 10), ("cases.on_time_rate", "按时办结率", 12),
    ("attendance.hours", "在岗（小时）", 12),
)


def value(row: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        row = row.get(part) if isinstance(row, dict) else None  # type: ignore[assignment]
    return round(row, 3) if isinstance(row, float) else row


def cell(path: str, v: Any) -> str:
    """A figure as the pages and the PDF write it: rates in per cent, minutes to a tenth."""
    if v is None:
        return "—"
    if path.endswith("rate"):
        return f"{v * 100:.1f}%"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def monthly_xlsx(hall_name: str, month: date, rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.worksheets[0]
    sheet.title = f"{month:%Y-%m}"
    sheet.append([f"{hall_name} {month:%Y年%m月} 窗口工作报表"])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([heading for _, heading, _ in COLUMNS])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([value(row, path) for path, _, _ in COLUMNS])
    for i, (_, _, width) in enumerate(COLUMNS):
        sheet.column_dimensions[chr(ord("A") + i)].width = width
    for col in ("H", "L"):                         # rates as percentages
        for cell in sheet[col][2:]:
            cell.number_format = "0.0%"
    sheet.freeze_panes = "B3"
    if rows:
        chart = BarChart()
        chart.title = "各窗口办结量"
        chart.y_axis.title = "办结（件）"
        chart.x_axis.title = "窗口"
        chart.add_data(Reference(sheet, min_col=2, min_row=2, max_row=len(rows) + 2), titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=1, min_row=3, max_row=len(rows) + 2))
        chart.width, chart.height = 24, 10
        sheet.add_chart(chart, f"A{len(rows) + 5}")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()

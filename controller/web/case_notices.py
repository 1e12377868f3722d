"""A case's printed notices (受理通知书, 一次性告知书, 不予受理通知书): their contents from the case,
as an A4 PDF for the desk's laser printer (``GET /api/cases/{number}/notice/{kind}.pdf``) or
sent to the desk's thermal printer, a protocol v1 ``printer`` device, as a print job
(``POST /api/cases/{number}/print``): ``{"op":"print","job_id","doc","content"}``. The
layouts are ``display.notices``'; the device renders the same contents with them."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict
from datetime import date
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from controller.core import cases as core
from controller.core.errors import Refused
from controller.core.hall import HallState
from controller.web.access import audited, guarded
from controller.web.api import BUS, ENGINE, Body, json_response, parsed
from controller.web.cases_api import find_case
from display import notices

Kind = Literal["acceptance_notice", "supplement_notice", "rejection_notice"]


class PrintJob(Body):
    kind: Kind
    printer: str | None = Field(default=None, max_length=48)


def content(kind: str, case: core.Case, hall: HallState, base_url: str, now: Any) -> notices.NoticeContent:
    """The notice's content from the case: the applicant's name masked, no ID number."""
    name = hall.config.hall.name
    window = hall.window_cfg[case.window].name if case.window in hall.window_cfg else (case.window or "")
    if kind == "acceptance_notice":
        return notices.AcceptanceContent(
            hall=name, case_number=case.number, matter_name=case.matter_name, matter_code=case.matter,
            applicant=core.masked(case.applicant), accepted_at=case.accepted_at.astimezone(hall.tz),
            materials=case.materials, promised_date=case.due if case.form != "instant" else None,
            limit_days=case.limit_days or None, window=window, department=case.department,
            status_url=f"{base_url}/c/{case.token}", query_code=case.query_code,
            printed_at=hall.local(now))
    if kind == "supplement_notice":
        return notices.SupplementContent(
            hall=name, reference=case.number, matter_name=case.matter_name, matter_code=case.matter,
            issued_on=hall.local(now).date(), missing=tuple((m, "") for m in case.missing),
            where=window, applicant=core.masked(case.applicant))
    if case.state != "rejected":
        raise Refused("bad_transition", "只有不予受理的办件才有不予受理通知书", "the case was not rejected")
    return notices.RejectionContent(
        hall=name, matter_name=case.matter_name, reasons=tuple(r for r in case.reasons.splitlines() if r),
        decided_on=(case.finished_at.astimezone(hall.tz).date() if case.finished_at else date.today()),
        reference=case.number, matter_code=case.matter, applicant=core.masked(case.applicant),
        applied_on=case.accepted_on)


def _base(request: web.Request) -> str:
    status_url = request.app[ENGINE].config.hall.status_url.rstrip("/")
    return status_url.rsplit("/t", 1)[0] if status_url else f"{request.scheme}://{request.host}"


async def notice_pdf(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    kind = request.match_info["kind"]
    if kind not in ("acceptance_notice", "supplement_notice", "rejection_notice"):
        raise web.HTTPNotFound()
    hall = await engine.settled()
    case = await find_case(request, request.match_info["number"])
    notice = content(kind, case, hall, _base(request), engine.clock.now())
    body = await asyncio.to_thread(notices.pdf, kind, notice)
    return web.Response(body=body, content_type="application/pdf", headers={
        "Cache-Control": "no-store", "Content-Disposition": f'inline; filename="{case.number}-{kind}.pdf"'})


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return value.isoformat() if hasattr(value, "isoformat") else value


async def print_notice(request: web.Request) -> web.Response:
    """A print job to the desk's printer (the one named, else the hall's first enabled one)."""
    job: PrintJob = await parsed(request)
    engine = request.app[ENGINE]
    hall = await engine.settled()
    case = await find_case(request, request.match_info["number"])
    printers = [d for d in hall.config.devices if d.kind == "printer" and d.enabled]
    printer = next((d for d in printers if d.id == job.printer), None) if job.printer else \
        (printers[0] if printers else None)
    bus = request.app.get(BUS)
    if printer is None or bus is None:
        raise Refused("no_printer", "没有可用的打印机（请用 A4 打印）",
                      "no printer on the device bus; print the A4 PDF")
    notice = content(job.kind, case, hall, _base(request), engine.clock.now())
    job_id = uuid.uuid4().hex
    await bus.command(printer.id, {"op": "print", "job_id": job_id, "doc": job.kind,
                                   "content": {k: _json(v) for k, v in asdict(notice).items()}})
    await audited(request, "notice_printed", f"case:{case.number}", {"kind": job.kind, "printer": printer.id})
    return json_response({"ok": True, "job_id": job_id, "printer": printer.id})


def add_notice_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/cases/{number}/notice/{kind}.pdf", guarded(
        "cases.read", notice_pdf, errors=(404, 409, 503), media="application/pdf",
        summary="通知书 PDF / a case's notice as an A4 PDF"))
    r.add_post("/api/cases/{number}/print", guarded(
        "cases.write", print_notice, body=PrintJob, errors=(404, 409, 503),
        summary="打印通知书 / print a case's notice on the desk's printer"))

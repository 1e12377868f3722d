"""The case record (办件): from the ticket at the total-reception desk to the result handed over.

The desk (总台受理) opens a case from the ticket it is serving — one ticket may open several,
each remembering it — with the applicant, the matter and the materials received. The case
then moves through its states, each step an event with who and when:

    受理 accepted ─ 分送 handed_off ─ 审查 in_review ─ 办结 decided ─ 待取件 ready ─ 已取件 handed_over
          │              │                 │
          └── 补正 supplement (the clock stops; back where it was once the materials come)
    不予受理 rejected · 退办 returned · 上报 escalated (decided by the upper tier)

即办件 are decided on the spot; a 联办件 is handed to several departments, a sub-task each, and
is decided when the last of them finishes. ``TRANSITIONS`` is the one table of what may follow
what; anything else is refused with nothing changed.

The clock counts working days on the hall's calendar (``WorkCalendar``): a case is due its
promised limit of working days after acceptance, plus the working days it spent in 补正. It
turns yellow ``case_warn_days`` working days before, red once the day is past; the engine's
scheduler re-reads a case's colour on the day it changes (``deadlines``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from controller.core.commands import CaseClock, CaseStep, Command, OpenCase
from controller.core.errors import Refused
from controller.core.events import EventKind
from controller.core.matters import FORMS

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.core.calendar import WorkCalendar
    from controller.core.hall import HallState

#: 办件状态 and their names
STATES: dict[str, tuple[str, str]] = {
    "accepted": ("已受理", "accepted"), "handed_off": ("已分送", "handed off"),
    "in_review": ("审查中", "in review"), "supplement": ("待补正", "waiting for materials"),
    "decided": ("已办结", "decided"), "ready": ("待取件", "ready for pick-up"),
    "handed_over": ("已取件", "handed over"), "rejected": ("不予受理", "not accepted"),
    "returned": ("已退办", "returned"), "escalated": ("已上报", "sent to the upper tier"),
}
TERMINAL = frozenset({"handed_over", "rejected", "returned"})
#: Past these the clock no longer matters: the decision is made.
DECIDED = frozenset({"decided", "ready", "handed_over"})
#: state → action → the state it leads to ("back": where the case was before 补正)
TRANSITIONS: dict[str, dict[str, str]] = {
    "accepted": {"hand_off": "handed_off", "review": "in_review", "supplement": "supplement",
                 "decide": "decided", "reject": "rejected", "escalate": "escalated"},
    "handed_off": {"review": "in_review", "supplement": "supplement", "return": "returned"},
    "in_review": {"supplement": "supplement", "decide": "decided", "complete_task": "in_review",
                  "return": "returned"},
    "supplement": {"supplemented": "back", "return": "returned", "reject": "rejected"},
    "decided": {"ready": "ready"},
    "ready": {"hand_over": "handed_over"},
}
ACTIONS: dict[str, tuple[str, str]] = {
    "hand_off": ("分送", "hand off"), "review": ("开始审查", "start review"),
    "supplement": ("要求补正", "ask for materials"), "supplemented": ("补正完成", "materials received"),
    "decide": ("办结", "decide"), "complete_task": ("完成协办", "finish a part"),
    "ready": ("通知取件", "ready for pick-up"), "hand_over": ("已取件", "hand over"),
    "reject": ("不予受理", "not accepted"), "return": ("退办", "return"), "escalate": ("上报", "send up"),
}
assert {a for moves in TRANSITIONS.values() for a in moves} == set(ACTIONS)
HISTORY = 50
#: Warning colours (电子监察): none once decided; paused in 补正
COLOURS = ("green", "yellow", "red", "paused", "none")


@dataclass(slots=True)
class Case:
    """One case (办件). ``pauses``: the 补正 periods, as [first, last] ISO dates; ``id_sealed``
    is the applicant's ID number encrypted by the door with the hall's key (never in clear
    here), ``id_masked`` its masked form."""

    number: str
    serial: int
    matter: str
    matter_name: str
    form: str
    department: str
    state: str
    accepted_on: date
    accepted_at: datetime
    limit_days: int
    due: date
    token: str
    query_code: str
    applicant: str
    id_sealed: str | None = None
    id_masked: str | None = None
    phone: str | None = None
    ticket: str | None = None
    ticket_number: str | None = None
    window: str | None = None
    handler: str | None = None
    materials: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    tolerated: bool = False
    late_entry: bool = False
    notes: str = ""
    pauses: tuple[tuple[str, str], ...] = ()
    paused_from: str | None = None
    back_to: str | None = None
    decision: str | None = None
    reasons: str = ""
    decided_on: date | None = None
    finished_at: datetime | None = None
    colour: str = "green"
    #: on the upper hall: the lower hall it came from and its number there (上报件)
    origin_hall: str | None = None
    origin_number: str | None = None
    #: on the lower hall: the case's number at the upper hall and its state there
    upper_number: str | None = None
    upper_state: str | None = None
    #: its steps here, (action, the state after, ISO time), the last ``HISTORY`` of them: what
    #: travels with it when it is forwarded up
    history: tuple[tuple[str, str, str], ...] = ()

    @property
    def open(self) -> bool:
        return self.state not in TERMINAL


@dataclass(slots=True)
class CaseTask:
    """A part of a 联办件 for one department (协办): the case is decided when all are done."""

    id: str
    case: str
    department: str
    state: str = "open"                  # open, done
    result: str | None = None            # approved, refused
    note: str = ""
    done_at: datetime | None = None


@dataclass
class Cases:
    """The hall's cases in memory: every open one, and those finished today."""

    by_number: dict[str, Case] = field(default_factory=dict)
    tasks: dict[str, list[CaseTask]] = field(default_factory=dict)
    by_token: dict[str, str] = field(default_factory=dict)
    #: a case forwarded from below: (its hall, its number there) → its number here
    by_origin: dict[tuple[str, str], str] = field(default_factory=dict)
    #: the last serial given on each acceptance day
    serials: dict[date, int] = field(default_factory=dict)
    #: each open case's next colour-change day as last worked out (``timers``), what for
    #: (day, warning days, calendar), the one timer made from them, and the cases touched
    #: since (``HallState.drain`` adds them)
    change_days: dict[str, date] = field(default_factory=dict)
    timer_basis: tuple[Any, ...] = ()
    sweep: tuple[datetime, Command] | None = None
    touched: set[str] = field(default_factory=set)

    def add(self, case: Case) -> None:
        self.by_number[case.number] = case
        self.by_token[case.token] = case.number
        if case.origin_hall and case.origin_number:
            self.by_origin[(case.origin_hall, case.origin_number)] = case.number

    def forget_finished(self, today: date) -> None:
        for number, case in list(self.by_number.items()):
            if not case.open and (case.finished_at is None or case.finished_at.date() < today):
                del self.by_number[number]
                self.change_days.pop(number, None)
                self.by_token.pop(case.token, None)
                self.by_origin.pop((case.origin_hall or "", case.origin_number or ""), None)
                self.tasks.pop(number, None)


# ---------------------------------------------------------------------- the clock
def paused_days(cal: WorkCalendar, case: Case, today: date) -> int:
    """The working days the case has spent in 补正 (a running pause up to ``today``)."""
    spans = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in case.pauses]
    if case.paused_from is not None:
        spans.append((date.fromisoformat(case.paused_from), today))
    return sum(cal.working_days_between(a, b) for a, b in spans)


def due_date(cal: WorkCalendar, case: Case, today: date) -> date:
    """Its limit in working days after acceptance, moved by the working days of 补正."""
    return cal.add_working_days(case.accepted_on, case.limit_days + paused_days(cal, case, today))


def colour(cal: WorkCalendar, case: Case, today: date, warn_days: int) -> str:
    """green, yellow (``warn_days`` working days or fewer left), red (past due), paused
    (补正) or none (decided, or closed)."""
    if case.state in DECIDED or not case.open:
        return "none"
    if case.state == "supplement":
        return "paused"
    if today > case.due:
        return "red"
    return "yellow" if cal.working_days_between(today, case.due) <= warn_days else "green"


def next_change(cal: WorkCalendar, case: Case, today: date, warn_days: int) -> date | None:
    """The next day the case's colour may change by the calendar alone (its yellow day or the
    day after it is due), or None. The yellow day is the first from which at most
    ``warn_days`` working days are left: found walking back from the due day, once."""
    if case.state in DECIDED or not case.open or case.state == "supplement":
        return None
    if today > case.due:
        return None
    yellow, left = case.due, 0
    while yellow > today:
        working = cal.is_working_day(yellow)
        if left + working > warn_days:
            break
        left += working
        yellow -= timedelta(days=1)
    return yellow if yellow > today else case.due + timedelta(days=1)


def on_time(case: Case) -> bool | None:
    """Decided on or before its due day (按时办结); None while undecided."""
    return None if case.decided_on is None else case.decided_on <= case.due


# ---------------------------------------------------------------------- commands
def _case(hall: HallState, number: str) -> Case:
    case = hall.cases.by_number.get(number)
    if case is None:
        raise Refused("unknown_case", f"没有办件 {number[:40]}", f"no open case {number[:40]!r}")
    return case


def _today(hall: HallState, now: datetime) -> date:
    return hall.local(now).date()


def down_detail(case: Case) -> dict[str, Any]:
    """For a case a lower hall forwarded here, what its step events carry back down."""
    if not case.origin_hall:
        return {}
    return {"from_hall": case.origin_hall, "from_number": case.origin_number or "",
            "reasons": case.reasons, "decision": case.decision}


def new_case(hall: HallState, day: date, now: datetime, **fields: Any) -> Case:
    """A new case accepted on ``day``, numbered ``{region}-{hall}-{YYYYMMDD}-{serial}`` with its
    status link and 6-digit query code, its due date and colour, added and to be stored."""
    serial = hall.cases.serials.get(day, 0) + 1
    hall.cases.serials[day] = serial
    hall_cfg = hall.config.hall
    number = f"{hall_cfg.region}-{hall_cfg.id}-{day:%Y%m%d}-{serial:04d}"
    token = hall.links.token(f"case:{number}")
    code = hall.links.token(f"case-code:{number}")
    query_code = f"{int.from_bytes(code.encode()[:8], 'big') % 1_000_000:06d}"
    case = Case(number=number, serial=serial, accepted_on=day, accepted_at=now, due=day, token=token,
                query_code=query_code, **fields)
    case.history = (("accept", case.state, now.isoformat()),)
    today = _today(hall, now)
    case.due = due_date(hall.calendar, case, today)
    case.colour = colour(hall.calendar, case, today, hall_cfg.case_warn_days)
    hall.cases.add(case)
    hall.changes.touch(case)
    return case


def open_case(hall: HallState, cmd: OpenCase, now: datetime) -> dict[str, Any]:
    """受理: a case for a matter of the catalogue, from the ticket being served (or none);
    ``accepted_on`` earlier than today is a case entered after the fact (补录). Materials
    missing without 容缺受理 put it in 补正 at once, its clock stopped."""
    matter = hall.catalogue.matters.get(cmd.matter)
    if matter is None or not matter.enabled:
        raise Refused("unknown_matter", f"没有事项 {cmd.matter[:40]}", f"no matter {cmd.matter[:40]!r}")
    today = _today(hall, now)
    day = cmd.accepted_on or today
    if day > today:
        raise Refused("bad_date", "受理日期不能晚于今天", "the acceptance date is after today")
    ticket = None
    if cmd.ticket is not None:
        ticket = hall.queue.get(cmd.ticket)
        if ticket is None:
            raise Refused("unknown_ticket", f"今天没有{cmd.ticket}号", f"no ticket {cmd.ticket} today")
    missing = tuple(dict.fromkeys(cmd.missing))
    waiting = bool(missing) and not cmd.tolerated
    case = new_case(
        hall, day, now, matter=matter.code, matter_name=matter.name, form=matter.form,
        department=matter.department, state="supplement" if waiting else "accepted",
        limit_days=matter.promised_days, applicant=cmd.applicant, id_sealed=cmd.id_sealed,
        id_masked=cmd.id_masked, phone=cmd.phone, ticket=ticket.id if ticket else None,
        ticket_number=ticket.number if ticket else None,
        window=cmd.window or (matter.windows[0] if matter.windows else None),
        materials=tuple(dict.fromkeys(cmd.materials)), missing=missing,
        tolerated=cmd.tolerated and bool(missing),
        late_entry=day < today, notes=cmd.notes,
        paused_from=day.isoformat() if waiting else None, back_to="accepted" if waiting else None)
    number = case.number
    hall.emit(EventKind.CASE_OPENED, now, ticket, case=number, matter=matter.code, form=matter.form,
              state=case.state, accepted_on=day.isoformat(), due=case.due.isoformat(),
              late_entry=case.late_entry, tolerated=case.tolerated, missing=len(missing))
    return {"case": view(hall, case, today)}


def step(hall: HallState, cmd: CaseStep, now: datetime) -> dict[str, Any]:
    """One step of a case (``ACTIONS``), if ``TRANSITIONS`` allows it from its state."""
    case = _case(hall, cmd.number)
    today = _today(hall, now)
    target = TRANSITIONS.get(case.state, {}).get(cmd.action)
    if target is None:
        raise Refused("bad_transition",
                      f"办件{STATES[case.state][0]}，不能{ACTIONS[cmd.action][0]}",
                      f"a case {STATES[case.state][1]} cannot {ACTIONS[cmd.action][1]}")
    before = case.state
    detail: dict[str, Any] = {}
    match cmd.action:
        case "decide":
            if case.state == "accepted" and case.form != "instant":
                raise Refused("bad_transition", "承诺件须先审查再办结",
                              "only an instant case is decided at once")
            if case.form == "joint":
                raise Refused("bad_transition", "联办件在各协办部门完成后自动办结",
                              "a joint case is decided when its last part is")
            _decide(case, cmd.decision or "approved", cmd.reasons, today, now)
            detail = {"decision": case.decision, "on_time": on_time(case)}
        case "reject" | "return":
            if not cmd.reasons:
                raise Refused("reasons_needed", "请写明理由", "give the reasons")
            case.reasons, case.finished_at = cmd.reasons, now
            _end_pause(case, today)
        case "escalate":
            if case.form != "upper":
                raise Refused("bad_transition", "只有上报件可以上报", "only an upper-tier matter is sent up")
            case.finished_at = now
        case "hand_off":
            _hand_off(hall, case, cmd, now)
            detail = {"to": [t.department for t in hall.cases.tasks.get(case.number, [])] or [case.window]}
        case "supplement":
            if cmd.missing:
                case.missing = tuple(dict.fromkeys(cmd.missing))
            case.back_to, case.paused_from = case.state, today.isoformat()
        case "supplemented":
            target = case.back_to or "accepted"
            _end_pause(case, today)
            case.materials = tuple(dict.fromkeys(case.materials + case.missing))
            case.missing = ()
        case "complete_task":
            detail = _complete_task(hall, case, cmd, today, now)
            target = case.state
        case "ready" | "hand_over":
            if cmd.action == "hand_over":
                case.finished_at = now
    if cmd.action != "complete_task":
        case.state = target
    if cmd.note:
        case.notes = f"{case.notes}\n{cmd.note}".strip()[-2000:]
    case.handler = hall.actor
    case.history = (*case.history, (cmd.action, case.state, now.isoformat()))[-HISTORY:]
    case.due = due_date(hall.calendar, case, today)
    case.colour = colour(hall.calendar, case, today, hall.config.hall.case_warn_days)
    hall.changes.touch(case)
    ref = hall.queue.all.get(case.ticket) if case.ticket else None
    detail.update(down_detail(case))
    hall.emit(EventKind.CASE_STEP, now, ref, case=case.number, action=cmd.action, before=before,
              after=case.state, due=case.due.isoformat(), **detail)
    return {"case": view(hall, case, today)}


def _decide(case: Case, decision: str, reasons: str, today: date, now: datetime) -> None:
    if decision == "refused" and not reasons:
        raise Refused("reasons_needed", "不予批准须写明理由", "a refusal gives its reasons")
    case.decision, case.reasons, case.decided_on = decision, reasons, today


def _end_pause(case: Case, today: date) -> None:
    if case.paused_from is not None:
        case.pauses = (*case.pauses, (case.paused_from, today.isoformat()))
        case.paused_from = None
    case.back_to = None


def _hand_off(hall: HallState, case: Case, cmd: CaseStep, now: datetime) -> None:
    """分送: to a window (the matter's by default); a 联办件 to its lead and partner
    departments, a sub-task each."""
    if cmd.window is not None:
        if cmd.window not in hall.window_cfg:
            raise Refused("unknown_window", f"没有{cmd.window}号窗口", f"no window {cmd.window}")
        case.window = cmd.window
    if case.form == "joint":
        matter = hall.catalogue.matters.get(case.matter)
        parts = list(dict.fromkeys(cmd.departments or (
            (case.department, *matter.partners) if matter else (case.department,))))
        tasks = [CaseTask(id=f"{case.number}/{i}", case=case.number, department=d)
                 for i, d in enumerate(parts, 1)]
        hall.cases.tasks[case.number] = tasks
        for t in tasks:
            hall.changes.touch(t)


def _complete_task(hall: HallState, case: Case, cmd: CaseStep, today: date, now: datetime) -> dict[str, Any]:
    tasks = hall.cases.tasks.get(case.number, [])
    task = next((t for t in tasks if t.id == cmd.task or t.department == cmd.task), None)
    if task is None or task.state == "done":
        raise Refused("unknown_task", "没有这项待办的协办", "no such open part of this case")
    task.state, task.result, task.note, task.done_at = "done", cmd.decision or "approved", cmd.note, now
    hall.changes.touch(task)
    if all(t.state == "done" for t in tasks):            # the last part: the case is decided
        refused = [t.department for t in tasks if t.result == "refused"]
        _decide(case, "refused" if refused else "approved",
                cmd.reasons or ("、".join(refused) + " 不予批准" if refused else ""), today, now)
        case.state = "decided"
    return {"task": task.id, "department": task.department, "result": task.result,
            "open_tasks": sum(1 for t in tasks if t.state == "open")}


def clock(hall: HallState, cmd: CaseClock, now: datetime) -> dict[str, Any]:
    """The scheduler re-reads the colours on the day one may change; a change is an event
    (预警: yellow, then red). Without a number, every open case's."""
    today = _today(hall, now)
    numbers = [cmd.number] if cmd.number is not None else list(hall.cases.by_number)
    changed = []
    for number in numbers:
        case = hall.cases.by_number.get(number)
        if case is None:
            continue
        new = colour(hall.calendar, case, today, hall.config.hall.case_warn_days)
        if new != case.colour:
            before, case.colour = case.colour, new
            hall.changes.touch(case)
            hall.emit(EventKind.CASE_WARNING, now, case=case.number, before=before, colour=new,
                      due=case.due.isoformat())
            changed.append(number)
    return {"changed": changed}


#: The one timer of the cases: the next midnight at which any open case may change colour.
SWEEP = "cases"


def timers(hall: HallState) -> dict[str, tuple[datetime, Command]]:
    """One timer for all the cases (``SWEEP``): at the hall's local midnight of the earliest
    day an open case's colour may change, or at once when a case's colour today is not yet
    the stored one. Asked for after every commit: each case's day is worked out again only
    when a commit touched it, unless the day, the calendar or the warning days changed."""
    c = hall.cases
    warn = hall.config.hall.case_warn_days
    basis = (hall.day, warn, hall.calendar)
    if c.timer_basis != basis:
        c.timer_basis, c.change_days = basis, {}
        todo = set(c.by_number)
    else:                                       # touched: committed since, or in this batch
        todo = (c.touched | {case.number for case in hall.changes.of(Case)}) & c.by_number.keys()
    c.touched.clear()
    for number in todo:
        case = c.by_number[number]
        day = next_change(hall.calendar, case, hall.day, warn)
        if colour(hall.calendar, case, hall.day, warn) != case.colour:
            day = hall.day                      # changed already (the rollover came first): now
        if day is None:
            c.change_days.pop(number, None)
        else:
            c.change_days[number] = day
    if not c.change_days:
        return {}
    first = min(c.change_days.values())
    if c.sweep is None or c.sweep[0].date() != first:
        c.sweep = (datetime.combine(first, time(0), hall.tz), CaseClock())
    return {SWEEP: c.sweep}


# ---------------------------------------------------------------------- reading
def masked(name: str) -> str:
    """张三 → 张*, 张三丰 → 张*丰, 欧阳娜娜 → 欧**娜: a name as public pages show it."""
    if len(name) <= 2:
        return name[:1] + "*" * (len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def view(hall: HallState, case: Case, today: date) -> dict[str, Any]:
    """What staff pages show of a case: the ID number masked, never sealed or in clear."""
    tasks = hall.cases.tasks.get(case.number, [])
    left = None if case.state in DECIDED or not case.open else \
        hall.calendar.working_days_between(today, case.due) if today <= case.due else \
        -hall.calendar.working_days_between(case.due, today)
    return {
        "number": case.number, "matter": case.matter, "matter_name": case.matter_name,
        "form": case.form, "form_name": FORMS.get(case.form, case.form), "department": case.department,
        "state": case.state, "state_name": STATES[case.state][0], "state_en": STATES[case.state][1],
        "accepted_on": case.accepted_on.isoformat(), "due": case.due.isoformat(),
        "limit_days": case.limit_days, "days_left": left, "colour": case.colour,
        "applicant": case.applicant, "applicant_masked": masked(case.applicant),
        "id_masked": case.id_masked, "phone": case.phone, "ticket": case.ticket_number,
        "window": case.window, "materials": list(case.materials), "missing": list(case.missing),
        "tolerated": case.tolerated, "late_entry": case.late_entry, "notes": case.notes,
        "decision": case.decision, "reasons": case.reasons,
        "decided_on": case.decided_on.isoformat() if case.decided_on else None,
        "on_time": on_time(case), "query_code": case.query_code,
        "status_path": f"/c/{case.token}",
        "origin_hall": case.origin_hall, "origin_number": case.origin_number,
        "upper_number": case.upper_number,
        "refused_above": refused_above(case),
        "upper_state": STATES.get(case.upper_state or "", (case.upper_state, case.upper_state)),
        "tasks": [{"id": t.id, "department": t.department, "state": t.state, "result": t.result}
                  for t in tasks],
        "actions": [a for a in TRANSITIONS.get(case.state, {})
                    if not (a == "decide" and (case.form == "joint" or
                                               (case.state == "accepted" and case.form != "instant")))
                    and not (a == "escalate" and case.form != "upper")
                    and not (a == "complete_task" and not any(t.state == "open" for t in tasks))],
    }


def refused_above(case: Case) -> str | None:
    """What the hall above said when it refused the case for good (``UpperRefused``), while
    the case waits here for the clerk."""
    if case.state == "accepted" and case.history and case.history[-1][0] == "upper_refused":
        return case.notes.splitlines()[-1] if case.notes else ""
    return None


def public(case: Case) -> dict[str, Any]:
    """What a citizen's status page and the terminal show: nothing personal beyond the masked
    name."""
    return {"number": case.number, "matter_name": case.matter_name, "state": case.state,
            "state_name": STATES[case.state][0], "state_en": STATES[case.state][1],
            "applicant": masked(case.applicant), "accepted_on": case.accepted_on.isoformat(),
            "due": case.due.isoformat(), "paused": case.state == "supplement",
            "missing": list(case.missing) if case.state == "supplement" else [],
            "decided_on": case.decided_on.isoformat() if case.decided_on else None,
            "window": case.window}


HANDLERS: dict[type[Command], Callable[[HallState, Any, datetime], dict[str, Any]]] = {
    OpenCase: open_case, CaseStep: step, CaseClock: clock}

"""Roles and what each may do (pure).

A route or a CLI action names one permission; a principal (a person, a program's token or an
enrolled screen) holds roles; ``may`` says whether any of its roles grants the permission.
Roles are the hall's own: 管理员 admin, 值班长 supervisor, 总台 desk, 窗口 clerk, 查询 viewer,
and two for the hall's own pages enrolled as devices: 取号机 kiosk and 屏幕 screen.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every permission a route can name, and what it covers.
PERMISSIONS: dict[str, str] = {
    "hall.read": "the live hall: lines, windows, tickets of the day, device health in full",
    "screen.read": "the pushes the hall's screens show (calls, board)",
    "tickets.issue": "take a ticket (kiosk, desk)",
    "tickets.manage": "cancel a ticket, operate any window from a page",
    "windows.operate": "call, serve and rate at the windows the clerk may work",
    "appointments.read": "list bookings",
    "appointments.write": "add and cancel bookings",
    "config.read": "read the hall's configuration",
    "config.write": "change the hall's configuration and device credentials",
    "devices.read": "the device registry with addresses and errors",
    "users.manage": "people, roles, API tokens and enrolled screens",
    "audit.read": "the audit log",
    "reports.read": "statistics and reports",
    "cases.read": "the matter catalogue and the hall's cases (the applicant's ID number masked)",
    "cases.write": "open cases at the desk, hand them on, print their notices",
    "cases.review": "work cases in the back office: review, finish a part, mark ready, hand over",
    "cases.step": "ask for materials (补正), note them received, decide: the desk and the back office",
    "cases.id": "see an applicant's whole ID number (each view audited)",
    "matters.write": "change the matter catalogue (import, add, change, remove)",
    "followups.manage": "follow 差评 up: return visits, rectification, feedback, appeals",
    "ratings.own": "a clerk's own ratings (never colleagues'; the rater is never shown)",
    "ratings.give": "a window's evaluator: its prompt and the citizen's one rating",
}

ROLES: dict[str, tuple[str, str, frozenset[str]]] = {
    # name: (Chinese name, English name, permissions)
    "admin": ("管理员", "administrator", frozenset(PERMISSIONS)),
    "supervisor": ("值班长", "supervisor", frozenset({
        "hall.read", "screen.read", "tickets.issue", "tickets.manage", "windows.operate",
        "appointments.read", "appointments.write", "config.read", "devices.read", "reports.read",
        "cases.read", "followups.manage"})),
    "desk": ("总台", "reception desk", frozenset({
        "hall.read", "tickets.issue", "appointments.read", "appointments.write", "windows.operate",
        "cases.read", "cases.write", "cases.step", "cases.id"})),
    "clerk": ("窗口", "window clerk", frozenset({"hall.read", "windows.operate", "cases.read",
                                                 "cases.review", "cases.step", "ratings.own"})),
    "viewer": ("查询", "viewer", frozenset({"hall.read", "reports.read"})),
    "kiosk": ("取号机", "kiosk page", frozenset({"tickets.issue", "screen.read"})),
    "screen": ("屏幕", "screen page", frozenset({"screen.read"})),
    "evaluator": ("评价器", "evaluator page", frozenset({"screen.read", "ratings.give"})),
}
#: Roles a person (or a program's token) may be given; kiosk and screen are for enrolled pages.
PERSON_ROLES = ("admin", "supervisor", "desk", "clerk", "viewer")
DEVICE_ROLES = {"kiosk": "kiosk", "terminal": "kiosk", "window_display": "screen", "hall_display": "screen",
                "evaluator": "evaluator"}


class UnknownRole(ValueError):
    pass


def check_roles(roles: list[str] | tuple[str, ...],
                allowed: tuple[str, ...] = PERSON_ROLES) -> tuple[str, ...]:
    """``roles`` as a sorted tuple without repeats, or ``UnknownRole`` naming the bad one."""
    for role in roles:
        if role not in allowed:
            raise UnknownRole(f"unknown role {role!r} (one of {', '.join(allowed)})")
    if not roles:
        raise UnknownRole("at least one role is needed")
    return tuple(sorted(set(roles)))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: ``kind`` is ``user``, ``token`` or ``device``; ``staff`` links
    a clerk's account to the hall's clerk (工号), whose windows it may work."""

    kind: str
    name: str
    roles: tuple[str, ...]
    staff: str | None = None

    @property
    def actor(self) -> str:
        """The actor written on events and audit rows: ``user:li``, ``token:ab12``, ``device:kiosk-1``."""
        return f"{self.kind}:{self.name}"

    def may(self, permission: str) -> bool:
        return any(permission in ROLES[r][2] for r in self.roles if r in ROLES)

    def only_own_windows(self) -> bool:
        """A clerk (and no role that may operate every window) acts only at its own windows."""
        return not self.may("tickets.manage")

"""Sign-in for the page tests: a person made for the test in the running server's accounts,
and a browser context enrolled as one of the hall's page devices through the API, the way an
administrator does it at ``/login`` (the login page's own test drives the form)."""

from __future__ import annotations

from typing import Any

from controller.auth.accounts import AccountError
from controller.web.access import ACCOUNTS

ADMIN, PASSWORD = "admin", "Yimen-tests-2026"


async def add_person(server: Any, name: str = ADMIN, roles: tuple[str, ...] = ("admin",),
                     password: str = PASSWORD, display_name: str = "测试管理员") -> None:
    """``name`` with ``roles`` in the running hall ``server``'s accounts (once)."""
    try:
        await server.runner.app[ACCOUNTS].add_user(name, list(roles), password, display_name)
    except AccountError as exc:
        if exc.code != "user_exists":
            raise


async def token_headers(server: Any, *roles: str) -> dict[str, str]:
    """Request headers with a new API token of ``roles`` (default admin), for plain HTTP."""
    _, text = await server.runner.app[ACCOUNTS].add_token("page tests", list(roles or ("admin",)))
    return {"Authorization": f"Bearer {text}"}


async def enrol(context: Any, base: str, server: Any, device: str) -> str:
    """Enrol the Playwright browser ``context`` as ``device`` (an administrator signs in and
    enrols it, through the API and the context's own cookies); the device's page."""
    await add_person(server)
    origin = {"Origin": base}
    login = await context.request.post(f"{base}/api/auth/login", headers=origin,
                                       data={"user": ADMIN, "password": PASSWORD})
    assert login.ok, await login.text()
    csrf = (await login.json())["csrf"]
    enrolled = await context.request.post(f"{base}/api/auth/enrol", data={"device": device},
                                          headers={**origin, "X-CSRF-Token": csrf})
    assert enrolled.ok, await enrolled.text()
    return (await enrolled.json())["page"]

"""One entry point for every command, whichever door it came in by."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.core.errors import Refused
from controller.core.hall import HallState

#: The commands the hall understands, by name; each is a ``HallState`` method.
OPS = ("take", "cancel", "add_appointment", "login", "logout", "pause", "resume", "call_next",
       "call_number", "recall", "no_show", "start", "done", "hold", "transfer", "rollover",
       "evaluate", "rate", "expire_evaluation")

def _params(op: str) -> tuple[frozenset[str], frozenset[str]]:
    """A command's argument names and the required ones (all but ``self`` and ``now``)."""
    params = list(inspect.signature(getattr(HallState, op)).parameters.values())[2:]
    return (frozenset(p.name for p in params),
            frozenset(p.name for p in params if p.default is inspect.Parameter.empty))


_SIGNATURES = {op: _params(op) for op in OPS}


@dataclass(frozen=True, slots=True)
class Command:
    """A command for the hall: ``op`` with string arguments."""

    op: str
    args: dict[str, Any] = field(default_factory=dict)


def check(command: Command) -> None:
    """Refuse a command whose name or arguments are wrong, before it reaches the rules."""
    sig = _SIGNATURES.get(command.op)
    if sig is None:
        raise Refused("unknown_command", "无法识别的指令", f"unknown command {command.op!r}")
    if not isinstance(command.args, dict):
        raise Refused("bad_arguments", "指令参数有误", "arguments must be an object")
    params, required = sig
    for name, value in command.args.items():
        if name not in params:
            raise Refused("bad_arguments", "指令参数有误", f"unexpected argument {name!r}")
        if value is not None and not isinstance(value, str):
            raise Refused("bad_arguments", "指令参数有误", f"{name} must be a string")
    missing = required.difference(command.args)
    if missing:
        raise Refused("bad_arguments", "指令参数有误", f"missing {', '.join(sorted(missing))}")


def apply(hall: HallState, command: Command, now: datetime) -> dict[str, Any]:
    """Check and run one command; raises ``Refused`` with nothing changed."""
    check(command)
    return getattr(hall, command.op)(now, **command.args)

"""The project's one exception tree (异常): every error Yimen raises on purpose is a
``YimenError``; each leaf also subclasses the builtin it stands for, so callers that only know
``ValueError`` or ``RuntimeError`` still catch it.

    YimenError
    ├── Refused (ValueError)            a command the rules or the door do not allow
    ├── ConfigError (ValueError)        a hall configuration that cannot be used
    ├── ProtocolError (ValueError)      a device message the controller cannot act on (protocol/)
    ├── EngineStopped (RuntimeError)    the engine is not running; the command was not taken
    └── StorageUnavailable (RuntimeError)  nothing was committed; the command may be retried
"""

from __future__ import annotations

from typing import Any

#: One problem with one field: ``(key, zh-CN, English)``.
Problem = tuple[str, str, str]


class YimenError(Exception):
    """Anything Yimen raises on purpose."""


class Refused(YimenError, ValueError):
    """A command the hall's rules (or the door's checks) do not allow. Nothing was changed.

    ``code`` is the protocol's snake_case error code; ``message`` is the zh-CN text for a
    device's screen; ``message_en`` the English one.
    """

    def __init__(self, code: str, message: str, message_en: str = "",
                 problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(f"{code}: {message_en or message}")
        self.code = code
        self.message = message
        self.message_en = message_en
        self.problems = problems

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "message_en": self.message_en}
        if self.problems:       # each field's own error, for a form to show in place
            out["problems"] = [{"key": k, "message": zh, "message_en": en} for k, zh, en in self.problems]
        return out


class ConfigError(YimenError, ValueError):
    """A hall configuration that cannot be used; the message names file and key, and
    ``problems`` lists each as ``(key, zh-CN, English)``."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class EngineStopped(YimenError, RuntimeError):
    """The engine is not running; the command was not taken."""


class StorageUnavailable(YimenError, RuntimeError):
    """The command could not be committed; it had no effect and may be retried."""

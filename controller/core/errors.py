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


class YimenError(Exception):
    """Anything Yimen raises on purpose."""


class Refused(YimenError, ValueError):
    """A command the hall's rules (or the door's checks) do not allow. Nothing was changed.

    ``code`` is the protocol's snake_case error code; ``message`` is the zh-CN text for a
    device's screen; ``message_en`` the English one.
    """

    def __init__(self, code: str, message: str, message_en: str = "") -> None:
        super().__init__(f"{code}: {message_en or message}")
        self.code = code
        self.message = message
        self.message_en = message_en

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "message_en": self.message_en}


class ConfigError(YimenError, ValueError):
    """A hall configuration that cannot be used; the message names file and key."""


class EngineStopped(YimenError, RuntimeError):
    """The engine is not running; the command was not taken."""


class StorageUnavailable(YimenError, RuntimeError):
    """The command could not be committed; it had no effect and may be retried."""

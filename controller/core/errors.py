"""Refusals: errors as values at the edges (拒绝原因)."""

from __future__ import annotations


class Refused(Exception):
    """A command the hall's rules do not allow. Nothing was changed.

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

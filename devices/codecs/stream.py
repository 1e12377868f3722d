"""What every frame decoder shares: the buffer, the counters and the resync rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Stream:
    """Bytes received and not yet decoded, with what was thrown away.

    ``max_buffer`` bounds memory on a line that sends only noise."""

    buf: bytearray = field(default_factory=bytearray)
    frames: int = 0
    bad_frames: int = 0
    dropped_bytes: int = 0
    max_buffer: int = 4096

    def add(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > self.max_buffer:
            drop = len(self.buf) - self.max_buffer
            del self.buf[:drop]
            self.dropped_bytes += drop

    def skip_to(self, marker: bytes, start: int = 0) -> bool:
        """Drop everything before the next ``marker`` at or after ``start``; False when none
        (the tail that could begin a marker is kept)."""
        at = self.buf.find(marker, start)
        if at < 0:
            keep = len(marker) - 1
            drop = max(0, len(self.buf) - keep)
            # keep a partial marker at the end
            while drop < len(self.buf) and not marker.startswith(bytes(self.buf[drop:])):
                drop += 1
            self.dropped_bytes += drop
            del self.buf[:drop]
            return False
        self.dropped_bytes += at
        del self.buf[:at]
        return True

    def reject(self) -> None:
        """The frame at the head is bad: count it and resync one byte further on."""
        self.bad_frames += 1
        self.dropped_bytes += 1
        del self.buf[:1]

    def take(self, n: int) -> bytes:
        frame = bytes(self.buf[:n])
        del self.buf[:n]
        self.frames += 1
        return frame

    def extract(self, start: bytes, header: int, length: Callable[[bytes], int | None],
                valid: Callable[[bytes], bool]) -> list[bytes]:
        """The complete frames that begin with ``start``: ``length(head)`` gives a frame's
        size from its first ``header`` bytes (None: that is no frame), ``valid(frame)`` checks
        the whole (its check bytes). A frame not all here yet waits for the rest."""
        out: list[bytes] = []
        while self.skip_to(start):
            if len(self.buf) < header:
                break
            n = length(bytes(self.buf[:header]))
            if n is None:
                self.reject()
                continue
            if len(self.buf) < n:
                break
            if not valid(bytes(self.buf[:n])):
                self.reject()
                continue
            out.append(self.take(n))
        return out

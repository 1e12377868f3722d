"""Pushes to the hall's pages (Server-Sent Events): the hall screen, window screens and the
ticket status page are told of every call and of the board, never polled.

``GET /api/stream`` sends ``board`` at once and again after every change (at most every
``BOARD_EVERY_S`` while tickets are taken, at once after a call) and a ``call`` event per call
or recall. ``GET /api/status/{token}/stream`` sends one ticket's ``status`` instead of the
board (``{token}``: its status page's, ``core/status_link.py``). A client too slow to keep
up is dropped (its queue fills) and reconnects by itself (``EventSource`` does); nothing else
waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from controller.bus import views
from controller.bus.calls import CallLog
from controller.core.errors import EngineStopped, Refused, StorageUnavailable
from controller.core.hall import HallState
from controller.core.model import TicketState
from controller.engine import Committed, Engine

log = logging.getLogger("yimen.web")

BOARD_EVERY_S = 0.2
QUEUE = 64
KEEPALIVE_S = 15.0
#: how many next numbers per service, and missed numbers (过号), the board lists
NEXT, MISSED = 5, 12


class ScreenFeed:
    """The pushes of one hall."""

    def __init__(self, engine: Engine, calls: CallLog) -> None:
        self.engine = engine
        self.calls = calls
        self.clients: set[asyncio.Queue] = set()
        self.dropped = 0
        self._dirty = asyncio.Event()
        self._urgent = False
        self._task: asyncio.Task | None = None
        calls.subscribe(self._on_events)

    def start(self) -> None:
        self._task = asyncio.create_task(self._boards(), name="yimen-screen-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.end_streams()

    def end_streams(self) -> None:
        """End every open stream now (the server is shutting down: its pages reconnect to
        the next one)."""
        for q in list(self.clients):
            self.clients.discard(q)
            with contextlib.suppress(asyncio.QueueEmpty):
                while q.full():
                    q.get_nowait()
            q.put_nowait(None)

    def _on_events(self, committed: Committed, calls: list[dict[str, Any]]) -> None:
        """After each commit: calls at once, then the board (and each status page's status);
        after a rebuild from storage the board at once, showing the stored state."""
        for call in calls:
            self._broadcast("call", call)
        self._urgent = self._urgent or bool(calls) or committed.rebuilt   # the board at once
        self._dirty.set()

    async def _boards(self) -> None:
        while True:
            await self._dirty.wait()
            if not self._urgent:
                await asyncio.sleep(BOARD_EVERY_S)
            try:
                await self.engine.settled()
                self._urgent = False
                self._send_boards()
            except (StorageUnavailable, EngineStopped):
                await asyncio.sleep(BOARD_EVERY_S)     # the state is being reloaded: again
            except Exception:  # noqa: BLE001 - the pages must go on being pushed
                log.exception("pushing the board to the pages failed")
                await asyncio.sleep(BOARD_EVERY_S)

    def _send_boards(self) -> None:
        self._dirty.clear()
        if self.clients:
            self._broadcast("board", self.board(self.engine.hall))

    def board(self, hall: HallState) -> dict[str, Any]:
        out = views.board(hall, list(self.calls.recent), self.engine.clock.now().astimezone(hall.tz))
        out["hall"] = self.engine.config.hall.name
        out["timezone"] = str(hall.tz)                   # the hall's clock, not the screen's
        for w in out["windows"]:                         # who serves there, what, and how far
            view, cfg = hall.window_view(w["window"]), hall.window_cfg[w["window"]]
            clerk = hall.clerks.get(view["clerk"] or "")
            w.update(ticket_state=view["ticket_state"], staff=view["clerk"],
                     clerk_name=clerk.name if clerk else None,
                     services=[hall.services[s].name for s in cfg.services if s in hall.services])
        for s in out["services"]:                        # the next few numbers of each line
            line = hall.queue.lines.get(s["service"], ())
            s["next"] = [hall.queue.all[key[2]].number for key in itertools.islice(line, NEXT)]
        missed = [t for t in hall.queue.all.values()    # 过号: today's no-shows, latest first
                  if t.day == hall.day and t.state is TicketState.NO_SHOW]
        missed.sort(key=lambda t: t.finished_at or t.called_at or t.issued_at, reverse=True)
        out["missed"] = [t.number for t in missed[:MISSED]]
        return out

    def status(self, hall: HallState, token: str) -> dict[str, Any] | None:
        """What the status page ``/t/{token}`` shows of its ticket: nothing personal."""
        ticket = hall.ticket_by_token(token)
        if ticket is None:
            return None
        public = hall.public(ticket)
        public.pop("priority", None)
        if ticket.window:
            public["window_name"] = hall.window_cfg[ticket.window].name
        return public

    def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        payload = (kind, data, _frame(kind, data))          # encoded once for every client
        for q in list(self.clients):
            self._offer(q, payload)

    def _offer(self, q: asyncio.Queue, item: Any) -> None:
        try:
            q.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            self.clients.discard(q)          # too slow: it will reconnect
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
            q.put_nowait(None)

    async def handle(self, request: web.Request, ticket_id: str | None = None,
                     allowed: Callable[[], Awaitable[bool]] | None = None) -> web.StreamResponse:
        """Stream the screens' pushes, or with ``ticket_id`` one ticket's status; ``allowed()``
        is asked at each keep-alive, and the stream ends when it says no (a disabled screen)."""
        hall = await self.engine.settled()
        ticket = hall.ticket_by_token(ticket_id) if ticket_id is not None else None  # its token
        if ticket_id is not None and ticket is None:
            raise unknown_ticket()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        q: asyncio.Queue = asyncio.Queue(QUEUE)
        self.clients.add(q)
        try:
            await resp.write(_frame(*self._first(await self.engine.settled(), ticket_id)))
            while True:
                try:
                    item = await asyncio.wait_for(q.get(), KEEPALIVE_S)
                except TimeoutError:
                    if allowed is not None and not await allowed():
                        break
                    await resp.write(b": keep-alive\n\n")
                    continue
                if item is None:
                    break
                kind, data, frame = item
                if ticket_id is not None:
                    if kind == "board":
                        frame = _frame("status", self.status(await self.engine.settled(), ticket_id))
                    elif ticket is None or data.get("ticket") != ticket.number:
                        continue                         # another ticket's call
                await resp.write(frame)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except (StorageUnavailable, EngineStopped) as exc:   # begun, the answer cannot become
            log.warning("a stream ended: %s; the page reconnects", exc)  # an error: end it
        except Exception:  # noqa: BLE001
            log.exception("a stream failed; the page reconnects")
        finally:
            self.clients.discard(q)
        return resp

    def _first(self, hall: HallState, ticket_id: str | None) -> tuple[str, dict[str, Any] | None]:
        return ("status", self.status(hall, ticket_id)) if ticket_id else ("board", self.board(hall))



def unknown_ticket() -> Refused:
    """The status page's and stream's answer for a token of no live ticket (a mistyped or old
    link, or a ticket's id in place of its token)."""
    return Refused("unknown_ticket", "没有这张票", "no such ticket")


def _frame(kind: str, data: Any) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {kind}\ndata: {body}\n\n".encode()


FEED: web.AppKey[ScreenFeed] = web.AppKey("feed", ScreenFeed)

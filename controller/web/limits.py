"""Limits on the HTTP side's connections (连接限制), so a flood of slow or idle connections
from the hall's own network cannot take the pages and the API down.

- The process may open as many files as its hard limit allows (the soft limit is raised to
  it at start: the usual 1,024 is what 1,100 slow connections ran out of).
- At most ``max_connections_per_client`` connections at once from one address, and
  ``max_connections`` in all (never more than the open-file limit leaves room for): a
  connection past either is answered 503 and closed at once, before it costs more.
- A connection must send a whole request head within ``HEAD_S`` of opening or of its first
  byte after a finished request (slowloris), and a request's body must have arrived within
  ``BODY_S`` of its head; else it is closed. A kept-alive connection idle for ``KEEPALIVE_S``
  is closed by aiohttp (``keepalive_timeout``), and a handler whose client went away is
  cancelled (``handler_cancellation``). aiohttp's own bounds on a request line and a header
  (8 KB each, 128 headers: ``max_line_size``, ``max_field_size``) stay as they are.
- What such floods make other libraries log (asyncio's "socket.accept() out of system
  resource", aiohttp's errors) is rate-limited (``controller.logs.limit_repeats``).

The mechanism uses only aiohttp's public parts: ``runner.server`` is the protocol factory
that ``loop.create_server`` serves, wrapped in ``_Guarded``; a middleware tells the wrapper
when a request's head has been read (its handler runs) and when the handler is done.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from controller.config import Server
from controller.logs import RateLimitedLog, limit_repeats

log = logging.getLogger("yimen.web.limits")
noisy = RateLimitedLog(log)

HEAD_S = 15.0             # a request line and headers arrive in one packet from a real client
BODY_S = 30.0             # bodies are small (16 KB; a configuration import 1 MB)
KEEPALIVE_S = 30.0        # aiohttp's default is an hour
BACKLOG = 1024            # the listen queue, so a burst waits instead of being refused
#: Open files kept for everything but HTTP connections: the database, the broker, logs.
RESERVED_FILES = 256
#: The loggers a flood of connections makes talk: asyncio's, aiohttp's, the API's errors.
NOISY_LOGGERS = ("asyncio", "aiohttp.server", "aiohttp.web", "aiohttp.access", "yimen.web")
_REFUSED_BODY = "连接过多，请稍后重试 / Too many connections, please try again later\n".encode()
#: The answer to a connection past a limit, sent as it opens.
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Retry-After: 10\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
           % len(_REFUSED_BODY)) + _REFUSED_BODY


@dataclass(frozen=True)
class Limits:
    per_client: int
    total: int
    head_s: float = HEAD_S
    body_s: float = BODY_S

    @classmethod
    def of(cls, server: Server | None = None) -> Limits:
        """The hall file's ``[server]`` limits (without one, the defaults)."""
        server = server or Server()
        return cls(per_client=server.max_connections_per_client, total=server.max_connections)


def raise_open_files() -> int:
    """Raise this process's soft limit of open files to its hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, want, exc)
    return soft


class Guard:
    """Counts connections by client address, and times their heads and bodies."""

    def __init__(self) -> None:
        self.limits = Limits.of()
        self.total = self.limits.total
        self.by_client: dict[str, int] = {}
        self.open = 0
        self.refused = 0
        self.timed_out = 0
        self.connections: dict[asyncio.BaseTransport, _Guarded] = {}   # by transport

    def configure(self, limits: Limits, open_files: int) -> None:
        """``limits``, the total within what ``open_files`` leaves room for."""
        self.limits = limits
        self.total = max(1, min(limits.total, open_files - RESERVED_FILES))

    def admit(self, client: str) -> bool:
        held = self.by_client.get(client, 0)
        if self.open >= self.total or held >= self.limits.per_client:
            self.refused += 1
            noisy.warning("refused", "HTTP connection from %s refused: %d open from it, %d in all",
                          client, held, self.open)
            return False
        self.by_client[client] = held + 1
        self.open += 1
        return True

    def release(self, client: str) -> None:
        self.open -= 1
        held = self.by_client[client] - 1
        if held:
            self.by_client[client] = held
        else:
            del self.by_client[client]

    def protocol(self, inner: Callable[[], asyncio.Protocol]) -> asyncio.Protocol:
        return _Guarded(self, inner)

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        """The request's head is in: its deadline ends, its body's begins (if one is still
        coming); once handled, the connection may wait for its next request."""
        connection = self.connections.get(request.transport) if request.transport else None
        if connection is None:                     # served some other way (a test client)
            return await handler(request)
        connection.begin(request)
        try:
            return await handler(request)
        finally:
            connection.end()


class _Guarded(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, admitted and timed by the guard."""

    def __init__(self, guard: Guard, inner: Callable[[], asyncio.Protocol]) -> None:
        self.guard = guard
        self._make_inner = inner
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.client = "?"
        self.busy = 0
        self._timer: asyncio.TimerHandle | None = None
        self._body: Any = None                 # the body's stream while it is awaited

    # ------------------------------------------------------------------ asyncio's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self.guard.admit(self.client):
            transport.write(REFUSED)
            transport.close()
            return
        self.guard.connections[transport] = self
        self.inner = self._make_inner()
        self.inner.connection_made(transport)
        self._arm(self.guard.limits.head_s)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return                                 # refused: what it sends is dropped
        if not self.busy and self._timer is None:
            self._arm(self.guard.limits.head_s)    # the first byte of the next request
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.inner is None:
            return
        if self.transport is not None:
            self.guard.connections.pop(self.transport, None)
        self.guard.release(self.client)
        inner, self.inner = self.inner, None
        inner.connection_lost(exc)

    # ------------------------------------------------------------------ the middleware's side
    def begin(self, request: web.Request) -> None:
        self.busy += 1
        self._disarm()
        if request.body_exists and not request.content.is_eof():
            self._body = request.content
            self._arm(self.guard.limits.body_s)

    def end(self) -> None:
        self.busy -= 1
        if self.busy:
            return
        if self._body is not None and not self._body.is_eof():
            return                   # aiohttp reads the rest of an unread body: its deadline runs on
        self._body = None
        self._disarm()                             # idle: aiohttp's keep-alive time-out

    # ------------------------------------------------------------------ the deadline
    def _arm(self, seconds: float) -> None:
        self._disarm()
        if self.inner is not None:
            self._timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._body is not None and self._body.is_eof():
            self._body = None
            return                                 # the body came in time
        if self.transport is None or self.inner is None:
            return
        self.guard.timed_out += 1
        what = "body" if self._body is not None else "request"
        noisy.warning(f"slow {what}", "HTTP connection from %s closed: no whole %s in time",
                      self.client, what)
        self.transport.abort()


@asynccontextmanager
async def serving(app: web.Application, sock: socket.socket,
                  limits: Callable[[web.Application], Limits] | None = None) -> AsyncIterator[Guard]:
    """Start ``app`` (its cleanup contexts: the hall) and serve it on the listening ``sock``
    within ``limits(app)`` (read once the app has started; by default the hall file's
    defaults); at the end stop the listener, then the app."""
    guard = Guard()
    app.middlewares.insert(0, guard.middleware)   # outermost: before any other reads the body
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           keepalive_timeout=KEEPALIVE_S, handler_cancellation=True)
    try:
        await runner.setup()
        open_files = raise_open_files()
        limit_repeats(*NOISY_LOGGERS)
        guard.configure(limits(app) if limits is not None else Limits.of(), open_files)
        inner = runner.server
        assert inner is not None, "set up"
        server = await asyncio.get_running_loop().create_server(
            lambda: guard.protocol(inner), sock=sock, backlog=BACKLOG)
        log.info("HTTP: at most %d connections, %d from one address; %d open files",
                 guard.total, guard.limits.per_client, open_files)
        try:
            yield guard
        finally:
            server.close()                        # no new connections; then the app's end
    finally:
        await runner.cleanup()                    # what started of the hall, when setup failed

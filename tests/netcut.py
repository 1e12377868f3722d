"""A network cut between two sites, as TCP sees it: a proxy in front of a broker that can go
silent. While cut, no byte crosses either way and nothing is closed or answered (no FIN, no
RST): what a pulled cable or a dead link between a town and the county looks like, unlike a
broker that stops. What was held crosses when the cut heals, unless an end gave up meanwhile."""

from __future__ import annotations

import asyncio
import contextlib

from protocol.link import BrokerAddress


class Cut:
    def __init__(self, upstream: BrokerAddress) -> None:
        self.upstream = upstream
        self.open = asyncio.Event()
        self.open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.address = BrokerAddress("127.0.0.1", 0)

    async def start(self) -> BrokerAddress:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.address = BrokerAddress("127.0.0.1", self._server.sockets[0].getsockname()[1])
        return self.address

    def cut(self) -> None:
        self.open.clear()

    def heal(self) -> None:
        self.open.set()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.open.wait()                  # a connection tried during the cut hangs
            up_reader, up_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self.open.wait()               # held, not lost: TCP would send it again
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        await self.open.wait()                       # an end that gave up is not heard across a cut
        with contextlib.suppress(OSError):
            dst.close()

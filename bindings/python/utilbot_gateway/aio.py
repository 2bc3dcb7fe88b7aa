"""asyncio: the client driven by the library's event descriptor (loop.add_reader), never by a
thread."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Mapping

from .client import Client
from .events import Event, State, Stats


class AsyncClient:
    """The asyncio face of `Client` (same arguments)::

        async with AsyncClient("my-key") as client:     # connects
            await client.send("send_servers", {"guilds": 3})
            async for event in client:                   # ends when the client is closed
                print(event)

    Several clients can share one event loop; each waits on its own descriptor.
    """

    def __init__(self, key: str, **options: Any) -> None:
        self._client = Client(key, **options)

    async def __aenter__(self) -> AsyncClient:
        self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if not self._client.finished:
                await self.close()
                await self.wait_closed()
        finally:
            self._client.free()

    def connect(self) -> None:
        self._client.connect()

    async def send(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        """Sends an event; never blocks (a full queue raises QueueFullError)."""
        self._client.send(name, data)

    async def close(self, code: int = 1000) -> None:
        """Starts closing with `code`; iteration goes on until the final CLOSED state (await
        `wait_closed()` to skip the remaining events)."""
        self._client.close(code)

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Discards events until the client is finished, at most `timeout` seconds (default:
        the close timeout plus a second)."""
        limit = timeout if timeout is not None else self._client._close_timeout + 1
        try:
            await asyncio.wait_for(self._drain(), limit)
        except asyncio.TimeoutError:
            pass

    async def _drain(self) -> None:
        while await self.next_event() is not None:
            pass

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event (None when the client is finished, or after `timeout` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            event = self._client.next_event(0)
            if event is not None or self._client.finished:
                return event
            ready: asyncio.Future[None] = loop.create_future()
            fd = self._client.fileno()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                if deadline is None:
                    await ready
                else:
                    await asyncio.wait_for(ready, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return None
            finally:
                loop.remove_reader(fd)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        event = await self.next_event()
        if event is None:
            raise StopAsyncIteration
        return event

    @property
    def state(self) -> State:
        return self._client.state

    @property
    def stats(self) -> Stats:
        return self._client.stats

    @property
    def latency(self) -> float | None:
        return self._client.latency

    @property
    def finished(self) -> bool:
        return self._client.finished

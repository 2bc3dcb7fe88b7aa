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

    Several clients can share one event loop; each waits on its own descriptor. Several
    coroutines can wait on one client (say one in `async for`, another in `wait_closed()`):
    the client watches its descriptor once for all of them and wakes them all, each takes
    what is there, and all of them end when the client finishes or is freed.
    """

    def __init__(self, key: str, **options: Any) -> None:
        self._client = Client(key, **options)
        # The loop watching the descriptor (the first one a wait ran on), whether its reader
        # is registered now, and the waits it wakes.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._reading = False
        self._waiters: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> AsyncClient:
        self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if not self._client.finished:
                await self.close()
                await self.wait_closed()
        finally:
            self.free()

    def connect(self) -> None:
        self._client.connect()

    def free(self) -> None:
        """Releases the client at once (its connection is dropped) and ends every wait on it:
        they return None and `async for` loops end. Idempotent; `async with` does it."""
        self._unwatch()
        self._client.free()
        self._wake_all()

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
        limit = timeout if timeout is not None else self._client.close_timeout + 1
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
            if event is not None:
                return event
            if self._client.finished:
                # The others would wait for a descriptor that may never turn readable again.
                self._wake_all()
                return None
            self._watch(loop)
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                if deadline is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return None
            finally:
                self._waiters.discard(waiter)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Registers the reader unless it already is: one per client, kept between waits."""
        if self._loop is not loop:
            self._unwatch()  # the client moved to another loop (a new asyncio.run)
            self._loop = loop
        if not self._reading:
            if self._fd < 0:
                self._fd = self._client.fileno()
            loop.add_reader(self._fd, self._readable)
            self._reading = True

    def _unwatch(self) -> None:
        if self._reading and self._loop is not None:
            if not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            self._reading = False

    def _readable(self) -> None:
        if not self._waiters:
            # Nobody waits: step aside until the next wait, as a descriptor that stays readable
            # (events left for later) would otherwise call this on every turn of the loop.
            self._unwatch()
            return
        self._wake_all()

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

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

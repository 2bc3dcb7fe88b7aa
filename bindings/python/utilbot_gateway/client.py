"""The blocking client: a context manager with an event iterator and decorator handlers."""

from __future__ import annotations

import ctypes
import json
import threading
import time
import weakref
from collections import defaultdict, deque
from typing import Any, Callable, Iterator, Mapping, TypeVar

from . import _ffi
from ._ffi import CStats, Result
from .errors import ClientClosedError, UbgError, error_for
from .events import Event, EventBatch, EventType, LogLevel, State, Stats

DEFAULT_URL = "wss://gateway.utilbot.co/?v=1"
# A blocking wait is cut into slices this long, so Ctrl-C (KeyboardInterrupt) gets through.
_WAIT_SLICE = 0.1

Handler = Callable[[Event], Any]
H = TypeVar("H", bound=Handler)


def _free(handle: int) -> None:
    _ffi.lib().ubg_client_free(handle)


class Client:
    """One bot connection to the Utilbot Gateway, with reconnects, heartbeats and identify.

    Use it as a context manager (it always closes and frees), iterate its events, or register
    handlers and call `run_forever()`::

        with Client("my-key") as client:
            client.connect()
            for event in client.events():
                print(event)

    Every method may be called from any thread; events are pulled by one thread at a time. No
    thread of the library ever runs Python code: events are pulled (pull mode), and the GIL is
    released while waiting.
    """

    def __init__(
        self,
        key: str,
        *,
        url: str = DEFAULT_URL,
        type: str = "bot",
        compression: str | None = None,
        ca_file: str | None = None,
        ca_dir: str | None = None,
        insecure_skip_verify: bool = False,
        proxy: str | None = None,
        proxy_from_env: bool = True,
        reconnect: tuple[float, float] | None = None,
        connect_timeout: float | None = None,
        hello_timeout: float | None = None,
        close_timeout: float | None = None,
        ready_timeout: float | None = None,
        max_message_bytes: int | None = None,
        max_queued_sends: int | None = None,
        max_queued_send_bytes: int | None = None,
        max_queued_events: int | None = None,
        max_queued_event_bytes: int | None = None,
        log_level: LogLevel | str = LogLevel.WARNING,
    ) -> None:
        """`compression`: None or "zlib". `reconnect`: (base, cap) of the backoff in seconds.
        Timeouts are in seconds; None keeps the library's defaults (`ready_timeout`: from
        identify to bot_connect_success). The queue bounds count items and bytes; None keeps the
        defaults. `log_level` turns log lines up to that level into LOG events (a `LogLevel` or its
        name); the default, WARNING, lets warnings and errors through. `proxy`: an
        `http://`, `https://`, `socks5://` or `socks5h://` URL (credentials as `user:password@`); without one,
        the environment decides (`https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`, as curl
        reads them) unless `proxy_from_env` is False."""
        library = _ffi.lib()
        handle = ctypes.c_void_p()
        rc = library.ubg_client_create(None, _encode(key, "key"), ctypes.byref(handle))
        if rc != Result.OK:
            raise error_for(rc, "the key must be a non-empty string" if rc == Result.EINVAL else "")
        self._handle: int | None = handle.value
        self._finalizer = weakref.finalize(self, _free, handle.value)
        self._lib = library
        # Held while pulling and while freeing: a free never pulls the event storage from under
        # a thread that is reading it. Reentrant, as a handler may free its own client.
        self._pull_lock = threading.RLock()
        # One library call moves up to a batch of events (ctypes calls are costly); they wait
        # here as Python objects.
        self._batch = EventBatch()
        self._buffered: deque[Event] = deque()
        self._finished = False
        self._connected = False
        self._handlers: dict[Any, list[Handler]] = defaultdict(list)
        self._close_timeout = close_timeout if close_timeout is not None else 5.0
        try:
            self._check(library.ubg_client_set_url(self._h, _encode(url, "url")))
            self._check(library.ubg_client_set_identity(self._h, _encode(type, "type"), None))
            if compression not in (None, "zlib"):
                raise ValueError(f"compression must be None or 'zlib', not {compression!r}")
            self._check(library.ubg_client_set_compression(self._h, 1 if compression else 0))
            if ca_file is not None or ca_dir is not None:
                self._check(library.ubg_client_set_tls_ca(self._h, _path(ca_file), _path(ca_dir)))
            if insecure_skip_verify:
                self._check(library.ubg_client_set_tls_insecure_skip_verify(self._h, 1))
            if proxy:
                self._check(library.ubg_client_set_proxy(self._h, _encode(proxy, "proxy")))
            self._check(library.ubg_client_set_proxy_from_env(self._h, 1 if proxy_from_env else 0))
            if reconnect is not None:
                self._check(library.ubg_client_set_reconnect(self._h, _ms(reconnect[0]), _ms(reconnect[1])))
            self._check(
                library.ubg_client_set_timeouts(
                    self._h, _ms(connect_timeout), _ms(hello_timeout), _ms(close_timeout)
                )
            )
            self._check(
                library.ubg_client_set_limits(
                    self._h, max_message_bytes or 0, max_queued_sends or 0, max_queued_events or 0
                )
            )
            self._check(
                library.ubg_client_set_queue_bytes(self._h, max_queued_send_bytes or 0, max_queued_event_bytes or 0)
            )
            self._check(library.ubg_client_set_ready_timeout(self._h, _ms(ready_timeout)))
            level = LogLevel[log_level.upper()] if isinstance(log_level, str) else LogLevel(log_level)
            self._check(library.ubg_client_set_log_level(self._h, int(level)))
        except BaseException:
            self.free()
            raise

    # Lifetime

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._handle is not None and self._connected and not self._finished:
                self.close()
                deadline = time.monotonic() + self._close_timeout + 1
                while not self._finished and time.monotonic() < deadline:
                    self._pull(max(0.0, deadline - time.monotonic()))
        finally:
            self.free()

    def free(self) -> None:
        """Releases the client at once (its connection is dropped). Idempotent; also done when
        the object is garbage-collected or the interpreter exits."""
        if self._handle is None:
            return
        self._finished = True  # a puller stops at its next slice (at most 0.1 s) and lets go
        with self._pull_lock:
            if self._handle is not None:
                self._handle = None
                self._buffered.clear()
                self._batch.clear()
                self._finalizer()

    # Commands

    def connect(self) -> None:
        """Starts connecting; returns at once. Progress arrives as events."""
        self._check(self._lib.ubg_client_connect(self._h))
        self._connected = True

    def send(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        """Sends an event with `data` (a JSON object) as its `d`. Before the session is ready it
        waits in a bounded queue and goes out right after identify."""
        payload = None if data is None else json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        self._check(self._lib.ubg_client_send(self._h, _encode(name, "name"), payload))

    def close(self, code: int = 1000) -> None:
        """Closes for good with `code` (1000 or 3000-4999). Events continue until the final
        CLOSED state; iterating `events()` ends there."""
        if not self._connected:
            self.free()
            return
        self._check(self._lib.ubg_client_close(self._h, code))

    # State

    @property
    def state(self) -> State:
        value = ctypes.c_int()
        self._check(self._lib.ubg_client_get_state(self._h, ctypes.byref(value)))
        return State(value.value)

    @property
    def stats(self) -> Stats:
        stats = CStats()
        stats.size = ctypes.sizeof(CStats)
        self._check(self._lib.ubg_client_get_stats(self._h, ctypes.byref(stats)))
        return Stats.from_c(stats)

    @property
    def latency(self) -> float | None:
        """The last heartbeat round trip in seconds, None until measured."""
        return self.stats.last_latency

    @property
    def close_timeout(self) -> float:
        """Seconds a close may take before the connection is dropped (the `close_timeout`
        argument, or the library's default of 5)."""
        return self._close_timeout

    def fileno(self) -> int:
        """A descriptor readable while events wait in the library (for select, selectors,
        asyncio); a method, so the client itself is a file object:
        `selector.register(client, selectors.EVENT_READ)`. One pull takes a batch, so once it
        is readable, take events with `next_event(0)` until that returns None: the rest of a
        batch waits in this object, not behind the descriptor. Owned by the client: do not
        read or close it; it is closed when the client is freed."""
        fd = ctypes.c_int32()
        self._check(self._lib.ubg_client_get_event_fd(self._h, ctypes.byref(fd)))
        return fd.value

    @property
    def finished(self) -> bool:
        """True once the client reached CLOSED or FAILED and every event was taken."""
        return self._finished and not self._buffered

    # Events

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to `timeout` seconds (None: until one comes). None on
        timeout or when the client is finished."""
        return self._pull(timeout)

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yields events until the client is finished (closed or refused), or until no event
        came for `timeout` seconds."""
        buffered = self._buffered
        while not self._finished:
            while buffered:  # the rest of the last batch, without a call per event
                try:
                    event = buffered.popleft()
                except IndexError:  # another thread took it
                    break
                yield event
            event = self._pull(timeout)
            if event is None:
                return
            yield event

    def on(self, name: str) -> Callable[[H], H]:
        """Decorator: call the function with every DISPATCH event called `name`."""

        def register(handler: H) -> H:
            self._handlers[name].append(handler)
            return handler

        return register

    def on_ready(self, handler: H) -> H:
        self._handlers[EventType.READY].append(handler)
        return handler

    def on_error(self, handler: H) -> H:
        self._handlers[EventType.ERROR].append(handler)
        return handler

    def on_close(self, handler: H) -> H:
        self._handlers[EventType.CLOSED].append(handler)
        return handler

    def on_event(self, handler: H) -> H:
        """Decorator: call the function with every event of any type."""
        self._handlers[None].append(handler)
        return handler

    def run_forever(self) -> None:
        """Connects (if needed) and dispatches events to the handlers until the client is
        closed. A handler's exception propagates out of here; a fatal gateway refusal raises
        its `GatewayRefusedError` (WrongKeyError, WrongVersionError, WrongIdentifyError)."""
        if not self._connected:
            self.connect()
        for event in self.events():
            self.dispatch(event)
            if event.type == EventType.FATAL:
                error = event.error
                assert error is not None
                raise error

    def dispatch(self, event: Event) -> None:
        """Calls the handlers registered for `event`."""
        for handler in self._handlers.get(None, ()):
            handler(event)
        for handler in self._handlers.get(event.type, ()):
            handler(event)
        if event.type == EventType.DISPATCH:
            for handler in self._handlers.get(event.name, ()):
                handler(event)

    # Internals

    @property
    def _h(self) -> int:
        if self._handle is None:
            raise ClientClosedError(Result.EHANDLE, "the client was freed")
        return self._handle

    def _check(self, rc: int) -> None:
        if rc != Result.OK:
            message = self._lib.ubg_client_last_error(self._handle).decode(errors="replace")
            raise error_for(rc, message)

    def _pull(self, timeout: float | None) -> Event | None:
        try:
            return self._buffered.popleft()
        except IndexError:
            pass
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._pull_lock:
            while not self._finished:
                if self._buffered:  # another thread pulled while this one waited for the lock
                    return self._buffered.popleft()
                left = _WAIT_SLICE if deadline is None else min(_WAIT_SLICE, deadline - time.monotonic())
                rc = self._batch.pull(self._lib, self._h, max(0, int(left * 1000)), self._buffered)
                if rc == Result.OK:
                    return self._buffered.popleft()
                if rc == Result.ECLOSED:
                    self._finished = True
                    return None
                if rc != Result.ETIMEOUT:
                    self._check(rc)
                if deadline is not None and time.monotonic() >= deadline:
                    return None
        return None


def _encode(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {value.__class__.__name__}")
    return value.encode()


def _path(value: Any) -> bytes | None:
    return None if value is None else str(value).encode()


def _ms(seconds: float | None) -> int:
    if seconds is None:
        return 0
    if seconds <= 0:
        raise ValueError("times must be positive")
    return max(1, round(seconds * 1000))


__all__ = ["Client", "DEFAULT_URL", "UbgError"]

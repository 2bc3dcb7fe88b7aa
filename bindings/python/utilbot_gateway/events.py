"""Events and statistics as small Python objects, copied out of the library's structs."""

from __future__ import annotations

import ctypes
import json
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any

from ._ffi import CEvent, CStats, EventType, LogLevel, Result, State
from .errors import UbgError, error_for, refusal


_UNSET: Any = object()
_RESULTS = frozenset(int(r) for r in Result)
_STATES = {int(s): s for s in State}
# The library hands out `d` only after validating it as exactly one JSON value with no
# whitespace around it, so the json module's C scanner can decode it directly: json.loads
# spends most of its time on checks around that scanner (1.8 us against 0.6 us per event).
_scan_once = json.JSONDecoder().scan_once
_new = object.__new__


def _string_at_utf8(address: int, length: int) -> str:
    return ctypes.string_at(address, length).decode()


# One call from library memory to str (CPython), rather than bytes first and then str. A private
# prototype: setting restype on ctypes.pythonapi's own object would change it for every module.
try:
    _utf8: Any = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
        ("PyUnicode_FromStringAndSize", ctypes.pythonapi)
    )
except AttributeError:  # no CPython API (PyPy)
    _utf8 = _string_at_utf8
_DISPATCH = EventType.DISPATCH


def _decode(raw: str) -> Any:
    try:
        value, end = _scan_once(raw, 0)
    except StopIteration:
        return json.loads(raw)  # not reached for library events; json.loads says what is wrong
    return value if end == len(raw) else json.loads(raw)


class Event:
    """One event of a client.

    - `type`: what happened (`EventType`).
    - `name`: the event name for DISPATCH (e.g. "GLOBAL_GUILD_COUNT"), else None.
    - `raw`: the JSON text of `d` (DISPATCH and gateway ERROR), else None; `data` is it decoded
      (on first access).
    - `code`: ERROR: the gateway's `e` (None for local problems); CLOSED, FATAL: the close code;
      LOG: the level.
    - `message`: ERROR: `m` or the library's message; CLOSED: the reason or what failed; FATAL,
      LOG: the text.
    - `local`: the library found the problem itself. `reconnect`: CLOSED, a new attempt follows.
    - `http_status`: CLOSED, the status of a refused upgrade. `state`: the client's state.
    - `error`: for local problems and fatal events, the matching `UbgError`.
    """

    # The fields every event sets are slots; the rest default at class level and are set (in
    # the instance dict) only by the events that have them, so a DISPATCH is five stores.
    __slots__ = ("type", "name", "raw", "state", "_data", "__dict__")
    code: int | None = None
    message: str | None = None
    local = False
    reconnect = False
    http_status: int | None = None
    result = Result.OK

    type: EventType
    name: str | None
    raw: str | None
    state: State

    @classmethod
    def _make(
        cls,
        kind: EventType,
        name: str | None,
        raw: str | None,
        state: State,
        code: int | None = None,
        message: str | None = None,
        local: bool = False,
        reconnect: bool = False,
        http_status: int | None = None,
        result: Result = Result.OK,
    ) -> Event:
        """The one constructor (events come only from the library). A DISPATCH, nearly every
        event, is five stores: its other fields keep their class-level defaults."""
        event = _new(cls)
        event.type = kind
        event.name = name
        event.raw = raw
        event.state = state
        event._data = _UNSET
        if kind is not _DISPATCH:
            event.code = code
            event.message = message
            event.local = local
            event.reconnect = reconnect
            event.http_status = http_status
            event.result = result
        return event

    @property
    def data(self) -> Any:
        """`raw` decoded from JSON (None when there is no `d`)."""
        if self._data is _UNSET:
            self._data = _decode(self.raw) if self.raw is not None else None
        return self._data

    @property
    def error(self) -> UbgError | None:
        if self.type == EventType.FATAL and self.code is not None:
            return refusal(self.code, self.message or "")
        if self.local and self.result != Result.OK:
            return error_for(self.result, self.message or "")
        return None

    def __repr__(self) -> str:
        fields = [f"type={self.type.name}"]
        for key in ("name", "raw", "code", "message", "http_status"):
            value = getattr(self, key)
            if value is not None:
                fields.append(f"{key}={value!r}")
        if self.local:
            fields.append("local=True")
        if self.type == EventType.CLOSED:
            fields.append(f"reconnect={self.reconnect}")
        if self.type == EventType.STATE:
            fields.append(f"state={self.state.name}")
        return f"Event({', '.join(fields)})"


_STRUCT_CODES = {
    ctypes.c_size_t: "N",
    ctypes.c_int: "i",
    ctypes.c_int32: "i",
    ctypes.c_char_p: "P",
    ctypes.c_void_p: "P",
}


def _struct_of(structure: type[ctypes.Structure]) -> struct.Struct:
    """A `struct.Struct` that reads the ctypes `structure` in one call: derived from its fields
    and checked field by field against their offsets, so the two layouts cannot drift apart."""
    fmt = "@"
    for name, kind in structure._fields_:
        fmt += _STRUCT_CODES[kind]
        offset = getattr(structure, name).offset
        if struct.calcsize(fmt) - ctypes.sizeof(kind) != offset:
            raise ImportError(f"{structure.__name__}.{name}: struct offset differs from ctypes' {offset}")
    return struct.Struct(fmt + "x" * (ctypes.sizeof(structure) - struct.calcsize(fmt)))


def _other_event(fields: tuple[Any, ...]) -> Event:
    """An event other than DISPATCH, from the unpacked ubg_event_t."""
    _, kind, name_p, data_p, data_len, code, has_code, message_p, local, reconnect, http_status, state, result = fields
    kind = EventType(kind)
    return Event._make(
        kind,
        ctypes.string_at(name_p).decode() if name_p else None,
        _utf8(data_p, data_len) if data_p else None,
        State(state),
        code if has_code or kind == EventType.LOG else None,
        ctypes.string_at(message_p).decode() if message_p else None,
        bool(local),
        bool(reconnect),
        http_status or None,
        Result(result) if result in _RESULTS else Result.EIO,
    )


class EventBatch:
    """Pulls up to `CAPACITY` events in one library call and copies them out as `Event`s.

    The structs are read with one `struct.iter_unpack` over the array rather than field by
    field through ctypes, and DISPATCH events (nearly all of them) take a short path; events
    of the same name share one name pointer within a call, so each name is decoded once.

    An exception while copying (Ctrl-C, or a failing conversion) loses no event: the array and
    the index of the first event not yet copied are kept, and the next pull copies those
    first, before asking the library for more (they stay valid until that next library pull).
    """

    CAPACITY = 256
    _STRUCT = _struct_of(CEvent)

    def __init__(self) -> None:
        self._array = (CEvent * self.CAPACITY)()
        self._array[0].size = ctypes.sizeof(CEvent)
        # How many events the last library call filled (the library writes it during the call,
        # so a batch is recorded even if Ctrl-C strikes the moment the call returns) and how
        # many of them were copied out: events [copied, count) are still to be copied.
        self._count = ctypes.c_size_t()
        self._count_p = ctypes.pointer(self._count)
        self._copied = 0
        self._view = memoryview(self._array).cast("B")

    def clear(self) -> None:
        """Forgets events not yet copied (their memory goes with the client: call it on free)."""
        self._count.value = 0
        self._copied = 0

    def pull(self, lib: Any, handle: int, timeout_ms: int, into: deque[Event]) -> int:
        """Appends the events of one library call to `into`; when the last pull stopped at an
        exception, the rest of its events instead, without a library call. After an exception
        halfway (such as KeyboardInterrupt), the events already copied are in `into` and the
        others wait for the next pull."""
        start = self._copied
        if start >= self._count.value:
            # No call (a possible Ctrl-C) between these stores and the library's own store of
            # the count: at every point the two describe what is left to copy.
            self._count.value = 0
            self._copied = start = 0
            rc = lib.ubg_client_next_events(handle, timeout_ms, self._array, self.CAPACITY, self._count_p)
            if rc != Result.OK:
                return rc
        n = self._count.value
        # Copied into a list first: an event is in it exactly when its copy finished, so its
        # length is the progress to keep if an exception cuts the loop short.
        copied: list[Event] = []
        append = copied.append
        names: dict[int, str] = {}
        utf8 = _utf8
        make = Event._make
        states = _STATES
        size = self._STRUCT.size
        unpacked = self._STRUCT.iter_unpack(self._view[start * size : n * size])
        try:
            for fields in unpacked:
                kind = fields[1]
                if kind == _DISPATCH:
                    name_p, data_p = fields[2], fields[3]
                    name = names.get(name_p)
                    if name is None:
                        name = names[name_p] = ctypes.string_at(name_p).decode()
                    append(make(_DISPATCH, name, utf8(data_p, fields[4]) if data_p else None, states[fields[11]]))
                else:
                    append(_other_event(fields))
        except BaseException:
            # No call returns between these two stores, so a second Ctrl-C cannot split them.
            self._copied = start + len(copied)
            into.extend(copied)
            raise
        self._copied = n
        into.extend(copied)
        return Result.OK


@dataclass(frozen=True)
class Stats:
    state: State
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    reconnects: int
    last_latency: float | None
    """The last heartbeat round trip in seconds (None until measured)."""
    average_latency: float | None
    queued_events: int
    queue_full_count: int
    sends_failed: int
    """Sent events that were not delivered (each was also an ERROR event)."""

    @classmethod
    def from_c(cls, c: CStats) -> Stats:
        return cls(
            state=State(c.state),
            messages_in=c.messages_in,
            messages_out=c.messages_out,
            bytes_in=c.bytes_in,
            bytes_out=c.bytes_out,
            reconnects=c.reconnects,
            last_latency=c.last_latency_us / 1e6 if c.last_latency_us >= 0 else None,
            average_latency=c.average_latency_us / 1e6 if c.average_latency_us >= 0 else None,
            queued_events=c.queued_events,
            queue_full_count=c.queue_full_count,
            sends_failed=c.sends_failed,
        )


__all__ = ["Event", "EventBatch", "EventType", "LogLevel", "State", "Stats"]

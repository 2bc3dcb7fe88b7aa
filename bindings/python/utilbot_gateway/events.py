"""Events and statistics as small Python objects, copied out of the library's structs."""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from typing import Any

from ._ffi import CEvent, CStats, EventType, LogLevel, Result, State
from .errors import UbgError, error_for, refusal


_UNSET: Any = object()


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

    __slots__ = ("type", "name", "raw", "code", "message", "local", "reconnect", "http_status", "state", "result", "_data")

    def __init__(self, c: CEvent) -> None:
        self.type = EventType(c.type)
        self.name: str | None = c.name.decode() if c.name is not None else None
        self.raw: str | None = ctypes.string_at(c.data, c.data_len).decode() if c.data else None
        self.code: int | None = c.code if c.has_code or self.type == EventType.LOG else None
        self.message: str | None = c.message.decode() if c.message is not None else None
        self.local = bool(c.local)
        self.reconnect = bool(c.reconnect)
        self.http_status: int | None = c.http_status or None
        self.state = State(c.state)
        self.result = Result(c.result) if c.result in set(Result) else Result.EIO
        self._data: Any = _UNSET

    @property
    def data(self) -> Any:
        """`raw` decoded from JSON (None when there is no `d`)."""
        if self._data is _UNSET:
            self._data = json.loads(self.raw) if self.raw is not None else None
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


__all__ = ["Event", "EventType", "LogLevel", "State", "Stats"]

"""Faults a connection asks for with query parameters on its URL.

    fault_no_ack=1            never answer heartbeats (they still count as received: no 4006)
    fault_no_ack_after=N      answer the first N heartbeats, then none
    fault_close=CODE          close with CODE, fault_close_after_ms (default 0) after a
    fault_close_after_ms=MS   successful identify; for the gateway's codes (1000, 4000-4007) the
                              op -1 error with the standard message comes first; any other valid
                              close code (1001-1003, 1007-1014, 3000-4999) closes without one
    fault_malformed=1         send the text {"op":0,"t": (not JSON) right after bot_connect_success
    fault_no_hello=1          never send Hello: the connection stalls from the start
    fault_stall_after_ms=MS   MS after the WebSocket handshake, stop sending and stop handling what
                              arrives (a silent, half-open server); the TCP connection stays open
    fault_error=CODE          right after bot_connect_success, send an op -1 error with CODE, its
                              standard message ("Unknown error." for codes outside the table) and
                              d {"errors":["Injected error."],"data":[null]}, then close with CODE
    fault_no_ready=1          accept identify (the key is checked, the bot counts as identified:
                              send_all and GLOBAL_GUILD_COUNT reach it, a second identify is 4007)
                              but never send bot_connect_success; the connection otherwise stays
                              healthy (Hello, ACKs, the other faults)
    fault_flood=N             after identify (with or without fault_no_ready), send N events
                              {"op":0,"t":"FLOOD","d":{"seq":i}}, i = 0..N-1, as fast as the client
                              reads them (the writer waits for the transport to drain; at most 64
                              are queued at a time, so ACKs and other messages slip in between);
                              then the connection stays healthy. FLOOD events are never stamped
                              (--stamp): their seq is their own. A close (fault_error, fault_close,
                              close_all, a protocol error) ends the flood where it is.

Flags take 1/true or 0/false. After a successful identify the order is: bot_connect_success
(unless fault_no_ready), the malformed text, the flood (which then runs on in the background),
the injected error, then fault_close (when its delay is 0). A parameter
that starts with `fault_` but is not one of these, or a bad value, makes the server refuse the
WebSocket upgrade with HTTP 400 and a one-line reason: a typo never silently disables a fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from websockets.exceptions import ProtocolError
from websockets.frames import Close

#: The text fault_malformed sends: a JSON object cut short.
MALFORMED_TEXT = '{"op":0,"t":'
INJECTED_ERROR = "Injected error."

FAULT_PARAMETERS = (
    "fault_no_ack",
    "fault_no_ack_after",
    "fault_close",
    "fault_close_after_ms",
    "fault_malformed",
    "fault_no_hello",
    "fault_stall_after_ms",
    "fault_error",
    "fault_no_ready",
    "fault_flood",
)


class FaultParameterError(ValueError):
    """A fault parameter the server does not understand; the upgrade is refused with HTTP 400."""


@dataclass(frozen=True)
class Faults:
    no_ack: bool = False
    no_ack_after: int | None = None
    close: int | None = None
    close_after_ms: int = 0
    malformed: bool = False
    no_hello: bool = False
    stall_after_ms: int | None = None
    error: int | None = None
    no_ready: bool = False
    flood: int = 0

    def acks_allowed(self, acks_sent: int) -> bool:
        """Whether the next heartbeat may be answered, given how many were answered so far."""
        if self.no_ack:
            return False
        return self.no_ack_after is None or acks_sent < self.no_ack_after


def valid_close_code(code: int) -> bool:
    """A code a close frame may carry (RFC 6455 7.4): not 1005, 1006 or 1015, not below 1000."""
    try:
        Close(code, "").check()
    except ProtocolError:
        return False
    return True


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise FaultParameterError(f"{name} is given {len(values)} times")
    return values[0]


def _flag(query: dict[str, list[str]], name: str) -> bool:
    value = _single(query, name)
    if value is None:
        return False
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise FaultParameterError(f"{name} must be 1 or 0, not {value!r}")


def _count(query: dict[str, list[str]], name: str) -> int | None:
    value = _single(query, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise FaultParameterError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def _code(query: dict[str, list[str]], name: str) -> int | None:
    code = _count(query, name)
    if code is not None and not valid_close_code(code):
        raise FaultParameterError(f"{name}={code} is not a valid close code (1000-1003, 1007-1014, 3000-4999)")
    return code


def parse_faults(query: dict[str, list[str]]) -> Faults:
    """The faults in a parsed query string (`urllib.parse.parse_qs` shape)."""
    for name in query:
        if name.startswith("fault_") and name not in FAULT_PARAMETERS:
            raise FaultParameterError(f"unknown fault parameter {name!r} (known: {', '.join(FAULT_PARAMETERS)})")
    close = _code(query, "fault_close")
    close_after_ms = _count(query, "fault_close_after_ms")
    if close_after_ms is not None and close is None:
        raise FaultParameterError("fault_close_after_ms needs fault_close")
    return Faults(
        no_ack=_flag(query, "fault_no_ack"),
        no_ack_after=_count(query, "fault_no_ack_after"),
        close=close,
        close_after_ms=close_after_ms or 0,
        malformed=_flag(query, "fault_malformed"),
        no_hello=_flag(query, "fault_no_hello"),
        stall_after_ms=_count(query, "fault_stall_after_ms"),
        error=_code(query, "fault_error"),
        no_ready=_flag(query, "fault_no_ready"),
        flood=_count(query, "fault_flood") or 0,
    )

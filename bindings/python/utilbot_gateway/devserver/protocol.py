"""The gateway's wire format: opcodes, error codes and their messages, the payloads the gateway
sends, and the validation of what a client sends (envelope, event, identify).

Everything here is pure (no I/O), so the rules can be read in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Opcodes (docs/PROTOCOL.md, "Messages").
OP_ERROR = -1  # gateway -> client
OP_EVENT = 0  # gateway -> client
OP_SEND = 1  # client -> gateway
OP_HELLO = 5  # gateway -> client
OP_HEARTBEAT = 10  # client -> gateway
OP_ACK = 11  # gateway -> client

#: The only opcodes a client may send; anything else is 4004.
CLIENT_OPCODES = frozenset({OP_SEND, OP_HEARTBEAT})

# Error / close codes (docs/PROTOCOL.md, "Close codes and reconnects").
UNKNOWN_ERROR = 1000
WRONG_VERSION = 4000
WRONG_AUTH_KEY = 4001
BOT_ID_USED = 4002
NO_OPCODE = 4003
WRONG_OPCODE = 4004
MALFORMED_DATA = 4005
NO_HEARTBEAT = 4006
WRONG_IDENTIFY = 4007

#: The gateway's codes and the message (`m`) sent with each. For these codes the gateway
#: sends an op -1 error before closing with the same code.
MESSAGES: dict[int, str] = {
    UNKNOWN_ERROR: "Unknown error.",
    WRONG_VERSION: "Wrong Version.",
    WRONG_AUTH_KEY: "Wrong auth key.",
    BOT_ID_USED: "Bot ID already in use.",
    NO_OPCODE: "No opcode provided.",
    WRONG_OPCODE: "Wrong opcode.",
    MALFORMED_DATA: "Malformed data.",
    NO_HEARTBEAT: "No heartbeat received.",
    WRONG_IDENTIFY: "Wrong identify.",
}

#: `m` of the 4000 error for a `compression` query value other than `zlib`.
UNKNOWN_COMPRESSION = "Unknown compression."

SUPPORTED_VERSION = "1"
IDENTIFY = "identify"
SEND_SERVERS = "send_servers"
BOT_CONNECT_SUCCESS = "bot_connect_success"
GLOBAL_GUILD_COUNT = "GLOBAL_GUILD_COUNT"
ECHO = "ECHO"
FLOOD = "FLOOD"  # the events fault_flood sends
BOT_TYPE = "bot"

HELLO_SPELLINGS = ("heartbeat", "hearbeat")


def message_for(code: int) -> str:
    """The standard message of a code; codes outside the table get "Unknown error."."""
    return MESSAGES.get(code, MESSAGES[UNKNOWN_ERROR])


# ---------------------------------------------------------------------------------------------
# Encoding what the gateway sends


def encode(payload: Any) -> str:
    """Compact JSON, non-ASCII as is (like JavaScript's JSON.stringify). A string holding a lone
    surrogate (possible when echoing what a client sent) cannot be UTF-8: then it is escaped."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return text


def hello(heartbeat_ms: int, spelling: str = "heartbeat") -> dict[str, Any]:
    return {"op": OP_HELLO, "d": {spelling: heartbeat_ms}}


def ack() -> dict[str, Any]:
    return {"op": OP_ACK}


def event(name: str, data: Any = None, *, with_data: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {"op": OP_EVENT, "t": name}
    if with_data:
        payload["d"] = data
    return payload


def error(
    code: int, message: str | None = None, errors: list[str] | None = None, data: list[Any] | None = None
) -> dict[str, Any]:
    """An op -1 error in the documented field order: op, e, d (only with errors), m."""
    payload: dict[str, Any] = {"op": OP_ERROR, "e": code}
    if errors is not None:
        payload["d"] = {"errors": list(errors), "data": list(data if data is not None else [None] * len(errors))}
    payload["m"] = message if message is not None else message_for(code)
    return payload


# ---------------------------------------------------------------------------------------------
# Validating what a client sends


@dataclass
class GatewayError(Exception):
    """A violation the gateway answers with an op -1 error and a close with the same code."""

    code: int
    message: str | None = None
    errors: list[str] | None = None
    data: list[Any] | None = field(default=None)

    def __post_init__(self) -> None:
        super().__init__(self.code, self.message)

    def payload(self) -> dict[str, Any]:
        return error(self.code, self.message, self.errors, self.data)

    @property
    def reason(self) -> str:
        return self.message if self.message is not None else message_for(self.code)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(message: str) -> dict[str, Any] | None:
    """The JSON object a text message holds, or None when it is not JSON (NaN and Infinity are
    not JSON either) or not an object: such messages are dropped without an answer."""
    try:
        value = json.loads(message, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def opcode(payload: dict[str, Any]) -> int:
    """The client opcode of a payload: OP_SEND or OP_HEARTBEAT.

    Raises 4003 when `op` is absent or null, 4004 when it is not a JSON integer (a string, a
    boolean, 1.0) or not an opcode a client may send."""
    op = payload.get("op")
    if op is None:
        raise GatewayError(NO_OPCODE)
    if type(op) is not int or op not in CLIENT_OPCODES:
        raise GatewayError(WRONG_OPCODE)
    return op


@dataclass(frozen=True)
class ClientEvent:
    name: str
    data: dict[str, Any] | None  # None: `d` absent or null


def client_event(payload: dict[str, Any]) -> ClientEvent:
    """The event of an op 1 payload. `t` must be a string, `d` an object when present (null counts
    as absent); every violation is listed in one 4005 error."""
    errors: list[str] = []
    data: list[Any] = []
    name = payload.get("t")
    if name is None:
        errors.append("Event name not provided.")
        data.append(None)
    elif not isinstance(name, str):
        errors.append("Event name must be a string.")
        data.append(name)
    body = payload.get("d")
    if body is not None and not isinstance(body, dict):
        errors.append("Data must be an object.")
        data.append(body)
    if errors:
        raise GatewayError(MALFORMED_DATA, errors=errors, data=data)
    assert isinstance(name, str)
    return ClientEvent(name, body)


def identify_key(data: dict[str, Any] | None) -> str:
    """Validates an identify's data and returns its key (not yet checked against the accepted ones).

    Missing (or null) / non-string `type` and `key` -> one 4005 listing each problem, in the
    order type, key, with the offending values; a type other than "bot" -> 4007."""
    data = data or {}
    errors: list[str] = []
    offending: list[Any] = []
    for name, label in (("type", "Type"), ("key", "Key")):
        value = data.get(name)
        if value is None:
            errors.append(f"{label} not provided.")
            offending.append(None)
        elif not isinstance(value, str):
            errors.append(f"{label} must be a string.")
            offending.append(value)
    if errors:
        raise GatewayError(MALFORMED_DATA, errors=errors, data=offending)
    if data["type"] != BOT_TYPE:
        raise GatewayError(WRONG_IDENTIFY, errors=["Unsupported type."], data=[data["type"]])
    return data["key"]


def redacted(name: Any, data: Any) -> Any:
    """An event's data as it may be shown (logs, the `received` command): an identify's key
    becomes "***"."""
    if name == IDENTIFY and isinstance(data, dict) and "key" in data:
        return {**data, "key": "***"}
    return data

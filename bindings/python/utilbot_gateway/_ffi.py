"""The C ABI as ctypes sees it: the library, its structs, enums and every function's prototype.

Private to the package. tests/test_prototypes.py parses include/utilbot_gateway.h and checks
every entry of FUNCTIONS, the struct layouts and the enum values against it, so the two cannot
drift apart unnoticed.
"""

from __future__ import annotations

import ctypes
import enum
import os
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p
from pathlib import Path

LIBRARY_NAME = "libutilbot_gateway.so"


class Result(enum.IntEnum):
    OK = 0
    EINVAL = 1
    ESTATE = 2
    ERESOLVE = 10
    ECONNECT = 11
    ETIMEOUT = 12
    ETLS = 13
    EHANDSHAKE = 14
    EPROTOCOL = 15
    ETOOLARGE = 16
    EUTF8 = 17
    EJSON = 18
    EDECOMPRESS = 19
    ECLOSED = 20
    EIO = 21
    EQUEUEFULL = 22
    EREFUSED = 23
    EHANDLE = 24
    EPROXY = 25


class State(enum.IntEnum):
    """The state of a client (ubg_state_t)."""

    IDLE = 0
    CONNECTING = 1
    IDENTIFYING = 2
    READY = 3
    RECONNECTING = 4
    CLOSING = 5
    CLOSED = 6
    FAILED = 7

    @property
    def is_final(self) -> bool:
        return self in (State.CLOSED, State.FAILED)


class EventType(enum.IntEnum):
    """What an event reports (ubg_event_type_t)."""

    READY = 1
    DISPATCH = 2
    ERROR = 3
    CLOSED = 4
    FATAL = 5
    STATE = 6
    LOG = 7


class LogLevel(enum.IntEnum):
    """Log levels (ubg_log_level_t), most severe first."""

    NONE = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    DEBUG = 4


class CEvent(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("type", c_int),
        ("name", c_char_p),
        ("data", ctypes.c_void_p),  # read with data_len, not up to a NUL
        ("data_len", c_size_t),
        ("code", c_int32),
        ("has_code", c_int32),
        ("message", c_char_p),
        ("local", c_int32),
        ("reconnect", c_int32),
        ("http_status", c_int32),
        ("state", c_int),
        ("result", c_int),
    ]


class CStats(ctypes.Structure):
    _fields_ = [
        ("size", c_size_t),
        ("state", c_int),
        ("messages_in", c_uint64),
        ("messages_out", c_uint64),
        ("bytes_in", c_uint64),
        ("bytes_out", c_uint64),
        ("reconnects", c_uint64),
        ("last_latency_us", c_int64),
        ("average_latency_us", c_int64),
        ("queued_events", c_uint64),
        ("queue_full_count", c_uint64),
        ("sends_failed", c_uint64),
    ]


EVENT_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, POINTER(CEvent), c_void_p)

# name: (restype, argtypes), in the header's order.
FUNCTIONS: dict[str, tuple[object, list[object]]] = {
    "ubg_version": (c_char_p, []),
    "ubg_result_name": (c_char_p, [c_int]),
    "ubg_result_string": (c_char_p, [c_int]),
    "ubg_close_code_name": (c_char_p, [c_int32]),
    "ubg_close_code_is_fatal": (c_int32, [c_int32]),
    "ubg_state_name": (c_char_p, [c_int]),
    "ubg_loop_create": (c_int, [POINTER(c_void_p)]),
    "ubg_loop_free": (c_int, [c_void_p]),
    "ubg_client_create": (c_int, [c_void_p, c_char_p, POINTER(c_void_p)]),
    "ubg_client_free": (c_int, [c_void_p]),
    "ubg_client_last_error": (c_char_p, [c_void_p]),
    "ubg_client_set_url": (c_int, [c_void_p, c_char_p]),
    "ubg_client_set_proxy": (c_int, [c_void_p, c_char_p]),
    "ubg_client_set_proxy_from_env": (c_int, [c_void_p, c_int32]),
    "ubg_client_set_identity": (c_int, [c_void_p, c_char_p, c_char_p]),
    "ubg_client_set_compression": (c_int, [c_void_p, c_int32]),
    "ubg_client_set_tls_ca": (c_int, [c_void_p, c_char_p, c_char_p]),
    "ubg_client_set_tls_insecure_skip_verify": (c_int, [c_void_p, c_int32]),
    "ubg_client_set_reconnect": (c_int, [c_void_p, c_uint32, c_uint32]),
    "ubg_client_set_timeouts": (c_int, [c_void_p, c_uint32, c_uint32, c_uint32]),
    "ubg_client_set_limits": (c_int, [c_void_p, c_size_t, c_size_t, c_size_t]),
    "ubg_client_set_queue_bytes": (c_int, [c_void_p, c_size_t, c_size_t]),
    "ubg_client_set_ready_timeout": (c_int, [c_void_p, c_uint32]),
    "ubg_client_set_event_callback": (c_int, [c_void_p, EVENT_CALLBACK, c_void_p]),
    "ubg_client_set_log_level": (c_int, [c_void_p, c_int]),
    "ubg_client_connect": (c_int, [c_void_p]),
    "ubg_client_send": (c_int, [c_void_p, c_char_p, c_char_p]),
    "ubg_client_close": (c_int, [c_void_p, c_int32]),
    "ubg_client_get_state": (c_int, [c_void_p, POINTER(c_int)]),
    "ubg_client_get_stats": (c_int, [c_void_p, POINTER(CStats)]),
    "ubg_client_next_event": (c_int, [c_void_p, c_int32, POINTER(CEvent)]),
    "ubg_client_next_events": (c_int, [c_void_p, c_int32, POINTER(CEvent), c_size_t, POINTER(c_size_t)]),
    "ubg_client_get_event_fd": (c_int, [c_void_p, POINTER(c_int32)]),
}


def library_candidates() -> list[Path]:
    """Where the library is looked for: $UBG_LIBRARY, inside the package (a wheel), then the
    repository's release build (a checkout)."""
    here = Path(__file__).resolve().parent
    candidates = []
    if os.environ.get("UBG_LIBRARY"):
        candidates.append(Path(os.environ["UBG_LIBRARY"]))
    candidates.append(here / LIBRARY_NAME)
    candidates.append(here.parents[2] / ".build" / "release" / LIBRARY_NAME)
    return candidates


_library: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The library, loaded on first use (importing the package, or its dev gateway, needs none)."""
    global _library
    if _library is None:
        _library = _load()
    return _library


def _load() -> ctypes.CDLL:
    tried = []
    for path in library_candidates():
        if path.is_file():
            library = ctypes.CDLL(str(path))
            for name, (restype, argtypes) in FUNCTIONS.items():
                function = getattr(library, name)
                function.restype = restype
                function.argtypes = argtypes
            return library
        tried.append(str(path))
    raise ImportError(
        f"{LIBRARY_NAME} not found (tried {', '.join(tried)}); build it with `make release` "
        "or set UBG_LIBRARY to its path"
    )


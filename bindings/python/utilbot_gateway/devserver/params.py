"""The query string of a bot's URL, read once at the WebSocket upgrade.

Gateway parameters (checked after the upgrade, answered like the real gateway):

    v            must be present and exactly "1", else op -1 e 4000 "Wrong Version." + close 4000
    compression  absent: plain text frames; "zlib": compressed binary frames; anything else
                 (also an empty value): op -1 e 4000 "Unknown compression." + close 4000

Dev parameters (a bad value refuses the upgrade with HTTP 400):

    zlib_style      stream|message|split, overrides --zlib-style for this connection
                    (split: each message in two binary messages, see compression.py)
    hello_spelling  heartbeat|hearbeat, overrides --hello-spelling for this connection
    strict_heartbeat  1|0 (or true|false): the strict heartbeat watchdog (heartbeat.py: a fixed
                    schedule anchored on the Hello, zero grace) for this connection, or not,
                    overriding --strict-heartbeat
    fault_*         see faults.py

Everything else is ignored (also `encoding=zlib`, an older page's spelling of compression).
When a parameter is repeated, the first value counts (like URLSearchParams.get), except for
fault and dev parameters, which must not be repeated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .compression import ZLIB_STYLES
from .faults import FaultParameterError, Faults, parse_faults
from .protocol import HELLO_SPELLINGS


class ParameterError(ValueError):
    """A dev or fault parameter with a bad value: the upgrade is refused with HTTP 400."""


@dataclass(frozen=True)
class ConnectionParams:
    path: str  # the request target as sent, with the query string
    version: str | None  # the raw `v`, None when absent
    compression: str | None  # the raw `compression`, None when absent
    zlib_style: str | None = None  # None: the server's default
    hello_spelling: str | None = None  # None: the server's default
    strict_heartbeat: bool | None = None  # None: the server's default
    faults: Faults = field(default_factory=Faults)


def _dev_choice(query: dict[str, list[str]], name: str, choices: tuple[str, ...]) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ParameterError(f"{name} is given {len(values)} times")
    if values[0] not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(choices)}, not {values[0]!r}")
    return values[0]


def _dev_flag(query: dict[str, list[str]], name: str) -> bool | None:
    value = _dev_choice(query, name, ("1", "0", "true", "false"))
    return None if value is None else value in ("1", "true")


def parse_request_target(target: str) -> ConnectionParams:
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    try:
        faults = parse_faults(query)
    except FaultParameterError as error:
        raise ParameterError(str(error)) from None
    return ConnectionParams(
        path=target,
        version=first("v"),
        compression=first("compression"),
        zlib_style=_dev_choice(query, "zlib_style", ZLIB_STYLES),
        hello_spelling=_dev_choice(query, "hello_spelling", HELLO_SPELLINGS),
        strict_heartbeat=_dev_flag(query, "strict_heartbeat"),
        faults=faults,
    )

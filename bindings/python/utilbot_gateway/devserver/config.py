"""The dev gateway's settings (what the command line sets)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_KEY = "dev-key"
DEFAULT_HEARTBEAT_MS = 45_000
#: How long a close handshake the gateway started may take before the TCP connection is aborted.
CLOSE_TIMEOUT_S = 3.0
#: The largest message a client may send (websockets closes with 1009 above it).
MAX_MESSAGE_BYTES = 1 << 20


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    certdir: str | None = None
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS
    heartbeat_grace_ms: int | None = None  # None: a quarter of the interval
    strict_heartbeat: bool = False  # the fixed, graceless schedule of heartbeat.py for every connection
    keys: list[str] = field(default_factory=lambda: [DEFAULT_KEY])
    zlib_style: str = "stream"
    hello_spelling: str = "heartbeat"
    echo: bool = False
    stamp: bool = False
    verbose: bool = False
    close_timeout_s: float = CLOSE_TIMEOUT_S
    max_message_bytes: int = MAX_MESSAGE_BYTES

    @property
    def grace_ms(self) -> int:
        return self.heartbeat_grace_ms if self.heartbeat_grace_ms is not None else self.heartbeat_ms // 4

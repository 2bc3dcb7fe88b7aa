"""zlib compression of what the gateway sends (query `compression=zlib`).

Every message is compressed in the zlib format (RFC 1950) and sent in binary frames. The
documentation does not say how the real gateway does it, so there are several styles:

    stream   one compressor per connection; each message is flushed with Z_SYNC_FLUSH, so it
             ends in 00 00 ff ff and needs the previous ones to be inflated (one inflater
             per connection on the client side); one binary WebSocket message each
    message  each message is a complete zlib stream of its own (header, data, Adler-32)
    split    like stream (one compressor per connection, sync flushes), but each message's
             compressed bytes go out as TWO binary WebSocket messages: the first never ends in
             00 00 ff ff, the second does; a client joins binary messages until that suffix
             and inflates the whole
"""

from __future__ import annotations

import zlib
from typing import Protocol

ZLIB_STYLES = ("stream", "message", "split")

#: What a sync flush ends with; in the split style only the last part of a message ends so.
SYNC_FLUSH_SUFFIX = b"\x00\x00\xff\xff"


class Encoder(Protocol):
    def messages(self, data: bytes) -> list[bytes]:
        """The binary WebSocket messages that carry `data`, in order."""
        ...


class StreamEncoder:
    def __init__(self) -> None:
        self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, zlib.MAX_WBITS)

    def encode(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def messages(self, data: bytes) -> list[bytes]:
        return [self.encode(data)]


class MessageEncoder:
    def encode(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def messages(self, data: bytes) -> list[bytes]:
        return [self.encode(data)]


class SplitEncoder:
    """The stream style, each message cut in two: the first part is non-empty and does not end in
    00 00 ff ff (so a client that waits for the suffix cannot stop early), the second is the rest,
    the suffix at its end."""

    def __init__(self) -> None:
        self._stream = StreamEncoder()

    def messages(self, data: bytes) -> list[bytes]:
        compressed = self._stream.encode(data)
        body = len(compressed) - len(SYNC_FLUSH_SUFFIX)  # >= 1: a sync flush emits a block header
        cut = max(1, (body + 1) // 2)
        while cut > 1 and compressed[:cut].endswith(SYNC_FLUSH_SUFFIX):
            cut -= 1
        return [compressed[:cut], compressed[cut:]]


def make_encoder(style: str) -> Encoder:
    if style == "stream":
        return StreamEncoder()
    if style == "message":
        return MessageEncoder()
    if style == "split":
        return SplitEncoder()
    raise ValueError(f"unknown zlib style {style!r} (expected one of {', '.join(ZLIB_STYLES)})")

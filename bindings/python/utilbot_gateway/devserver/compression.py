"""zlib compression of what the gateway sends (query `compression=zlib`).

Every message is compressed in the zlib format (RFC 1950) and sent as a binary frame. Two
styles, because the documentation does not say which one the real gateway uses:

    stream   one compressor per connection; each message is flushed with Z_SYNC_FLUSH, so it
             ends in 00 00 ff ff and needs the previous ones to be inflated (one inflater
             per connection on the client side)
    message  each message is a complete zlib stream of its own (header, data, Adler-32)
"""

from __future__ import annotations

import zlib
from typing import Protocol

ZLIB_STYLES = ("stream", "message")


class Encoder(Protocol):
    def encode(self, data: bytes) -> bytes: ...


class StreamEncoder:
    def __init__(self) -> None:
        self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, zlib.MAX_WBITS)

    def encode(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)


class MessageEncoder:
    def encode(self, data: bytes) -> bytes:
        return zlib.compress(data)


def make_encoder(style: str) -> Encoder:
    if style == "stream":
        return StreamEncoder()
    if style == "message":
        return MessageEncoder()
    raise ValueError(f"unknown zlib style {style!r} (expected one of {', '.join(ZLIB_STYLES)})")

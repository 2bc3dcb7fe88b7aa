#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets to Tests/Fuzz/corpus/<target>/ (run from anywhere).

The files are committed; rerun this after changing it (it replaces the corpus directories). Each target's
input layout is described at the top of its Tests/Fuzz/<target>.swift file.
"""

import base64
import hashlib
import shutil
import struct
import zlib
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
assert ACCEPT == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def write(target: str, name: str, data: bytes) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


# --- FuzzHandshake: [flags, split, limit] + response; flags bit 0 prepends a valid 101 head -----------

def handshake() -> None:
    t = "FuzzHandshake"
    valid = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {ACCEPT}\r\n"
    ).encode()
    full = valid + b"\r\n"
    write(t, "valid", bytes([0, 128, 0]) + full)
    write(t, "valid-with-frame", bytes([0, 60, 0]) + full + b"\x81\x02hi")
    write(t, "valid-lowercase", bytes([0, 10, 0]) + full.lower().replace(ACCEPT.lower().encode(), ACCEPT.encode()))
    write(t, "valid-tokens", bytes([0, 200, 0]) + full.replace(b"Connection: Upgrade", b"connection: keep-alive, Upgrade"))
    write(t, "forbidden", bytes([0, 20, 0]) + b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    write(t, "http10", bytes([0, 5, 0]) + b"HTTP/1.0 101 x\r\n\r\n")
    write(t, "garbage", bytes([0, 3, 0]) + b"SSH-2.0-OpenSSH\r\n\r\n")
    write(t, "wrong-accept", bytes([0, 90, 0]) + full.replace(ACCEPT.encode(), b"AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
    write(t, "no-upgrade", bytes([0, 90, 0]) + full.replace(b"Upgrade: websocket\r\n", b""))
    # Flag bit 0: the fuzz bytes follow the valid head.
    write(t, "head-end", bytes([1, 128, 0]) + b"\r\n")
    write(t, "head-end-frame", bytes([1, 250, 0]) + b"\r\n\x81\x05hello\x88\x02\x03\xe8")
    write(t, "head-extra", bytes([1, 100, 0]) + b"Server: dev\r\nX-Extra:  1 \r\n\r\n")
    write(t, "head-extension", bytes([1, 100, 0]) + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    write(t, "head-protocol", bytes([1, 100, 0]) + b"Sec-WebSocket-Protocol: chat\r\n\r\n")
    write(t, "head-second-accept", bytes([1, 100, 0]) + f"Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n".encode())
    write(t, "head-bad-line", bytes([1, 100, 0]) + b"no colon here\r\n\r\n")
    write(t, "head-incomplete", bytes([1, 100, 0]) + b"X-A: 1\r\n")
    # Flag bits 1-2: small header limits around the head's size (123 bytes without the blank line).
    write(t, "limit-exact", bytes([3, 255, 107]) + b"\r\n")
    write(t, "limit-under", bytes([3, 254, 106]) + b"\r\n")
    write(t, "limit-filler", bytes([5, 140, 40]) + b"X-Filler: " + b"a" * 80 + b"\r\n\r\n")
    write(t, "limit-large", bytes([7, 77, 2]) + b"X-Filler: " + b"b" * 300 + b"\r\n\r\n")


# --- FuzzWebSocket: [flags, chunk seed, close position] + server bytes; flags bit 0: we close, bits 1-3: limit

def frame(opcode: int, payload: bytes = b"", fin: bool = True, length_form: str = "short", rsv: int = 0,
          mask: bool = False) -> bytes:
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    if length_form == "short" and n < 126:
        head = bytes([b0, n])
    elif length_form in ("short", "16") and n < 65536:
        head = bytes([b0, 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, 127]) + struct.pack(">Q", n)
    if mask:
        head = bytes([head[0], head[1] | 0x80]) + head[2:] + b"\x00\x00\x00\x00"
    return head + payload


def close(code: int | None, reason: bytes = b"") -> bytes:
    return frame(8, b"" if code is None else struct.pack(">H", code) + reason)


def websocket() -> None:
    t = "FuzzWebSocket"
    # flags: bit 0 we close after n * position / 255 bytes; bits 1-3 index into
    # [1 MiB, 0, 1, 125, 126, 200, 1000, 65536].
    def w(name: str, flags: int, seed: int, data: bytes, position: int = 0) -> None:
        write(t, name, bytes([flags, seed, position]) + data)

    w("text", 0, 0, frame(1, b"hello") + close(1000, b"bye"))
    w("text-16bit", 0, 1, frame(1, b"x" * 200) + frame(2, bytes(range(256)) * 2))
    w("binary-64bit", 0, 2, frame(2, b"\x00\x01" * 150, length_form="64"))
    w("ping-pong", 0, 3, frame(9, b"are you there") + frame(10, b"yes") + frame(9))
    w("fragmented-text", 0, 1, frame(1, b"frag", fin=False) + frame(9, b"p") + frame(0, b"men", fin=False)
      + frame(0, b"ted", fin=True) + close(None))
    w("fragmented-binary", 0, 2, frame(2, b"\x01\x02", fin=False) + frame(0, b"\x03", fin=True))
    w("utf8-split", 0, 0, frame(1, "h\u00e9".encode()[:2], fin=False) + frame(0, "h\u00e9\U0001F600".encode()[2:]))
    w("utf8-invalid", 0, 3, frame(1, b"ok\xed\xa0\x80"))
    w("utf8-truncated", 0, 1, frame(1, b"\xf0\x9f\x98", fin=True))
    w("close-reason", 0, 0, close(4005, b"Malformed data."))
    w("close-empty", 0, 1, close(None) + frame(9))
    w("close-one-byte", 0, 2, frame(8, b"\x03"))
    w("close-bad-code", 0, 3, close(1005))
    w("close-bad-reason", 0, 0, close(1000, b"\xff"))
    w("close-first", 1, 1, frame(1, b"late") + frame(9, b"x") + close(1000))
    w("close-first-fragments", 1, 2, frame(1, b"a", fin=False) + frame(0, b"b") + close(4000, b"bye"))
    w("close-inside-fragments", 1, 0, frame(1, b"ab", fin=False) + frame(0, b"cd") + close(1000), position=90)
    w("close-inside-frame", 1, 1, frame(2, b"0123456789") + frame(9, b"late ping") + close(1000), position=40)
    w("masked", 0, 0, frame(1, b"mask", mask=True))
    w("reserved-bits", 0, 1, frame(1, b"r", rsv=4))
    w("unknown-opcode", 0, 2, frame(3, b"?"))
    w("continuation-alone", 0, 3, frame(0, b"c"))
    w("text-inside-fragments", 0, 0, frame(1, b"a", fin=False) + frame(1, b"b"))
    w("ping-fragmented", 0, 1, frame(9, b"p", fin=False))
    w("ping-too-long", 0, 2, frame(9, b"p" * 126))
    w("length-msb", 0, 3, bytes([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]))
    w("limit-125", 3 << 1, 0, frame(2, b"z" * 125) + frame(2, b"z" * 126))
    w("limit-fragments", 4 << 1, 1, frame(2, b"y" * 100, fin=False) + frame(0, b"y" * 27))
    w("limit-zero", 1 << 1, 2, frame(1) + frame(1, b"a"))


# --- FuzzUTF8: [chunk seed] + text ---------------------------------------------------------------------

def utf8() -> None:
    t = "FuzzUTF8"
    samples = {
        "ascii": b"The quick brown fox jumps over the lazy dog",
        "two-byte": "h\u00e9llo \u00fc\u00df".encode(),
        "three-byte": "\u20ac \u2603 \ufffd \uffff".encode(),
        "four-byte": "\U0001F600 \U00010000 \U0010FFFF".encode(),
        "mixed": "Malformed data. \u00e9\u20ac\U0001F600 end".encode() * 3,
        "surrogate": b"ab\xed\xa0\x80cd",
        "surrogate-edge": b"\xed\x9f\xbf\xee\x80\x80",
        "overlong-2": b"\xc0\xaf",
        "overlong-3": b"\xe0\x80\xaf \xe0\x9f\xbf",
        "overlong-4": b"\xf0\x80\x80\xaf \xf0\x8f\xbf\xbf",
        "too-big": b"\xf4\x90\x80\x80 \xf5\x80\x80\x80",
        "max": b"\xf4\x8f\xbf\xbf",
        "truncated": b"abc\xe2\x82",
        "stray-continuation": b"\x80abc\xbf",
        "ascii-after-lead": b"\xc3A",
        "c1-ff": b"\xc1\xbf\xfe\xff",
    }
    for i, (name, text) in enumerate(samples.items()):
        write(t, name, bytes([i]) + text)


# --- FuzzJSON: the JSON text ----------------------------------------------------------------------------

def json() -> None:
    t = "FuzzJSON"
    samples = {
        "hello": b'{"op":5,"d":{"heartbeat":45000}}',
        "hello-misspelled": b'{"op":5,"d":{"hearbeat":45000}}',
        "error": b'{"op":-1,"e":4005,"d":{"errors":["x"]},"m":"Malformed data."}',
        "event": b'{"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":42,"guildMembers":1337,"cachedGuildMembers":512}}',
        "identify": b'{"op":2,"d":{"key":"k","type":"bot","servers":[1,2,3]}}',
        "ack": b'{ "op" : 6 , "d" : null }',
        "escaped-keys": b'{"\\u006fp":1,"\\u0074":"a\\"b\\\\c\\/\\b\\f\\n\\r\\t","m":"\\ud83d\\ude00 \\u00e9"}',
        "duplicates": b'{"op":1,"op":2,"t":null,"t":"x","e":null}',
        "numbers": b'[0,-0,1.5,-1e10,2E-3,1e+2,123456789012345678901234567890,-9223372036854775808]',
        "op-limits": b'{"op":9223372036854775807,"e":-9223372036854775808}',
        "op-overflow": b'{"op":9223372036854775808}',
        "op-float": b'{"op":1.0}',
        "op-string": b'{"op":"5"}',
        "scalars": b'[true,false,null,"",{},[],{"a":[{"b":null}]}]',
        "utf8": '{"op":0,"t":"h\u00e9\u20ac\U0001F600","d":"\u00fc"}'.encode(),
        "deep": b"[" * 70 + b"]" * 70,
        "deep-object": b'{"a":' * 66 + b"1" + b"}" * 66,
        "top-string": b'"just a string"',
        "whitespace": b' \t\r\n{"op":3}\n',
        "bad-trailing-comma": b'{"op":1,}',
        "bad-leading-zero": b'{"op":01}',
        "bad-surrogate": b'{"op":1,"t":"\\ud800"}',
        "bad-control": b'{"op":1,"t":"a\x01b"}',
        "bad-utf8": b'{"op":1,"t":"\xc3\x28"}',
        "bad-bom": b'\xef\xbb\xbf{"op":1}',
        "bad-nan": b"[NaN]",
    }
    for name, text in samples.items():
        write(t, name, text)


# --- FuzzInflate: [n] + n little-endian u16 message lengths + the compressed bytes ----------------------

def inflate() -> None:
    t = "FuzzInflate"

    def messages(parts: list[bytes]) -> bytes:
        count = len(parts) - 1
        assert 0 <= count < 8
        return bytes([count]) + b"".join(struct.pack("<H", len(p)) for p in parts[:-1]) + b"".join(parts)

    hello = b'{"op":5,"d":{"heartbeat":45000}}'
    event = b'{"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":42,"guildMembers":1337,"cachedGuildMembers":512}}'
    error = b'{"op":-1,"e":4005,"d":{"errors":["x"]},"m":"Malformed data."}'

    # A zlib stream per message.
    write(t, "stream-per-message", messages([zlib.compress(hello), zlib.compress(event), zlib.compress(error)]))
    # One stream for the connection, a sync flush at the end of each message.
    c = zlib.compressobj()
    flushed = [c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH) for m in (hello, event, event, error)]
    write(t, "sync-flush", messages(flushed))
    write(t, "sync-flush-finished", messages(flushed[:2] + [c.flush(zlib.Z_FINISH)]))
    # Two streams in one message; a stream split in the middle of a block.
    write(t, "two-streams-one-message", messages([zlib.compress(hello) + zlib.compress(error)]))
    whole = zlib.compress(event * 3)
    write(t, "stream-split", messages([whole[:7], whole[7:20], whole[20:]]))
    write(t, "empty-message", messages([b"", zlib.compress(hello)]))
    # Errors: bad header, raw deflate, wrong checksum, a preset dictionary, trailing garbage.
    write(t, "bad-header", messages([b"\x78\x9c\xff\xff\xff"]))
    raw = zlib.compressobj(wbits=-15)
    write(t, "raw-deflate", messages([raw.compress(hello) + raw.flush()]))
    broken = bytearray(zlib.compress(hello))
    broken[-1] ^= 1
    write(t, "bad-checksum", messages([bytes(broken)]))
    d = zlib.compressobj(zdict=b"heartbeat")
    write(t, "preset-dictionary", messages([d.compress(hello) + d.flush()]))
    write(t, "trailing-garbage", messages([zlib.compress(hello) + b"garbage"]))
    # The cap: exactly 1 MiB, one byte over, and a stored (uncompressed) block.
    write(t, "cap-exact", messages([zlib.compress(b"\x00" * (1 << 20), 9)]))
    write(t, "cap-over", messages([zlib.compress(b"{" + b" " * (1 << 20) + b"}", 9)]))
    write(t, "stored-block", messages([zlib.compress(error, 0)]))
    write(t, "fixed-huffman", messages([zlib.compress(b"ab", 1)]))


# --- FuzzURL: the URL text ------------------------------------------------------------------------------

def url() -> None:
    t = "FuzzURL"
    samples = [
        "wss://gateway.utilbot.co/?v=1",
        "wss://gateway.utilbot.co/?v=1&compression=zlib",
        "ws://localhost:8080/ws",
        "WSS://Gateway.Example:443",
        "ws://127.0.0.1:65535/path?query=1&x",
        "ws://[::1]:9000/?v=2",
        "wss://[fe80::1%25eth0]/",
        "ws://host?compression=none",
        "ws://host:0/",
        "ws://host:65536/",
        "ws://user@host/",
        "ws://host/#fragment",
        "http://host/",
        "ws://[::1/",
        "ws://:80/",
        "ws://h\u00e9st.example/\u00fc?x=\u20ac",
        "wss://host/path?v=1&v=2&compression=zlib&compression=",
        "ws://host/\u0301path?\u0301q#\u036c",
        "ws://u@\u0301[::1\u0301]:\u030180",
    ]
    for i, text in enumerate(samples):
        write(t, f"url-{i:02d}", text.encode())


# --- FuzzProxy: [mode, split seed] + the proxy's answer ---------------------------------------------------

def proxy() -> None:
    t = "FuzzProxy"
    http_ok = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n"
    samples = {
        "http-200": (0, http_ok),
        "http-200-leftover": (1, http_ok + b"\x16\x03\x01"),
        "http-407": (0, b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n"),
        "http-401": (1, b"HTTP/1.0 401 Unauthorized\r\n\r\n"),
        "http-403": (0, b"HTTP/1.0 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
        "http-200-body": (0, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        "http-chunked": (0, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "http-garbage": (0, b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
        "socks5h-open": (2, bytes([5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0x1F, 0x90])),
        "socks5h-auth-open": (3, bytes([5, 2, 1, 0, 5, 0, 0, 3, 4]) + b"host" + bytes([0, 80, 0x16])),
        "socks5h-auth-refused": (3, bytes([5, 2, 1, 1])),
        "socks5h-no-method": (2, bytes([5, 0xFF])),
        "socks5-refused": (4, bytes([5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0])),
        "socks5-ipv6": (5, bytes([5, 0, 5, 0, 0, 4]) + bytes(16) + bytes([1, 187])),
        "socks-not-5": (2, b"HTTP/1.1 400 Bad Request\r\n\r\n"),
    }
    for name, (mode, answer) in samples.items():
        write(t, name, bytes([mode, 7]) + answer)
    write(t, "url-socks", bytes([2, 1]) + b"socks5h://user:pa%40ss@[::1]:1080/")
    write(t, "no-proxy-list", bytes([0, 1]) + b"*.example.com, 10.0.0.0/8, ::1, [2001:db8::]/32, host:443")


def main() -> None:
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    for make in (handshake, websocket, utf8, json, inflate, url, proxy):
        make()
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    for directory in sorted(CORPUS.iterdir()):
        print(f"{directory.name}: {len(list(directory.iterdir()))} files")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A raw, misbehaving gateway for the C fault matrix (Tests/CABI/test_faults.c).

It works at the TCP/bytes level: no WebSocket library is involved in the faulty parts, so it can
break the protocol in ways a correct server library never would. It listens on 127.0.0.1 (port 0)
and prints one line of JSON on stdout first:

    {"port": P, "tls_port": P2, "tls_wrong_host_port": P3, "tls_ok_port": P4, "ca": "/abs/ca.pem"}

`tls_wrong_host_port`, `tls_ok_port` and `ca` are present only when the `cryptography` package is
importable.
It exits when its stdin reaches EOF (so it dies with the test process that started it). Logs go
to stderr, only with --verbose.

The plain port reads the HTTP upgrade request head first, then behaves by its path (the query
is parsed for parameters, see below):

    /ok                 a correct session: 101, Hello, ACKs every heartbeat, answers identify
                        with bot_connect_success, counts op 1 events, answers a close frame
    /silent             never sends anything; holds the connection until the client goes
                        (a half-open peer as the client sees it)
    /no-hello           a valid 101, then nothing
    /slow               a valid 101, then the Hello frame one byte per second
    /slow-101           the 101 answer itself, one byte per second
    /zombie             a valid 101 and Hello, then never answers anything (no ACK, no identify)
    /reset-mid-frame    a valid 101 and Hello; once identify arrives, half of a text frame,
                        then a TCP RST (SO_LINGER 0)
    /bad-101            a malformed status line ("HTTP/1.1 1O1 Switching Protocols")
    /bad-101-headers    "HTTP/1.1 101 Switching Protocols" without Upgrade, Connection and
                        Sec-WebSocket-Accept
    /garbage            bytes that are not HTTP (an SSH banner and binary) instead of an answer
    /huge-headers       a valid 101 whose head carries 100 KB of extra headers
    /status/<n>         refuses the upgrade with HTTP status n (and Retry-After: 1)
    /no-close-frame     a correct session; `after` ms after identify, a TCP FIN without a
                        close frame
    /bad-close-code     a correct session; `after` ms after identify, a close frame with the
                        invalid code `code` (default 1005; 999, 1006, 1015, 5000 are also invalid)
    /close-then-hold    a correct session; `after` ms after identify, a valid close frame (code
                        `code`, default 4006, reason "close then hold"); then it never answers nor
                        closes the TCP connection: it reads (and counts) until the client goes
    /ping-flood         a correct session; after identify, pings as fast as the client takes
                        them (batches of `batch`, about 10,000 a second) for `secs` seconds,
                        still ACKing heartbeats and counting pongs
    /ignore-close       a correct session that never answers the client's close frame and never
                        closes; it reads (and counts) until the client goes
    /flood-then-close   a correct session; right after bot_connect_success it writes `n` (default
                        2000) text frames {"op":0,"t":"FLOOD","d":{"seq":i}} (i = 0..n-1), then a
                        close frame (code `code`, default 4001 here, reason "flood then close"),
                        then resets the TCP connection (SO_LINGER 0) without waiting for an answer.
                        It stops reading once the flood starts, and it resets only once every byte
                        has left its socket and been acknowledged by the client's kernel (SIOCOUTQ
                        is 0; at most `wait` ms, default 10000): so when the RST arrives, the flood
                        and the close frame sit unread in the client's kernel receive buffer, even
                        if the client is not reading. The default flood (2000 frames of ~35 bytes,
                        ~70 KB) fits in Linux's default loopback buffers (128 KiB to receive, more
                        to send: SO_SNDBUF is raised to 4 MiB), so it is all written at once; a
                        bigger `n` is still all delivered, but only as the client reads.
                        "frames_sent" counts the FLOOD frames written, "unacked_at_reset" the
                        bytes still in the send queue at the RST (0 unless `wait` ran out).
    /trickle            a correct session (hb default 1000 here); right after bot_connect_success,
                        ONE text frame holding one message of exactly `size` bytes (default 4194304),
                        the valid JSON {"op":0,"t":"BIG","d":{"pad":"xxx..."}} (at least 33 bytes),
                        written at `rate` bytes a second (default 1048576; header included) in a
                        chunk every 50 ms. Inside the frame nothing else can be sent: heartbeats are
                        still read and counted ("heartbeats"), but their ACKs (and pongs) are held
                        and written right after the frame; then a correct session again (ACKs at
                        once). "frames_sent" counts the big frames completed.

Any other path gets 404. Query parameters: hb (the Hello's heartbeat, ms, default 500), after
(ms, default 300), code (close code, default 1005), secs (flood seconds, default 3), batch (pings
per batch, default 200), n (frames, default 2000), wait (ms, default 10000), size (bytes, default
4194304), rate (bytes a second, default 1048576).

`tls_ok_port` is the plain port over TLS (a certificate for 127.0.0.1 and localhost, signed by
`ca`): the same paths and parameters, counted under the same names. The other TLS ports count
their connections as "/tls-garbage" and "/tls-wrong-host":

    tls_port              answers the ClientHello with an HTTP 400 answer (not TLS), then holds
                          the connection until the client goes
    tls_wrong_host_port   a real TLS server whose certificate (signed by `ca`) is only valid for
                          "wrong.example"

Commands on stdin, one JSON object a line, each answered by one JSON line on stdout:

    {"cmd":"count","path":"/slow"}   {"path":"/slow","connections":N,"open":N,"close_codes":[...],
                                      "heartbeats":N,"identifies":N,"pongs":N,"pings_sent":N,
                                      "events":{"name":N},"client_eof":N,"client_reset":N,
                                      "frames_sent":N,"unacked_at_reset":N|null}
    {"cmd":"count"}                  {"paths":{"/slow":{...}, ...}}
    {"cmd":"ping"}                   {"ok":true}

`connections` counts accepted connections (whatever they sent); `open` those the server still
holds: it drops to 0 once the client has closed (or reset) its side; `close_codes` lists the code
of every close frame a client sent (null for an empty one); `client_eof` / `client_reset` count
connections that ended by the client's FIN / RST.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import fcntl
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import tempfile
import termios
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HEAD_LIMIT = 64 * 1024
VERBOSE = False


def log(*parts: object) -> None:
    if VERBOSE:
        print("fault_server:", *parts, file=sys.stderr, flush=True)


def accept_value(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """A server-to-client frame: never masked."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


def text(obj: object) -> bytes:
    return frame(0x1, json.dumps(obj, separators=(",", ":")).encode())


def hello(heartbeat_ms: int) -> bytes:
    return text({"op": 5, "d": {"heartbeat": heartbeat_ms}})


# ---------------------------------------------------------------------------------------------
# Statistics


class PathStats:
    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.close_codes: list[int | None] = []
        self.heartbeats = 0
        self.identifies = 0
        self.pongs = 0
        self.pings_sent = 0
        self.events: dict[str, int] = {}
        self.client_eof = 0
        self.client_reset = 0
        self.frames_sent = 0  # data frames of a flood (/flood-then-close) or trickle (/trickle) written
        self.unacked_at_reset: int | None = None  # /flood-then-close: send queue bytes at the RST

    def as_json(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "open": self.open,
            "close_codes": self.close_codes,
            "heartbeats": self.heartbeats,
            "identifies": self.identifies,
            "pongs": self.pongs,
            "pings_sent": self.pings_sent,
            "events": self.events,
            "client_eof": self.client_eof,
            "client_reset": self.client_reset,
            "frames_sent": self.frames_sent,
            "unacked_at_reset": self.unacked_at_reset,
        }


STATS: dict[str, PathStats] = {}


def stats_for(path: str) -> PathStats:
    if path not in STATS:
        STATS[path] = PathStats()
    return STATS[path]


# ---------------------------------------------------------------------------------------------
# One connection


class ClientGone(Exception):
    """The client closed (FIN) or reset its side."""


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.path = "?"
        self.query: dict[str, str] = {}
        self.key = ""
        self.stats: PathStats | None = None
        self.ended_by: str | None = None  # "eof" or "reset", once the client went
        self.identified = asyncio.Event()
        # While a frame is being written piecemeal (/trickle), serve_frames' answers (ACKs, pongs,
        # bot_connect_success, the close echo) wait here instead of cutting into it.
        self.muted = False
        self.held: list[bytes] = []

    def param(self, name: str, default: int) -> int:
        try:
            return int(self.query.get(name, default))
        except ValueError:
            return default

    def gone(self, how: str) -> None:
        if self.ended_by is None:
            self.ended_by = how
            if self.stats is not None:
                if how == "eof":
                    self.stats.client_eof += 1
                else:
                    self.stats.client_reset += 1

    async def read_exactly(self, n: int) -> bytes:
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError:
            self.gone("eof")
            raise ClientGone() from None
        except (ConnectionError, OSError):
            self.gone("reset")
            raise ClientGone() from None

    async def read_head(self) -> bytes | None:
        try:
            return await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            return None

    async def write(self, data: bytes, drain: bool = True) -> None:
        if self.ended_by is not None:
            raise ClientGone()
        try:
            self.writer.write(data)
            if drain:
                await self.writer.drain()
        except (ConnectionError, OSError):
            self.gone("reset")
            raise ClientGone() from None

    async def reply(self, data: bytes, drain: bool = False) -> None:
        """An answer from serve_frames: written now, or held while muted."""
        if self.muted:
            self.held.append(data)
        else:
            await self.write(data, drain=drain)

    async def unmute(self) -> None:
        """Ends a mute: what was held goes out now, in order."""
        self.muted = False
        held, self.held = self.held, []
        if held:
            await self.write(b"".join(held))

    async def read_raw_until_gone(self) -> None:
        """Reads and discards bytes until the client closes or resets."""
        while True:
            try:
                chunk = await self.reader.read(65536)
            except (ConnectionError, OSError):
                self.gone("reset")
                return
            if not chunk:
                self.gone("eof")
                return

    async def read_frame(self) -> tuple[int, bytes]:
        """One client frame (opcode, unmasked payload); raises ClientGone at the end."""
        b0, b1 = await self.read_exactly(2)
        opcode = b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.read_exactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.read_exactly(8))
        mask = await self.read_exactly(4) if b1 & 0x80 else b""
        payload = await self.read_exactly(n) if n else b""
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return opcode, payload

    async def upgrade(self, extra: bytes = b"") -> None:
        await self.write(
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_value(self.key).encode() + b"\r\n" + extra + b"\r\n"
        )

    async def serve_frames(self, *, ack: bool = True, answer_identify: bool = True, answer_close: bool = True) -> None:
        """The gateway side of a session: reads client frames until the client goes."""
        assert self.stats is not None
        while True:
            opcode, payload = await self.read_frame()
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.stats.close_codes.append(code)
                log(self.path, "close frame from the client:", code)
                if answer_close:
                    # Echo the code, then close the TCP connection first, as a server should.
                    await self.reply(frame(0x8, payload[:2]), drain=True)
                    self.ended_by = "server-close"
                    return
            elif opcode == 0x9:
                await self.reply(frame(0xA, payload))
            elif opcode == 0xA:
                self.stats.pongs += 1
            elif opcode in (0x1, 0x2):
                try:
                    message = json.loads(payload)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                op = message.get("op")
                if op == 10:
                    self.stats.heartbeats += 1
                    if ack:
                        await self.reply(text({"op": 11}))
                elif op == 1 and message.get("t") == "identify":
                    self.stats.identifies += 1
                    if answer_identify:
                        await self.reply(text({"op": 0, "t": "bot_connect_success", "d": {"bot_id": "fault-server"}}))
                    self.identified.set()
                elif op == 1 and isinstance(message.get("t"), str):
                    name = message["t"]
                    self.stats.events[name] = self.stats.events.get(name, 0) + 1

    async def alongside(self, reading: asyncio.Future, work) -> None:
        """Runs `work` until it ends or the reading side ends (the client went); then the rest of the
        reading side."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({reading, task}, return_when=asyncio.FIRST_COMPLETED)
        if reading in done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        else:
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(reading, return_exceptions=True)

    def reset(self) -> None:
        """A TCP RST: SO_LINGER with a zero timeout, then close."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.ended_by = "server-reset"


# ---------------------------------------------------------------------------------------------
# Behaviours (after the request head was read)


async def b_ok(c: Conn) -> None:
    await c.upgrade()
    await c.write(hello(c.param("hb", 500)))
    await c.serve_frames()


async def b_silent(c: Conn) -> None:
    await c.read_raw_until_gone()


async def b_no_hello(c: Conn) -> None:
    await c.upgrade()
    await c.read_raw_until_gone()


async def dribble(c: Conn, data: bytes) -> None:
    for i in range(len(data)):
        await c.write(data[i : i + 1])
        await asyncio.sleep(1.0)
    await asyncio.Event().wait()  # then hold


async def b_slow(c: Conn) -> None:
    await c.upgrade()
    reading = asyncio.ensure_future(c.serve_frames())
    await c.alongside(reading, dribble(c, hello(c.param("hb", 500))))


async def b_slow_101(c: Conn) -> None:
    head = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_value(c.key).encode() + b"\r\n\r\n"
    )
    reading = asyncio.ensure_future(c.read_raw_until_gone())
    await c.alongside(reading, dribble(c, head))


async def b_zombie(c: Conn) -> None:
    await c.upgrade()
    await c.write(hello(c.param("hb", 500)))
    await c.serve_frames(ack=False, answer_identify=False)


async def b_reset_mid_frame(c: Conn) -> None:
    await c.upgrade()
    await c.write(hello(c.param("hb", 500)))
    reading = asyncio.ensure_future(c.serve_frames(answer_identify=False))
    try:
        await asyncio.wait_for(c.identified.wait(), 2.0)
    except asyncio.TimeoutError:
        pass
    if reading.done():
        await asyncio.gather(reading, return_exceptions=True)
        return
    body = json.dumps({"op": 0, "t": "HALF", "d": {"pad": "x" * 180}}).encode()
    whole = frame(0x1, body)
    await c.write(whole[: len(whole) // 2])
    await asyncio.sleep(0.05)
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    c.reset()


async def b_bad_101(c: Conn) -> None:
    await c.write(
        b"HTTP/1.1 1O1 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_value(c.key).encode() + b"\r\n\r\n"
    )
    await c.read_raw_until_gone()


async def b_bad_101_headers(c: Conn) -> None:
    await c.write(b"HTTP/1.1 101 Switching Protocols\r\nServer: fault-server\r\n\r\n")
    await c.read_raw_until_gone()


async def b_garbage(c: Conn) -> None:
    await c.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe\x01\x02garbage\x16\x03\x01\r\n\r\n" + os.urandom(64))
    await c.read_raw_until_gone()


async def b_huge_headers(c: Conn) -> None:
    filler = b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"a" * 84) for i in range(1000))  # 100,000 bytes
    try:
        await c.upgrade(extra=filler)
    except ClientGone:
        return
    await c.read_raw_until_gone()


async def b_status(c: Conn) -> None:
    try:
        status = int(c.path.rsplit("/", 1)[1])
    except ValueError:
        status = 500
    body = b"refused by the fault server\n"
    await c.write(
        b"HTTP/1.1 %d Refused\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (status, len(body), body)
    )
    await c.read_raw_until_gone()


async def session_then(c: Conn, action) -> None:
    """A correct session; `after` ms after identify, `action` (which may end the connection)."""
    await c.upgrade()
    await c.write(hello(c.param("hb", 500)))
    reading = asyncio.ensure_future(c.serve_frames(answer_close=False))

    async def work() -> None:
        await c.identified.wait()
        await asyncio.sleep(c.param("after", 300) / 1000)
        await action()
        await asyncio.Event().wait()

    await c.alongside(reading, work())


async def b_no_close_frame(c: Conn) -> None:
    async def fin() -> None:
        c.writer.write_eof()

    await session_then(c, fin)


async def b_bad_close_code(c: Conn) -> None:
    async def bad_close() -> None:
        await c.write(frame(0x8, struct.pack("!H", c.param("code", 1005)) + b"bad code"))

    await session_then(c, bad_close)


async def b_close_then_hold(c: Conn) -> None:
    async def close_and_hold() -> None:
        await c.write(frame(0x8, struct.pack("!H", c.param("code", 4006)) + b"close then hold"))

    await session_then(c, close_and_hold)


async def b_ping_flood(c: Conn) -> None:
    assert c.stats is not None
    await c.upgrade()
    await c.write(hello(c.param("hb", 500)))
    reading = asyncio.ensure_future(c.serve_frames())

    async def flood() -> None:
        await c.identified.wait()
        batch = c.param("batch", 200)
        ping = frame(0x9, b"flood")
        end = asyncio.get_running_loop().time() + c.param("secs", 3)
        while asyncio.get_running_loop().time() < end:
            await c.write(ping * batch)
            c.stats.pings_sent += batch
            await asyncio.sleep(0.02)
        await asyncio.Event().wait()

    await c.alongside(reading, flood())


async def b_ignore_close(c: Conn) -> None:
    await c.upgrade()
    await c.write(hello(c.param("hb", 500)))
    await c.serve_frames(answer_close=False)


def unacked_bytes(sock: socket.socket) -> int:
    """Bytes in the socket's send queue the peer's kernel has not acknowledged yet (SIOCOUTQ)."""
    count = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, count)
    return count[0]


async def b_flood_then_close(c: Conn) -> None:
    assert c.stats is not None
    sock = c.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    await c.upgrade()
    await c.write(hello(c.param("hb", 500)))
    reading = asyncio.ensure_future(c.serve_frames(answer_close=False))
    identified = asyncio.ensure_future(c.identified.wait())
    await asyncio.wait({reading, identified}, return_when=asyncio.FIRST_COMPLETED)
    if not c.identified.is_set():  # the client went first
        identified.cancel()
        await asyncio.gather(reading, identified, return_exceptions=True)
        return
    # bot_connect_success is in the transport; from here on nothing else may be written (no ACK
    # after the close frame), so the reader goes before the first await.
    reading.cancel()
    n = c.param("n", 2000)
    flood = b"".join(text({"op": 0, "t": "FLOOD", "d": {"seq": i}}) for i in range(n))
    close = frame(0x8, struct.pack("!H", c.param("code", 4001)) + b"flood then close")
    # No low-water mark: drain returns only once the transport's own buffer is empty.
    c.writer.transport.set_write_buffer_limits(high=0)
    c.writer.write(flood + close)
    c.stats.frames_sent += n
    loop = asyncio.get_running_loop()
    deadline = loop.time() + c.param("wait", 10000) / 1000
    try:
        await asyncio.wait_for(c.writer.drain(), max(0.0, deadline - loop.time()))
        while unacked_bytes(sock) > 0 and loop.time() < deadline:
            await asyncio.sleep(0.005)
    except (ConnectionError, OSError):
        c.gone("reset")
    except asyncio.TimeoutError:
        log(c.path, "the client did not take the flood in time")
    await asyncio.gather(reading, return_exceptions=True)
    if c.ended_by is None:
        c.stats.unacked_at_reset = unacked_bytes(sock) + c.writer.transport.get_write_buffer_size()
        c.reset()


BIG_PREFIX = b'{"op":0,"t":"BIG","d":{"pad":"'
BIG_SUFFIX = b'"}}'


def big_event(size: int) -> bytes:
    """The /trickle message: valid JSON of exactly `size` bytes (at least the bare envelope)."""
    return BIG_PREFIX + b"x" * max(0, size - len(BIG_PREFIX) - len(BIG_SUFFIX)) + BIG_SUFFIX


async def b_trickle(c: Conn) -> None:
    assert c.stats is not None
    await c.upgrade()
    await c.write(hello(c.param("hb", 1000)))
    reading = asyncio.ensure_future(c.serve_frames())

    async def trickle() -> None:
        assert c.stats is not None
        await c.identified.wait()  # bot_connect_success is written by now
        data = frame(0x1, big_event(c.param("size", 4194304)))
        rate = max(1, c.param("rate", 1048576))
        loop = asyncio.get_running_loop()
        c.muted = True
        start, sent = loop.time(), 0
        while sent < len(data):
            await asyncio.sleep(0.05)
            due = min(len(data), int(rate * (loop.time() - start)))
            if due > sent:
                await c.write(data[sent:due])
                sent = due
        c.stats.frames_sent += 1
        await c.unmute()
        await asyncio.Event().wait()

    await c.alongside(reading, trickle())


BEHAVIOURS = {
    "/ok": b_ok,
    "/silent": b_silent,
    "/no-hello": b_no_hello,
    "/slow": b_slow,
    "/slow-101": b_slow_101,
    "/zombie": b_zombie,
    "/reset-mid-frame": b_reset_mid_frame,
    "/bad-101": b_bad_101,
    "/bad-101-headers": b_bad_101_headers,
    "/garbage": b_garbage,
    "/huge-headers": b_huge_headers,
    "/no-close-frame": b_no_close_frame,
    "/bad-close-code": b_bad_close_code,
    "/close-then-hold": b_close_then_hold,
    "/ping-flood": b_ping_flood,
    "/ignore-close": b_ignore_close,
    "/flood-then-close": b_flood_then_close,
    "/trickle": b_trickle,
}


async def b_not_found(c: Conn) -> None:
    await c.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    c.writer.close()
    await c.read_raw_until_gone()


def parse_head(c: Conn, head: bytes) -> None:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    target = parts[1] if len(parts) >= 2 else "/"
    split = urlsplit(target)
    c.path = split.path or "/"
    c.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            c.key = value.strip()


def behaviour_for(path: str):
    if path.startswith("/status/"):
        return b_status
    return BEHAVIOURS.get(path, b_not_found)


async def finish(c: Conn) -> None:
    if c.ended_by != "server-reset":
        try:
            c.writer.close()
            await c.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    if c.stats is not None:
        c.stats.open -= 1
    log(c.path, "connection ended:", c.ended_by)


async def on_plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    c = Conn(reader, writer)
    try:
        head = await c.read_head()
        if head is None:
            c.path = "(no request)"
            c.stats = stats_for(c.path)
            c.stats.connections += 1
            c.stats.open += 1
            return
        parse_head(c, head)
        c.stats = stats_for(c.path)
        c.stats.connections += 1
        c.stats.open += 1
        log(c.path, "connection", c.stats.connections)
        await behaviour_for(c.path)(c)
    except ClientGone:
        pass
    except Exception as error:  # a bug here must not kill the server
        log(c.path, "behaviour failed:", repr(error))
    finally:
        await finish(c)


async def on_tls_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    c = Conn(reader, writer)
    c.path = "/tls-garbage"
    c.stats = stats_for(c.path)
    c.stats.connections += 1
    c.stats.open += 1
    try:
        try:
            first = await reader.read(65536)  # the ClientHello
        except (ConnectionError, OSError):
            first = b""
        if first:
            await c.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await c.read_raw_until_gone()
        else:
            c.gone("eof")
    except ClientGone:
        pass
    finally:
        await finish(c)


def make_tls(directory: str, label: str, hosts: list[str]) -> tuple[ssl.SSLContext, str] | None:
    """A server context whose certificate is valid only for `hosts`, signed by the directory's
    CA (issued by the dev gateway's certificates module), and the CA's path; None without
    cryptography."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
    try:
        from utilbot_gateway.devserver import certificates
    except ImportError:
        return None
    paths = certificates.issue(Path(directory), label, hosts)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.cert, paths.key)
    return context, str(paths.ca)


async def serve_tls_wrong_host(listener: socket.socket, context: ssl.SSLContext) -> None:
    """Accepts raw TCP (so every attempt is counted, also those whose handshake fails), then runs
    the TLS handshake on it (with the ClientHello still unread in the socket)."""
    loop = asyncio.get_running_loop()
    while True:
        sock, _ = await loop.sock_accept(listener)
        asyncio.ensure_future(tls_wrong_host_connection(sock, context))


async def tls_wrong_host_connection(sock: socket.socket, context: ssl.SSLContext) -> None:
    stats = stats_for("/tls-wrong-host")
    stats.connections += 1
    stats.open += 1
    loop = asyncio.get_running_loop()
    writer = None
    try:
        reader = asyncio.StreamReader(limit=HEAD_LIMIT)
        try:
            transport, protocol = await loop.connect_accepted_socket(
                lambda: asyncio.StreamReaderProtocol(reader), sock, ssl=context, ssl_handshake_timeout=10
            )
        except (ssl.SSLError, ConnectionError, OSError, asyncio.TimeoutError) as error:
            log("/tls-wrong-host TLS handshake failed, as intended:", repr(error))
            if isinstance(error, ConnectionResetError):
                stats.client_reset += 1
            else:
                stats.client_eof += 1
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        c = Conn(reader, writer)
        c.path = "/tls-wrong-host"
        c.stats = stats
        head = await c.read_head()
        if head is None:
            c.gone("eof")
            return
        parse_head(c, head)
        c.path = "/tls-wrong-host"
        await b_ok(c)
    except ClientGone:
        pass
    except Exception as error:
        log("/tls-wrong-host behaviour failed:", repr(error))
    finally:
        if writer is not None:
            writer.transport.abort()
        else:
            sock.close()
        stats.open -= 1


# ---------------------------------------------------------------------------------------------
# Control channel


def answer(line: str) -> dict[str, object]:
    try:
        command = json.loads(line)
    except ValueError:
        return {"error": "not JSON"}
    if not isinstance(command, dict):
        return {"error": "not a JSON object"}
    cmd = command.get("cmd")
    if cmd == "ping":
        return {"ok": True}
    if cmd == "count":
        path = command.get("path")
        if path is None:
            return {"paths": {p: s.as_json() for p, s in STATS.items()}}
        return {"path": path, **stats_for(str(path)).as_json()}
    return {"error": f"unknown command {cmd!r}"}


async def control() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return  # stdin EOF: exit
        if not line.strip():
            continue
        sys.stdout.write(json.dumps(answer(line.decode(errors="replace"))) + "\n")
        sys.stdout.flush()


async def main() -> None:
    plain = await asyncio.start_server(on_plain, "127.0.0.1", 0, limit=HEAD_LIMIT)
    garbage = await asyncio.start_server(on_tls_garbage, "127.0.0.1", 0)
    announce: dict[str, object] = {
        "port": plain.sockets[0].getsockname()[1],
        "tls_port": garbage.sockets[0].getsockname()[1],
    }
    servers = [plain, garbage]
    with tempfile.TemporaryDirectory(prefix="fault-server-") as directory:
        wrong = make_tls(directory, "wrong-host", ["wrong.example"])
        loopback = make_tls(directory, "loopback", ["127.0.0.1", "localhost"])
        if wrong is not None and loopback is not None:
            context, ca_path = wrong
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            listener.setblocking(False)
            asyncio.ensure_future(serve_tls_wrong_host(listener, context))
            announce["tls_wrong_host_port"] = listener.getsockname()[1]
            announce["ca"] = ca_path
            secure = await asyncio.start_server(on_plain, "127.0.0.1", 0, ssl=loopback[0], limit=HEAD_LIMIT)
            servers.append(secure)
            announce["tls_ok_port"] = secure.sockets[0].getsockname()[1]
        sys.stdout.write(json.dumps(announce) + "\n")
        sys.stdout.flush()
        try:
            await control()
        finally:
            for server in servers:
                server.close()
    # Stdin EOF: exit now, without waiting for (or cancelling) the connections still held; the
    # kernel closes their sockets.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A raw, misbehaving gateway for the fault matrix.")
    parser.add_argument("--verbose", action="store_true", help="log connections to stderr")
    VERBOSE = parser.parse_args().verbose
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

"""Self-test of fault_server.py with a raw socket client: every path misbehaves as documented.

Run with: .venv/bin/python3 -m pytest Tests/Peers/test_fault_server.py -q
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("fault_server.py")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FaultServer:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        assert ready, "the fault server did not print its ports"
        self.info = json.loads(self.process.stdout.readline())

    def command(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 10)
        assert ready, f"no answer to {command}"
        return json.loads(self.process.stdout.readline())

    def count(self, path: str) -> dict:
        return self.command({"cmd": "count", "path": path})

    def wait_count(self, path: str, key: str, value: object, timeout: float = 3.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            counts = self.count(path)
            if counts[key] == value or time.monotonic() > deadline:
                return counts
            time.sleep(0.02)

    def stop(self) -> int:
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=10)
        finally:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def server():
    s = FaultServer()
    yield s
    assert s.stop() == 0


class Raw:
    """A WebSocket client at the byte level."""

    def __init__(self, port: int, path: str, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=5)
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.buffer = b""
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def recv_some(self, timeout: float = 5.0) -> bytes:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        self.buffer += data
        return data

    def head(self, limit: int = 1 << 20) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            assert self.recv_some(), "EOF before the end of the head"
            assert len(self.buffer) < limit
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def upgrade(self) -> bytes:
        head = self.head()
        assert head.startswith(b"HTTP/1.1 101 ")
        accept = base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest())
        assert b"Sec-WebSocket-Accept: " + accept in head
        return head

    def take(self, n: int, timeout: float = 5.0) -> bytes:
        while len(self.buffer) < n:
            assert self.recv_some(timeout), "EOF in the middle of a frame"
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        b0, b1 = self.take(2, timeout)
        assert not b1 & 0x80, "the server masked a frame"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.take(8))
        return b0 & 0x0F, self.take(n)

    def json(self, timeout: float = 5.0) -> dict:
        opcode, payload = self.frame(timeout)
        assert opcode == 1
        return json.loads(payload)

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
        self.sock.sendall(header + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def send_json(self, obj: object) -> None:
        self.send(1, json.dumps(obj).encode())

    def identify(self) -> None:
        assert self.json()["op"] == 5
        self.send_json({"op": 10})
        self.send_json({"op": 1, "t": "identify", "d": {"type": "bot", "key": "k"}})

    def silent_for(self, seconds: float) -> bool:
        """True when nothing arrives (and the connection stays open) for `seconds`."""
        ready, _, _ = select.select([self.sock], [], [], seconds)
        return not ready

    def close(self) -> None:
        self.sock.close()


def test_announces_ports_and_exits_on_stdin_eof() -> None:
    s = FaultServer()
    assert {"port", "tls_port"} <= set(s.info)
    assert s.command({"cmd": "ping"}) == {"ok": True}
    assert "error" in s.command({"cmd": "nope"})
    assert s.stop() == 0


def test_ok_is_a_correct_session(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/ok?hb=250")
    c.upgrade()
    assert c.json() == {"op": 5, "d": {"heartbeat": 250}}
    c.send_json({"op": 10})
    assert c.json() == {"op": 11}
    c.send_json({"op": 1, "t": "identify", "d": {"type": "bot", "key": "k"}})
    assert c.json()["t"] == "bot_connect_success"
    c.send_json({"op": 1, "t": "probe", "d": {}})
    c.send(9, b"hi")
    assert c.frame() == (0xA, b"hi")
    c.send(8, struct.pack("!H", 1000))
    assert c.frame() == (8, struct.pack("!H", 1000))
    assert c.recv_some() == b""  # the server closes the TCP connection first
    c.close()
    counts = server.wait_count("/ok", "open", 0)
    assert counts["connections"] >= 1 and counts["open"] == 0
    assert 1000 in counts["close_codes"] and counts["events"].get("probe") == 1


def test_silent_sends_nothing_and_sees_the_client_go(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/silent")
    assert c.silent_for(0.5)
    assert server.wait_count("/silent", "open", 1)["open"] == 1
    c.close()
    assert server.wait_count("/silent", "open", 0)["open"] == 0
    assert server.count("/silent")["client_eof"] >= 1


def test_no_hello_upgrades_then_nothing(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/no-hello")
    c.upgrade()
    assert c.silent_for(0.5) and c.buffer == b""
    c.close()


def test_slow_sends_the_hello_one_byte_per_second(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/slow")
    c.upgrade()
    if not c.buffer:
        c.recv_some()
    assert len(c.buffer) == 1 and c.buffer[0] == 0x81
    assert c.silent_for(0.6)
    c.close()


def test_slow_101_sends_the_answer_one_byte_per_second(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/slow-101")
    assert c.recv_some() == b"H"
    assert c.silent_for(0.6)
    c.close()


def test_zombie_never_acks(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/zombie?hb=200")
    c.upgrade()
    c.identify()
    assert c.silent_for(0.5)
    c.close()
    assert server.wait_count("/zombie", "open", 0)["heartbeats"] >= 1


def test_reset_mid_frame(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/reset-mid-frame")
    c.upgrade()
    c.identify()
    assert c.json() == {"op": 11}
    b0, b1 = c.take(2)
    assert b0 == 0x81 and b1 == 126
    (length,) = struct.unpack("!H", c.take(2))
    with pytest.raises(ConnectionResetError):
        while len(c.buffer) < length:
            if not c.recv_some():
                pytest.fail("a FIN instead of a RST")
    assert 0 < len(c.buffer) < length
    c.close()


def test_bad_101_status_line(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/bad-101")
    assert c.head().startswith(b"HTTP/1.1 1O1 ")
    c.close()


def test_101_without_upgrade_headers(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/bad-101-headers")
    head = c.head().lower()
    assert head.startswith(b"http/1.1 101 ")
    assert b"upgrade:" not in head and b"sec-websocket-accept" not in head
    c.close()


def test_garbage_is_not_http(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/garbage")
    c.recv_some()
    assert not c.buffer.startswith(b"HTTP/") and c.buffer.startswith(b"SSH-2.0-")
    c.close()


def test_huge_headers(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/huge-headers")
    head = c.upgrade()
    assert len(head) > 100_000
    c.close()


def test_status_refuses_the_upgrade(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/status/503")
    assert c.head().startswith(b"HTTP/1.1 503 ")
    c.close()
    c = Raw(server.info["port"], "/nowhere")
    assert c.head().startswith(b"HTTP/1.1 404 ")
    c.close()


def test_no_close_frame_ends_with_a_fin(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/no-close-frame?after=100")
    c.upgrade()
    c.identify()
    assert c.json()["op"] == 11
    assert c.json()["t"] == "bot_connect_success"
    assert c.recv_some() == b""  # FIN, no close frame
    c.close()


@pytest.mark.parametrize("code", [1005, 999])
def test_bad_close_code(server: FaultServer, code: int) -> None:
    c = Raw(server.info["port"], f"/bad-close-code?after=100&code={code}")
    c.upgrade()
    c.identify()
    frames = [c.frame() for _ in range(3)]
    assert frames[-1][0] == 8 and struct.unpack("!H", frames[-1][1][:2])[0] == code
    c.send(8, struct.pack("!H", 1002))
    c.close()
    counts = server.wait_count("/bad-close-code", "open", 0)
    assert 1002 in counts["close_codes"]


def test_close_then_hold(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/close-then-hold?after=100")
    c.upgrade()
    c.identify()
    frames = [c.frame() for _ in range(3)]
    assert frames[-1] == (8, struct.pack("!H", 4006) + b"close then hold")
    c.send(8, struct.pack("!H", 4006))
    assert c.silent_for(0.5)  # no answer, no FIN
    assert server.count("/close-then-hold")["open"] == 1
    c.close()
    counts = server.wait_count("/close-then-hold", "open", 0)
    assert counts["close_codes"] == [4006] and counts["open"] == 0


def test_ping_flood(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/ping-flood?secs=1")
    c.upgrade()
    c.identify()
    pings = 0
    start = time.monotonic()
    while time.monotonic() - start < 0.8:
        opcode, payload = c.frame()
        if opcode == 9:
            pings += 1
            if pings % 100 == 0:
                c.send(10, payload)
    assert pings > 1000
    c.close()
    counts = server.wait_count("/ping-flood", "open", 0)
    assert counts["pings_sent"] >= pings and counts["pongs"] >= 1


def test_ignore_close_never_answers_and_never_closes(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/ignore-close")
    c.upgrade()
    c.identify()
    c.frame()
    c.frame()
    c.send(8, struct.pack("!H", 1000))
    assert c.silent_for(1.0)
    counts = server.count("/ignore-close")
    assert counts["close_codes"] == [1000] and counts["open"] == 1
    c.close()
    assert server.wait_count("/ignore-close", "open", 0)["open"] == 0


def read_flood_then_close(c: Raw, n: int, code: int) -> None:
    """What /flood-then-close sends after identify: the ACK, bot_connect_success, the n FLOOD frames
    in order, the close frame, then a reset (no FIN)."""
    assert c.json() == {"op": 11}
    assert c.json()["t"] == "bot_connect_success"
    for seq in range(n):
        assert c.frame() == (1, b'{"op":0,"t":"FLOOD","d":{"seq":%d}}' % seq)
    assert c.frame() == (8, struct.pack("!H", code) + b"flood then close")
    assert c.buffer == b""
    with pytest.raises(ConnectionResetError):
        if not c.recv_some():
            pytest.fail("a FIN instead of a RST")


def test_flood_then_close_leaves_everything_in_the_receive_buffer(server: FaultServer) -> None:
    before = server.count("/flood-then-close")["connections"]
    c = Raw(server.info["port"], "/flood-then-close")
    c.upgrade()
    c.identify()
    # Not reading: the server still writes it all, waits for the client's kernel to take it, resets.
    deadline = time.monotonic() + 15
    while True:
        counts = server.count("/flood-then-close")
        if counts["connections"] == before + 1 and counts["open"] == 0:
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.05)
    assert counts["unacked_at_reset"] == 0 and counts["frames_sent"] >= 2000
    assert c.buffer == b""  # nothing read so far: it all waits in the kernel, then the RST
    read_flood_then_close(c, 2000, 4001)
    c.close()


def test_flood_then_close_bigger_than_the_buffers_with_a_reading_client(server: FaultServer) -> None:
    c = Raw(server.info["port"], "/flood-then-close?n=30000&code=4006")
    c.upgrade()
    c.identify()
    read_flood_then_close(c, 30000, 4006)  # ~1 MB: written as the client reads, still all delivered
    c.close()
    counts = server.wait_count("/flood-then-close", "open", 0, timeout=10)
    assert counts["unacked_at_reset"] == 0


def test_trickle_sends_one_big_frame_slowly_and_holds_the_acks(server: FaultServer) -> None:
    size, rate = 300_001, 200_000  # 1.5 s of trickling
    before = server.count("/trickle")
    c = Raw(server.info["port"], f"/trickle?hb=200&size={size}&rate={rate}")
    c.upgrade()
    assert c.json() == {"op": 5, "d": {"heartbeat": 200}}
    c.send_json({"op": 10})
    c.send_json({"op": 1, "t": "identify", "d": {"type": "bot", "key": "k"}})
    assert c.json() == {"op": 11}
    assert c.json()["t"] == "bot_connect_success"
    b0, b1 = c.take(2)
    assert (b0, b1) == (0x81, 127)  # one final text frame with a 64-bit length
    (length,) = struct.unpack("!Q", c.take(8))
    assert length == size
    started = time.monotonic()
    beats, next_beat = 0, started
    while len(c.buffer) < length:  # heartbeat every 200 ms while the frame trickles in
        if time.monotonic() >= next_beat:
            c.send_json({"op": 10})
            beats += 1
            next_beat += 0.2
        assert c.recv_some(5.0), "EOF inside the big frame"
    took = time.monotonic() - started
    body = c.take(length)
    # Nothing cut into the frame: its payload is exactly the event, valid JSON.
    assert json.loads(body) == {"op": 0, "t": "BIG", "d": {"pad": "x" * (size - 33)}}
    assert took >= 0.7 * size / rate, f"{size} bytes in {took:.2f} s: not trickled"
    assert beats >= 3
    # The ACKs of the beats sent meanwhile come after the frame, then the session is normal.
    for _ in range(beats):
        assert c.json() == {"op": 11}
    c.send_json({"op": 10})
    assert c.json() == {"op": 11}
    counts = server.count("/trickle")
    assert counts["frames_sent"] == before["frames_sent"] + 1
    assert counts["heartbeats"] == before["heartbeats"] + beats + 2
    c.send(8, struct.pack("!H", 1000))
    assert c.frame() == (8, struct.pack("!H", 1000))
    c.close()
    assert server.wait_count("/trickle", "open", 0)["open"] == 0


def test_tls_port_answers_the_client_hello_with_http(server: FaultServer) -> None:
    context = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", server.info["tls_port"]), timeout=5) as sock:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(sock, server_hostname="localhost")
    assert server.wait_count("/tls-garbage", "open", 0)["connections"] >= 1


def test_tls_wrong_host(server: FaultServer) -> None:
    if "tls_wrong_host_port" not in server.info:
        pytest.skip("no cryptography")
    port = server.info["tls_wrong_host_port"]
    context = ssl.create_default_context(cafile=server.info["ca"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            context.wrap_socket(sock, server_hostname="localhost")
    # For the name it was made for, the certificate is good and a session works.
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="wrong.example")
    c = Raw(port, "/", sock=sock)
    c.upgrade()
    assert c.json()["op"] == 5
    c.close()
    counts = server.wait_count("/tls-wrong-host", "open", 0)
    assert counts["connections"] == 2 and counts["open"] == 0

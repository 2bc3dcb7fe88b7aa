"""Self-test of websocket_peer.py with websockets' own clients (sync for ws, asyncio for wss: see wss_echo).

Run with: /work/main/.venv/bin/python3 -m pytest Tests/Peers -q
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidHandshake, InvalidStatus
from websockets.asyncio.client import connect as asyncio_connect
from websockets.sync.client import connect

PEER = Path(__file__).with_name("websocket_peer.py")


class Peer:
    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(PEER), *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        assert ready, "the peer did not print its ports"
        line = self.process.stdout.readline()
        self.info = json.loads(line)

    def url(self, path: str, server: str = "ws", host: str = "127.0.0.1") -> str:
        scheme = "ws" if server == "ws" else "wss"
        return f"{scheme}://{host}:{self.info[server]}{path}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.info["ca"])

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def peer():
    peer = Peer()
    yield peer
    assert peer.stop() == 0


def test_ports_and_ca(peer: Peer) -> None:
    assert set(peer.info) == {"ws", "wss", "wss_wrong_host", "ca"}
    assert len({peer.info["ws"], peer.info["wss"], peer.info["wss_wrong_host"]}) == 3
    assert os.path.isabs(peer.info["ca"])
    assert Path(peer.info["ca"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_echo_keeps_type_and_content(peer: Peer) -> None:
    with connect(peer.url("/echo?ignored=1")) as ws:
        for message in ["héllo", b"\x00\x01\xff", "", b"", "x" * 100_000, bytes(range(256)) * 1000]:
            ws.send(message)
            reply = ws.recv()
            assert type(reply) is type(message)
            assert reply == message


def test_close_with_code(peer: Peer) -> None:
    with connect(peer.url("/close/4001")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001
    assert closed.value.rcvd.reason == "bye 4001"


@pytest.mark.parametrize("status", [403, 404, 500])
def test_status_refuses_upgrade(peer: Peer, status: int) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(peer.url(f"/status/{status}"))
    assert refused.value.response.status_code == status
    assert refused.value.response.body == f"status {status}\n".encode()


def test_unknown_path_is_404(peer: Peer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(peer.url("/no-such-thing"))
    assert refused.value.response.status_code == 404


def test_headers_reports_the_request(peer: Peer) -> None:
    with connect(peer.url("/headers?a=1&b=two%20words"), user_agent_header="peer-test/1.0") as ws:
        info = json.loads(ws.recv())
        ws.send("after")
        assert ws.recv() == "after"
    assert info["path"] == "/headers?a=1&b=two%20words"
    assert info["host"] == f"127.0.0.1:{peer.info['ws']}"
    assert info["user_agent"] == "peer-test/1.0"
    assert info["origin"] is None
    assert info["version"] == "13"
    assert len(info["key"]) == 24


def test_ping_reports_the_pong(peer: Peer) -> None:
    with connect(peer.url("/ping")) as ws:  # websockets answers pings by itself
        assert ws.recv() == "pong:hello-ping"
        ws.send(b"then echo")
        assert ws.recv() == b"then echo"


def test_fragmented_message_is_reassembled(peer: Peer) -> None:
    with connect(peer.url("/send-fragmented")) as ws:
        assert ws.recv() == "héllo wörld 😀"
        ws.send("and echo")
        assert ws.recv() == "and echo"


def test_bad_accept_fails_the_handshake(peer: Peer) -> None:
    with pytest.raises(InvalidHandshake) as failed:
        connect(peer.url("/bad-accept"))
    assert "Sec-WebSocket-Accept" in str(failed.value)


def test_drop_closes_without_close_frame(peer: Peer) -> None:
    with connect(peer.url("/drop")) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv()
    assert closed.value.rcvd is None


def test_stall_close_never_answers_the_close(peer: Peer) -> None:
    with connect(peer.url("/stall-close"), close_timeout=1) as ws:
        ws.send("ignored")
        started = time.monotonic()
        ws.close()  # waits close_timeout for the peer's close frame, which never comes
        elapsed = time.monotonic() - started
    assert elapsed >= 0.9
    assert ws.protocol.close_rcvd is None
    assert ws.protocol.close_sent is not None


def test_stall_close_keeps_the_socket_open(peer: Peer) -> None:
    # Below websockets' client: send a close frame on a raw socket and check nothing comes back for a while.
    with socket.create_connection(("127.0.0.1", peer.info["ws"]), timeout=5) as raw:
        raw.sendall(
            b"GET /stall-close HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += raw.recv(4096)
        assert response.startswith(b"HTTP/1.1 101")
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in response
        # Masked close frame, code 1000, mask 0.
        raw.sendall(bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]))
        raw.settimeout(1.5)
        with pytest.raises(TimeoutError):
            raw.recv(1)  # neither a close frame nor EOF


def wss_echo(url: str, context: ssl.SSLContext, message: str | bytes, **kwargs) -> tuple[str | bytes, str]:
    """Connects with websockets' asyncio client, sends `message`; returns the echo and the TLS version.

    Not the sync client: it reads the TLS socket on a background thread while the caller's thread writes the opening
    request, and one OpenSSL connection used by two threads at once can lose that write under TLS 1.3 (seen about
    once in 2,000 connections on a busy machine: the server never gets the request and closes after 10 s)."""

    async def run() -> tuple[str | bytes, str]:
        async with asyncio_connect(url, ssl=context, **kwargs) as ws:
            await ws.send(message)
            reply = await ws.recv()
            return reply, ws.transport.get_extra_info("ssl_object").version()

    return asyncio.run(run())


def test_wss_verifies_for_localhost(peer: Peer) -> None:
    reply, version = wss_echo(peer.url("/echo", "wss", "localhost"), peer.tls(), "secure")
    assert reply == "secure"
    assert version in ("TLSv1.2", "TLSv1.3")
    # The IP address SAN: connecting to 127.0.0.1 verifies too.
    assert wss_echo(peer.url("/echo", "wss"), peer.tls(), b"by address")[0] == b"by address"


def test_wss_wrong_host_fails_host_name_verification(peer: Peer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as failed:
        wss_echo(peer.url("/echo", "wss_wrong_host", "localhost"), peer.tls(), "never sent")
    assert failed.value.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH, not an unknown CA
    # The certificate itself chains to the CA: it verifies for the name it was issued for.
    reply, _ = wss_echo(peer.url("/echo", "wss_wrong_host"), peer.tls(), "right name", server_hostname="wrong.example")
    assert reply == "right name"


def test_plain_client_fails_against_unknown_ca(peer: Peer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as failed:
        wss_echo(peer.url("/echo", "wss", "localhost"), ssl.create_default_context(), "never sent")
    assert failed.value.verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY


def test_exits_when_stdin_closes_even_with_open_connections() -> None:
    peer = Peer()
    certdir = Path(peer.info["ca"]).parent
    with connect(peer.url("/echo")) as echo, connect(peer.url("/stall-close"), close_timeout=0.1) as stalled:
        stalled.close()
        started = time.monotonic()
        assert peer.stop() == 0
        assert time.monotonic() - started < 5
        assert not certdir.exists()  # the temporary directory is removed
        with pytest.raises(ConnectionClosed):
            echo.recv(timeout=5)


def test_exits_on_sigterm(tmp_path: Path) -> None:
    peer = Peer("--certdir", str(tmp_path / "certs"))
    assert peer.info["ca"] == str(tmp_path / "certs" / "ca.pem")
    peer.process.send_signal(signal.SIGTERM)
    assert peer.process.wait(timeout=5) == 0
    assert peer.stop() == 0
    assert (tmp_path / "certs" / "ca.pem").exists()  # a given directory is kept

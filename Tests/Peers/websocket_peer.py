#!/usr/bin/env python3
"""A real WebSocket server for the Swift integration tests.

Started by the tests as a subprocess. On start it creates a test CA and two server certificates, listens on
127.0.0.1 (three servers: ws, wss for "localhost", wss for "wrong.example" only) and prints one line of JSON on
stdout:

    {"ws": PORT, "wss": PORT, "wss_wrong_host": PORT, "ca": "/abs/path/ca.pem"}

It exits, closing everything, when its stdin reaches EOF (so it dies with the test process) or on SIGTERM/SIGINT.
Nothing else is written to stdout; logs go to stderr (quiet unless --verbose).

Behaviour by request path (query strings are allowed and ignored unless stated):

    /echo              echo every message with the same type (also empty ones) until the client closes
    /close/<code>      close right after the handshake with <code> and the reason "bye <code>"
    /ping              ping with payload "hello-ping", await the pong, send "pong:<pong payload>", then echo
    /headers           send a JSON object describing the request (path with query, host, user_agent, origin, key,
                       version), then echo
    /status/<n>        refuse the upgrade with HTTP status n and a short body
    /bad-accept        complete the upgrade with a wrong Sec-WebSocket-Accept, then echo
    /drop              abort the TCP connection right after the handshake, without a close frame
    /send-fragmented   send "héllo wörld 😀" as three fragments, then echo
    /stall-close       receive (and discard) messages; a close frame from the client is never answered and the TCP
                       connection stays open for 30 s afterwards (unless the client closes it)

Any other path is refused with 404.

Requires websockets 17 (new asyncio API) and cryptography.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import http
import json
import logging
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
from utilbot_gateway.devserver import certificates  # noqa: E402 (the repository's package, above)
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ProtocolError
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response

log = logging.getLogger("websocket_peer")

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
STALL_SECONDS = 30.0
PONG_TIMEOUT_SECONDS = 10.0
FRAGMENTS = ["héllo ", "wörld ", "😀"]
PING_PAYLOAD = "hello-ping"
# Valid base64 of 20 bytes, like a real Sec-WebSocket-Accept, but not the one the client's key asks for.
WRONG_ACCEPT = base64.b64encode(hashlib.sha1(b"not the accept value you are looking for").digest()).decode()


# ---------------------------------------------------------------------------------------------------------------------
# Certificates: issued by the dev gateway's module, one CA for both


def make_certificates(directory: Path) -> dict[str, Path]:
    """The CA and two server certificates in `directory`: one for localhost, one valid only for
    wrong.example; returns the paths of the files."""
    local = certificates.issue(directory, "localhost", ["localhost", "127.0.0.1", "::1"])
    wrong = certificates.issue(directory, "wrong_host", ["wrong.example"])
    return {
        "ca": local.ca,
        "localhost": local.cert,
        "localhost_key": local.key,
        "wrong_host": wrong.cert,
        "wrong_host_key": wrong.key,
    }


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


# ---------------------------------------------------------------------------------------------------------------------
# Connections


class PeerConnection(ServerConnection):
    """A websockets server connection with the hooks the test paths need."""

    # Every connection, also those still in the opening handshake, so that shutdown can abort them all at once.
    registry: weakref.WeakSet[PeerConnection] = weakref.WeakSet()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Set by process_request for /stall-close, before the handshake completes (so no frame can slip through).
        self.stall_close = False
        self.close_frame_seen = asyncio.Event()
        self.pong_seen = asyncio.Event()
        self.last_pong: bytes | None = None
        PeerConnection.registry.add(self)

    def process_event(self, event: Request | Frame) -> None:
        # Record the payload of any pong, also one that does not match our ping (websockets ignores those), so
        # /ping can report what really came back.
        if isinstance(event, Frame) and event.opcode is Opcode.PONG:
            self.last_pong = bytes(event.data)
            self.pong_seen.set()
        super().process_event(event)

    def send_data(self) -> None:
        # How /stall-close leaves the client's close unanswered: websockets' sans-I/O protocol answers a close frame
        # by itself, inside data_received(): it queues the echoed close frame and, being the server, the end of the
        # TCP stream (EOF), and send_data() writes them to the transport right away. Pausing reading would come too
        # late (the frame is parsed in the same call), so once a close frame has been received we take what the
        # protocol wants to send and drop it. The protocol believes it answered; the client sees nothing, and the
        # socket stays open until the handler aborts it (30 s) or the client gives up and closes it.
        if self.stall_close and self.protocol.close_rcvd is not None:
            self.protocol.data_to_send()  # discard: the close reply and the EOF
            self.close_frame_seen.set()
            return
        super().send_data()


# ---------------------------------------------------------------------------------------------------------------------
# Handshake hooks


def _path(request: Request) -> str:
    return urlsplit(request.path).path


def process_request(connection: PeerConnection, request: Request) -> Response | None:
    path = _path(request)
    if path == "/stall-close":
        connection.stall_close = True
    if path.startswith("/status/"):
        try:
            status = http.HTTPStatus(int(path.removeprefix("/status/")))
        except ValueError:
            return connection.respond(http.HTTPStatus.BAD_REQUEST, "bad status\n")
        if status < 200:
            return connection.respond(http.HTTPStatus.BAD_REQUEST, "status must be 200..599\n")
        return connection.respond(status, f"status {status.value}\n")
    if path.startswith("/close/"):
        try:
            code = int(path.removeprefix("/close/"))
            Close(code, "").check()
        except (ValueError, ProtocolError):
            return connection.respond(http.HTTPStatus.BAD_REQUEST, "invalid close code\n")
        return None
    if path not in HANDLERS:
        return connection.respond(http.HTTPStatus.NOT_FOUND, "unknown path\n")
    return None


def process_response(connection: PeerConnection, request: Request, response: Response) -> Response | None:
    if _path(request) == "/bad-accept" and response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
        del response.headers["Sec-WebSocket-Accept"]
        response.headers["Sec-WebSocket-Accept"] = WRONG_ACCEPT
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Handlers


async def echo(ws: PeerConnection) -> None:
    async for message in ws:  # str for text, bytes for binary: send() keeps the type
        await ws.send(message)


async def close_with_code(ws: PeerConnection) -> None:
    code = int(_path(ws.request).removeprefix("/close/"))
    await ws.close(code, f"bye {code}")


async def ping(ws: PeerConnection) -> None:
    ws.pong_seen.clear()
    pong_waiter = await ws.ping(PING_PAYLOAD)
    # Not awaited (a wrong payload would never complete it); retrieve its result so no warning is logged.
    pong_waiter.add_done_callback(lambda future: future.cancelled() or future.exception())
    try:
        async with asyncio.timeout(PONG_TIMEOUT_SECONDS):
            await ws.pong_seen.wait()
    except TimeoutError:
        await ws.close(1011, "no pong")
        return
    payload = ws.last_pong or b""
    await ws.send("pong:" + payload.decode("utf-8", "replace"))
    await echo(ws)


async def headers(ws: PeerConnection) -> None:
    request_headers = ws.request.headers

    def header(name: str) -> str | None:
        values = request_headers.get_all(name)
        return ", ".join(values) if values else None

    await ws.send(
        json.dumps(
            {
                "path": ws.request.path,
                "host": header("Host"),
                "user_agent": header("User-Agent"),
                "origin": header("Origin"),
                "key": header("Sec-WebSocket-Key"),
                "version": header("Sec-WebSocket-Version"),
            }
        )
    )
    await echo(ws)


async def drop(ws: PeerConnection) -> None:
    ws.transport.abort()
    await ws.wait_closed()


async def send_fragmented(ws: PeerConnection) -> None:
    await ws.send(FRAGMENTS)
    await echo(ws)


async def stall_close(ws: PeerConnection) -> None:
    async def discard_messages() -> None:
        # Keep reading, or websockets would stop reading from the socket once its queue is full and never see the
        # close frame. Ends when the TCP connection is gone.
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass

    reader = asyncio.create_task(discard_messages())
    lost = asyncio.ensure_future(ws.wait_closed())
    close_seen = asyncio.ensure_future(ws.close_frame_seen.wait())
    try:
        await asyncio.wait([lost, close_seen], return_when=asyncio.FIRST_COMPLETED)
        if not lost.done():
            try:
                async with asyncio.timeout(STALL_SECONDS):
                    await asyncio.shield(lost)
            except TimeoutError:
                ws.transport.abort()
                await lost
    finally:
        for task in (reader, lost, close_seen):
            task.cancel()


HANDLERS = {
    "/echo": echo,
    "/ping": ping,
    "/headers": headers,
    "/bad-accept": echo,
    "/drop": drop,
    "/send-fragmented": send_fragmented,
    "/stall-close": stall_close,
}


async def handler(ws: PeerConnection) -> None:
    path = _path(ws.request)
    function = close_with_code if path.startswith("/close/") else HANDLERS[path]
    try:
        await function(ws)
    except ConnectionClosed:
        pass  # the client went away: expected in these tests
    except Exception:
        log.exception("handler for %s failed", ws.request.path)


# ---------------------------------------------------------------------------------------------------------------------
# Main


def watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Runs in a daemon thread: sets `stop` when stdin reaches EOF (the test process is gone or done)."""
    try:
        while os.read(sys.stdin.fileno(), 65536):
            pass
    except (OSError, ValueError):
        pass
    try:
        loop.call_soon_threadsafe(stop.set)
    except RuntimeError:
        pass  # the loop is already closed


async def run(arguments: argparse.Namespace) -> None:
    if arguments.certdir:
        certdir = Path(arguments.certdir).resolve()
        certdir.mkdir(parents=True, exist_ok=True)
        temporary = None
    else:
        temporary = tempfile.mkdtemp(prefix="utilbot-peer-")
        certdir = Path(temporary).resolve()
    try:
        paths = make_certificates(certdir)
        common = {
            "process_request": process_request,
            "process_response": process_response,
            "create_connection": PeerConnection,
            "compression": None,
            "max_size": MAX_MESSAGE_SIZE,
            "ping_interval": None,
            "close_timeout": 5,
        }
        servers = {
            "ws": await serve(handler, "127.0.0.1", 0, **common),
            "wss": await serve(
                handler, "127.0.0.1", 0, ssl=server_tls_context(paths["localhost"], paths["localhost_key"]), **common
            ),
            "wss_wrong_host": await serve(
                handler, "127.0.0.1", 0, ssl=server_tls_context(paths["wrong_host"], paths["wrong_host_key"]), **common
            ),
        }

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if not arguments.ignore_stdin:
            threading.Thread(target=watch_stdin, args=(loop, stop), name="stdin-watch", daemon=True).start()

        ports = {name: server.sockets[0].getsockname()[1] for name, server in servers.items()}
        print(json.dumps({**ports, "ca": str(paths["ca"])}), flush=True)
        log.info("listening: %s", ports)

        await stop.wait()
        log.info("shutting down")
        for server in servers.values():
            server.close(close_connections=False)
        for connection in list(PeerConnection.registry):
            transport = getattr(connection, "transport", None)  # none yet if the TLS handshake never completed
            if transport is not None:
                transport.abort()
        try:
            async with asyncio.timeout(2):
                await asyncio.gather(*(server.wait_closed() for server in servers.values()))
        except TimeoutError:
            log.warning("connections still open at exit")
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certdir", help="directory for the certificates (default: a temporary one, removed at exit)")
    parser.add_argument("--ignore-stdin", action="store_true", help="do not exit at EOF on stdin (manual runs)")
    parser.add_argument("--verbose", action="store_true", help="log connections and websockets' debug output")
    arguments = parser.parse_args()

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if arguments.verbose else logging.WARNING,
        format="websocket_peer: %(levelname)s %(name)s: %(message)s",
    )
    if not arguments.verbose:
        # Failed handshakes, TLS errors and dropped connections are what the tests provoke: not worth a line.
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
    try:
        asyncio.run(run(arguments))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        pass  # stdout closed before we could print the ports: nobody is listening
    return 0


if __name__ == "__main__":
    sys.exit(main())

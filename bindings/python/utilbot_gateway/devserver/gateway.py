"""The gateway: the WebSocket server, the state its connections share (accepted keys, the ACK
switch, server counts, statistics) and the operations the control channel offers."""

from __future__ import annotations

import asyncio
import http
import ipaddress
import logging
import random
import secrets
import socket
import ssl
from typing import Any

from websockets.asyncio.server import Server, serve
from websockets.http11 import Request, Response

from . import protocol
from .config import Config
from .connection import GatewayConnection
from .counts import Aggregate, ServerCounts
from .params import ParameterError, parse_request_target
from .session import Session
from .stats import Stats

log = logging.getLogger("utilbot_gateway.devserver")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.keys: set[str] = set(config.keys)
        self.acks_enabled = True
        self.sessions: dict[int, Session] = {}
        self.stats = Stats()
        self.aggregate = Aggregate()
        self.stopping = False
        self.random = random.Random()
        self._next_id = 1
        self._server: Server | None = None
        self._bound: tuple[str, int] | None = None

    @property
    def heartbeat_timeout_s(self) -> float:
        """How long after the previous heartbeat (or the Hello) the next one must arrive."""
        return (self.config.heartbeat_ms + self.config.grace_ms) / 1000

    # -----------------------------------------------------------------------------------------
    # Serving

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        """Listens on the first address the host resolves to (one socket, so that port 0 gives
        one port). Raises OSError when that fails."""
        infos = await asyncio.get_running_loop().getaddrinfo(
            self.config.host, self.config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        if not infos:
            raise OSError(f"cannot resolve {self.config.host!r}")
        address = infos[0][4][0]
        self._server = await serve(
            self._handler,
            address,
            self.config.port,
            ssl=tls,
            process_request=self._process_request,
            create_connection=GatewayConnection,
            compression=None,  # no permessage-deflate: the gateway compresses with zlib itself
            ping_interval=None,  # the protocol's own heartbeats are the keep-alive
            close_timeout=self.config.close_timeout_s,
            max_size=self.config.max_message_bytes,
            logger=logging.getLogger("websockets.server"),
        )
        self._bound = (address, self._server.sockets[0].getsockname()[1])
        log.info("listening on %s port %d%s", address, self._bound[1], " (TLS)" if tls else "")

    @property
    def port(self) -> int:
        assert self._bound is not None
        return self._bound[1]

    def url(self, tls: bool) -> str:
        """The URL a bot on this machine uses (wss: the host name the certificate is for)."""
        assert self._bound is not None
        address, port = self._bound
        unspecified = ipaddress.ip_address(address).is_unspecified
        if tls:
            loopback = unspecified or ipaddress.ip_address(address).is_loopback
            host = "localhost" if loopback else self.config.host
            return f"wss://{_url_host(host)}:{port}/"
        if unspecified:
            address = "::1" if ":" in address else "127.0.0.1"
        return f"ws://{_url_host(address)}:{port}/"

    def _process_request(self, connection: GatewayConnection, request: Request) -> Response | None:
        try:
            connection.params = parse_request_target(request.path)
        except ParameterError as error:
            log.info("refused %s: %s", request.path, error)
            return connection.respond(http.HTTPStatus.BAD_REQUEST, f"{error}\n")
        return None

    async def _handler(self, ws: GatewayConnection) -> None:
        conn_id = self._next_id
        self._next_id += 1
        session = Session(self, ws, conn_id)
        self.sessions[conn_id] = session
        self.stats.connects_total += 1
        log.info("conn %d: connected from %s to %s", conn_id, _peer(ws), session.params.path)
        try:
            await session.run()
        except Exception:
            log.exception("conn %d: handler failed", conn_id)
        finally:
            self._unregister(session)

    def _unregister(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        log.info("conn %d: gone: %s", session.id, session.account_end())
        if self.aggregate.remove(session.id) and not self.stopping:
            self.broadcast_global()
        session.finished.set()

    async def shutdown(self) -> None:
        """Stops listening and closes every connection with 1001 (going away); stalled ones and
        ones that do not finish their close handshake in time are aborted."""
        self.stopping = True
        if self._server is None:
            return
        for session in list(self.sessions.values()):
            if session.stalled:
                session.ws.abort()
        self._server.close(close_connections=True)
        try:
            async with asyncio.timeout(self.config.close_timeout_s + 1):
                await self._server.wait_closed()
        except TimeoutError:
            for session in list(self.sessions.values()):
                session.ws.abort()
            try:
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            except TimeoutError:
                log.warning("connections still open at exit")

    # -----------------------------------------------------------------------------------------
    # What sessions share

    def new_bot_id(self) -> str:
        in_use = {session.bot_id for session in self.sessions.values()}
        while True:
            bot_id = secrets.token_hex(8)
            if bot_id not in in_use:
                return bot_id

    def report(self, session: Session, counts: ServerCounts) -> None:
        self.aggregate.report(session.id, counts)
        log.info("conn %d: send_servers %s", session.id, counts)
        self.broadcast_global()

    def broadcast_global(self) -> int:
        data = self.aggregate.total().as_event_data()
        return self.send_all(protocol.GLOBAL_GUILD_COUNT, data)

    def identified_sessions(self) -> list[Session]:
        return [session for session in self.sessions.values() if session.identified]

    # -----------------------------------------------------------------------------------------
    # Control operations (see control.py)

    def snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot(
            connections=len(self.sessions),
            identified=len(self.identified_sessions()),
            global_counts=self.aggregate.total().as_event_data(),
        )

    async def close_all(self, code: int) -> int:
        """Closes every connection that is neither closing nor stalled with `code`; returns once
        they are gone (or the close timeout has passed) and how many there were."""
        closing = [session for session in list(self.sessions.values()) if session.close(code)]
        if closing:
            await asyncio.wait(
                [asyncio.create_task(session.finished.wait()) for session in closing],
                timeout=self.config.close_timeout_s + 2,
            )
        return len(closing)

    def close_some(self, fraction: float, codes: list[int]) -> int:
        """Closes a random `fraction` of the open connections, each with a random code of
        `codes` (fault injection for soak tests); returns how many it started closing."""
        open_sessions = [s for s in self.sessions.values() if not s.closing and not s.stalled]
        chosen = self.random.sample(open_sessions, round(len(open_sessions) * fraction))
        return sum(session.close(self.random.choice(codes)) for session in chosen)

    def send_all(self, name: str, data: Any = None, *, with_data: bool = True) -> int:
        payload = protocol.event(name, data, with_data=with_data)
        return sum(session.send(payload) for session in self.identified_sessions())

    def send_raw_all(self, text: str) -> int:
        return sum(session.send_text(text) for session in self.identified_sessions())

    def stall_all(self) -> int:
        return sum(session.stall() for session in list(self.sessions.values()))

    def set_acks(self, enabled: bool) -> None:
        self.acks_enabled = enabled
        log.info("acks %s", "resumed" if enabled else "stopped")

    def set_keys(self, keys: list[str]) -> None:
        self.keys = set(keys)
        log.info("accepted keys replaced (%d)", len(self.keys))

    def connections(self) -> list[dict[str, Any]]:
        return [session.describe() for session in self.sessions.values()]


def _peer(ws: GatewayConnection) -> str:
    try:
        address = ws.remote_address
    except Exception:
        return "?"
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{_url_host(address[0])}:{address[1]}"
    return str(address)

"""Helpers for the dev gateway tests: the server as a subprocess, and a bot-side client.

Tests are plain functions that run one coroutine with `run(...)`, which bounds it with a timeout.
The control channel is read on a worker thread so that the event loop (and with it the test's
WebSocket clients, which must answer close frames) keeps running while a command is answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Coroutine

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PYTHON_ROOT = Path(__file__).resolve().parents[1]  # bindings/python
TEST_TIMEOUT = 20.0
RECV_TIMEOUT = 3.0
IDENTIFY = {"op": 1, "t": "identify", "d": {"type": "bot", "key": "dev-key"}}


def run(coroutine: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT) -> Any:
    """Runs a test body on a fresh event loop, failing it after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


class DevServer:
    def __init__(self, *arguments: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYTHON_ROOT), env.get("PYTHONPATH")]))
        self.arguments = arguments
        self.process = subprocess.Popen(
            [sys.executable, "-m", "utilbot_gateway.devserver", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        assert ready, "the dev gateway printed nothing"
        line = self.process.stdout.readline()
        assert line, f"the dev gateway exited with {self.process.wait()} before announcing itself"
        self.first_line = line
        self.info = json.loads(line)

    @property
    def url(self) -> str:
        return self.info["url"]

    def bot(self, query: str = "v=1", **kwargs: Any) -> Any:
        """A client connection (async context manager) to the gateway with that query string."""
        kwargs.setdefault("close_timeout", 1)
        kwargs.setdefault("open_timeout", 5)
        return connect(f"{self.url}?{query}" if query else self.url, **kwargs)

    async def command(self, command: dict[str, Any] | str, timeout: float = 10) -> dict[str, Any]:
        line = command if isinstance(command, str) else json.dumps(command)
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        answer = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), timeout)
        assert answer, "the dev gateway closed stdout"
        assert answer.endswith(b"\n")
        return json.loads(answer)

    async def stats(self) -> dict[str, Any]:
        answer = await self.command({"cmd": "stats"})
        assert answer["ok"] is True
        return answer["stats"]

    async def stats_when(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5) -> dict[str, Any]:
        """Polls stats until `predicate` holds (connections end asynchronously); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats()
            if predicate(stats):
                return stats
            assert time.monotonic() < deadline, f"stats never matched: {stats}"
            await asyncio.sleep(0.02)

    def stop(self, timeout: float = 10) -> int:
        """Closes stdin (the server's cue to exit) and returns the exit status."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("the dev gateway did not exit at end of stdin")
        return self.process.returncode

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except (BrokenPipeError, OSError):
                pass


@pytest.fixture
def start_server():
    """start_server(*flags) starts a dev gateway (heartbeat 5000 ms unless --heartbeat is given);
    at teardown each one must exit with status 0 at end of stdin."""
    servers: list[DevServer] = []

    def start(*flags: str) -> DevServer:
        if "--heartbeat" not in flags:
            flags = ("--heartbeat", "5000", *flags)
        server = DevServer(*flags)
        servers.append(server)
        return server

    yield start
    statuses = []
    try:
        for server in servers:
            statuses.append(server.stop())
    finally:
        for server in servers:
            server.cleanup()
    assert statuses == [0] * len(servers)


@pytest.fixture
def server(start_server) -> DevServer:
    return start_server()


# ---------------------------------------------------------------------------------------------
# Bot side


async def recv_raw(ws: ClientConnection, timeout: float = RECV_TIMEOUT) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_json(ws: ClientConnection, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
    message = await recv_raw(ws, timeout)
    assert isinstance(message, str), f"expected a text frame, got {message!r}"
    return json.loads(message)


async def send_json(ws: ClientConnection, payload: Any) -> None:
    await ws.send(json.dumps(payload))


async def nothing_within(ws: ClientConnection, seconds: float) -> None:
    """Asserts that no message (and no close) arrives within `seconds`."""
    try:
        message = await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message {message!r}")


async def until_closed(ws: ClientConnection, timeout: float = RECV_TIMEOUT) -> tuple[list[Any], int | None, str | None]:
    """Every message up to the end of the connection (JSON decoded when text) and the close
    code and reason the server sent (None when it sent no close frame)."""
    messages: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await ws.recv()
                messages.append(json.loads(message) if isinstance(message, str) else message)
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
        return messages, (rcvd.code if rcvd else None), (rcvd.reason if rcvd else None)


async def hello(ws: ClientConnection) -> dict[str, Any]:
    message = await recv_json(ws)
    assert message["op"] == 5, message
    return message


async def identify(ws: ClientConnection, key: str = "dev-key") -> dict[str, Any]:
    """Sends identify and returns bot_connect_success (failing on anything else)."""
    await send_json(ws, {"op": 1, "t": "identify", "d": {"type": "bot", "key": key}})
    message = await recv_json(ws)
    assert message["op"] == 0 and message["t"] == "bot_connect_success", message
    return message


class Inflater:
    """A bot's view of a zlib connection in stream style: one decompressobj for all messages."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj()

    def __call__(self, frame: bytes) -> dict[str, Any]:
        assert isinstance(frame, bytes), f"expected a binary frame, got {frame!r}"
        assert frame.endswith(b"\x00\x00\xff\xff"), frame.hex()
        return json.loads(self._inflater.decompress(frame))

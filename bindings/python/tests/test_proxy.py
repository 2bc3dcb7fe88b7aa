"""Proxies from Python, against microsocks (SOCKS5) and tinyproxy (HTTP CONNECT) on loopback, both
installed by scripts/bootstrap.sh: `Client(proxy=...)`, `AsyncClient` the same, the environment
followed by default and turned off by `proxy_from_env=False`, and a refusal as a `ProxyError`."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from gateway_process import Gateway
from test_client import FAST, wait_for
from utilbot_gateway import AsyncClient, Client, EventType, InvalidArgumentError, ProxyError

SECRET = "pr0xy-s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    def __init__(self, argv: list[str], port: int, directory: str | None = None) -> None:
        if not Path(argv[0]).exists():
            pytest.fail(f"{argv[0]} is missing: run `make bootstrap` (it installs the proxies)")
        self.port = port
        self.directory = directory
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"{argv[0]} does not listen on {port}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def proxies():
    started: list[Proxy] = []

    def microsocks(user: str | None = None, password: str | None = None) -> Proxy:
        port = free_port()
        argv = ["/usr/bin/microsocks", "-i", "127.0.0.1", "-p", str(port)]
        if user:
            argv += ["-u", user, "-P", password or ""]
        started.append(Proxy(argv, port))
        return started[-1]

    def tinyproxy(extra: str = "") -> Proxy:
        port = free_port()
        directory = tempfile.mkdtemp(prefix="ubg-tinyproxy-")
        conf = Path(directory) / "tinyproxy.conf"
        user = "root" if os.getuid() == 0 else "nobody"
        conf.write_text(f"User {user}\nPort {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nLogLevel Critical\n{extra}\n")
        started.append(Proxy(["/usr/bin/tinyproxy", "-d", "-c", str(conf)], port, directory))
        return started[-1]

    yield microsocks, tinyproxy
    for proxy in started:
        proxy.stop()


@pytest.fixture
def gateway():
    server = Gateway("--heartbeat", "200", "--heartbeat-grace", "2000", "--echo")
    yield server
    server.stop()


def echo_through(client: Client) -> None:
    wait_for(client, EventType.READY, timeout=10)
    client.send("through_the_proxy", {"n": 1})
    echo = wait_for(client, EventType.DISPATCH, "ECHO", timeout=10)
    assert echo.data["t"] == "through_the_proxy"


def test_socks5h_and_http_connect_carry_the_session(gateway, proxies):
    microsocks, tinyproxy = proxies
    socks = microsocks("bot", SECRET)
    with Client("dev-key", url=gateway.url(), proxy=f"socks5h://bot:{SECRET}@127.0.0.1:{socks.port}", **FAST) as client:
        client.connect()
        echo_through(client)
    http = tinyproxy()
    with Client("dev-key", url=gateway.url(), proxy=f"http://127.0.0.1:{http.port}", **FAST) as client:
        client.connect()
        echo_through(client)


def test_a_refusal_is_a_proxy_error_without_the_password(gateway, proxies):
    microsocks, _ = proxies
    socks = microsocks("bot", SECRET)
    proxy = f"socks5h://bot:wrong-{SECRET}@127.0.0.1:{socks.port}"
    with Client("dev-key", url=gateway.url(), proxy=proxy, **FAST) as client:
        client.connect()
        closed = wait_for(client, EventType.CLOSED, timeout=10)
        assert isinstance(closed.error, ProxyError)
        assert "refused the username or password" in closed.message
        assert SECRET not in closed.message and closed.reconnect


def test_the_environment_is_followed_unless_turned_off(gateway, proxies, monkeypatch):
    microsocks, _ = proxies
    socks = microsocks("bot", SECRET)
    # A proxy that refuses us: the refusal proves the environment was followed.
    monkeypatch.setenv("http_proxy", f"socks5h://bot:wrong@127.0.0.1:{socks.port}")
    with Client("dev-key", url=gateway.url(), **FAST) as client:
        client.connect()
        closed = wait_for(client, EventType.CLOSED, timeout=10)
        assert isinstance(closed.error, ProxyError)
    with Client("dev-key", url=gateway.url(), proxy_from_env=False, **FAST) as client:
        client.connect()
        echo_through(client)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with Client("dev-key", url=gateway.url(), **FAST) as client:
        client.connect()
        echo_through(client)


def test_asyncio_through_a_proxy(gateway, proxies):
    microsocks, _ = proxies
    socks = microsocks()

    async def main() -> str:
        proxy = f"socks5h://127.0.0.1:{socks.port}"
        async with AsyncClient("dev-key", url=gateway.url(), proxy=proxy, **FAST) as client:
            async for event in client:
                if event.type == EventType.READY:
                    await client.send("async_through", {})
                elif event.name == "ECHO":
                    await client.close()
                    return event.data["t"]
        return ""

    assert asyncio.run(asyncio.wait_for(main(), 20)) == "async_through"


def test_a_bad_proxy_url_is_refused_at_once():
    with pytest.raises(InvalidArgumentError, match="unsupported proxy scheme 'ftp'"):
        Client("dev-key", proxy="ftp://proxy.example")
    with pytest.raises(InvalidArgumentError) as raised:
        Client("dev-key", proxy=f"gopher://bot:{SECRET}@proxy.example")
    assert SECRET not in str(raised.value)

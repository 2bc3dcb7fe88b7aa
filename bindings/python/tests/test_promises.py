"""The library's promises seen from Python: heartbeats a zero-grace gateway accepts, zlib
payloads split over messages, fork() and multiprocessing, and exiting while events flow."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import pytest

from gateway_process import PYTHON_ROOT, Gateway

from utilbot_gateway import Client, EventType

FAST = {"reconnect": (0.05, 0.4)}


@pytest.fixture
def gateway():
    started: list[Gateway] = []

    def start(*arguments: str) -> Gateway:
        server = Gateway(*arguments)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for(client: Client, kind: EventType, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.next_event(max(0.0, deadline - time.monotonic()))
        if event is not None and event.type == kind:
            return event
    raise AssertionError(f"no {kind.name} within {timeout} s")


def test_thirty_heartbeats_on_time_for_a_gateway_with_zero_grace(gateway):
    # The gateway holds the client to the fixed schedule from its Hello (beat n by hello + n x
    # interval) with no grace at all: a schedule that drifts, or a timer that fires late, is
    # closed with 4006. 30 beats of 800 ms.
    server = gateway("--heartbeat", "800", "--strict-heartbeat")
    with Client("dev-key", url=server.url(), **FAST) as client:
        client.connect()
        wait_for(client, EventType.READY)
        deadline = time.monotonic() + 40
        while server.stats()["strict_heartbeat_beats_total"] < 31 and time.monotonic() < deadline:
            event = client.next_event(0.5)
            assert event is None or event.type not in (EventType.CLOSED, EventType.ERROR), event
        stats = server.stats()
        assert stats["strict_heartbeat_beats_total"] >= 31, stats
        assert stats["strict_heartbeat_late_closes_total"] == 0, stats
        assert stats["strict_heartbeat_min_margin_ms"] >= 0, stats
        assert client.stats.reconnects == 0


@pytest.mark.parametrize("style", ["split", "stream", "message"])
def test_zlib_payloads_split_over_messages_arrive_whole(gateway, style):
    server = gateway("--heartbeat", "200", "--heartbeat-grace", "2000", "--echo")
    with Client("dev-key", url=server.url(f"v=1&zlib_style={style}"), compression="zlib", **FAST) as client:
        client.connect()
        wait_for(client, EventType.READY)
        for n in range(50):
            client.send("ping", {"n": n, "text": "é" * n})
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 50 and time.monotonic() < deadline:
            event = client.next_event(0.5)
            if event is None:
                continue
            assert event.type != EventType.ERROR, event
            if event.type == EventType.DISPATCH and event.name == "ECHO":
                got.append(event.data["d"])
        assert got == [{"n": n, "text": "é" * n} for n in range(50)]


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, timeout=timeout)


def test_after_os_fork_the_child_refuses_the_parents_client(gateway):
    server = gateway("--heartbeat", "200", "--heartbeat-grace", "2000")
    result = run_python(f"""
        import os, sys
        from utilbot_gateway import Client, EventType, InvalidStateError
        client = Client("dev-key", url={server.url()!r})
        client.connect()
        while (event := client.next_event(10)) is not None and event.type != EventType.READY:
            pass
        pid = os.fork()
        if pid == 0:
            try:
                client.send("x", {{}})
                os._exit(10)
            except InvalidStateError as error:
                if "fork()" not in str(error):
                    os._exit(11)
            try:
                for _ in range(10000):  # events copied before the fork may still be returned
                    client.next_event(0.01)
                os._exit(12)
            except InvalidStateError:
                pass
            client.free()  # refused by the library, never waits
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        client.send("after_fork", {{}})
        print(os.waitstatus_to_exitcode(status), client.state.name)
    """)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["0", "READY"], result.stderr.decode()


def connect_in_a_child(url: str) -> bool:
    with Client("dev-key", url=url, **FAST) as client:
        client.connect()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            event = client.next_event(0.5)
            if event is not None and event.type == EventType.READY:
                return True
    return False


def test_multiprocessing_children_made_by_fork_run_their_own_clients(gateway):
    server = gateway("--heartbeat", "200", "--heartbeat-grace", "2000")
    url = server.url()
    with Client("dev-key", url=url, **FAST) as parent:
        parent.connect()
        wait_for(parent, EventType.READY)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert pool.map(connect_in_a_child, [url] * 4, chunksize=1) == [True] * 4
        parent.send("after_children", {})
        assert parent.state.name == "READY"


def test_exiting_mid_stream_never_crashes(gateway):
    # 50 interpreters exit while events flow over TLS with zlib, each after a different number of
    # events (from none: the TLS handshake may be under way), the client never closed.
    server = gateway("--tls", "--heartbeat", "200", "--heartbeat-grace", "2000")
    url = server.url("v=1&compression=zlib&fault_flood=100000000")
    for run in range(50):
        result = run_python(f"""
            import sys
            from utilbot_gateway import Client
            client = Client("dev-key", url={url!r}, ca_file={server.ca!r}, compression="zlib")
            client.connect()
            for n, event in enumerate(client.events(timeout=20)):
                if n >= {(run * 37) % 500}:
                    break
            sys.exit(0)
        """)
        assert result.returncode == 0, f"run {run}: status {result.returncode}: {result.stderr.decode()[-2000:]}"

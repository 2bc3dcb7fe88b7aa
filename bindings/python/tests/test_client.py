"""The Python binding end to end against the dev gateway: the behaviours the C tests cover, the
Pythonic surface (context managers, iterators, decorators, exceptions, asyncio) and safety
(GC and exit cleanup, Ctrl-C)."""

from __future__ import annotations

import asyncio
import gc
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from gateway_process import PYTHON_ROOT, Gateway

from utilbot_gateway import (
    AsyncClient,
    Client,
    ClientClosedError,
    EventType,
    InvalidArgumentError,
    InvalidJSONError,
    InvalidStateError,
    State,
    TLSError,
    UbgError,
    WrongKeyError,
    WrongVersionError,
)
from utilbot_gateway.events import Event, EventBatch

FAST = {"reconnect": (0.05, 0.4)}


@pytest.fixture
def gateway():
    started: list[Gateway] = []

    def start(*arguments: str) -> Gateway:
        # 2 s of grace for late beats: these tests are about other things (test_promises.py holds
        # the client to the schedule with none).
        server = Gateway("--heartbeat", "200", "--heartbeat-grace", "2000", *arguments)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def eventually(predicate, timeout: float = 5) -> bool:
    """Polls a condition that settles asynchronously on the server's side."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_for(client: Client, kind: EventType, name: str | None = None, timeout: float = 5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.next_event(deadline - time.monotonic())
        if event is not None and event.type == kind and (name is None or event.name == name):
            return event
    raise AssertionError(f"no {kind.name} {name or ''} within {timeout} s")


def test_identify_heartbeats_and_a_clean_close(gateway):
    server = gateway()
    with Client("dev-key", url=server.url(), **FAST) as client:
        assert client.state == State.IDLE
        client.connect()
        wait_for(client, EventType.READY)
        success = wait_for(client, EventType.DISPATCH, "bot_connect_success")
        assert set(success.data) == {"bot_id"} and success.raw.startswith("{")
        assert client.state == State.READY
        time.sleep(0.7)
        assert client.latency is not None and 0 <= client.latency < 1
        stats = client.stats
        assert stats.messages_out >= 4 and stats.reconnects == 0 and stats.state == State.READY
        client.close()
        kinds = [event.type for event in client.events(timeout=5)]
        assert EventType.CLOSED in kinds and client.finished
    assert eventually(lambda: server.stats()["identified"] == 0)


@pytest.mark.parametrize(("query", "key", "error"), [("v=1", "wrong", WrongKeyError), ("v=2", "dev-key", WrongVersionError)])
def test_fatal_refusals_raise_and_never_retry(gateway, query, key, error):
    server = gateway()
    client = Client(key, url=server.url(query), **FAST)
    with pytest.raises(error) as raised:
        client.run_forever()
    assert raised.value.close_code == (4001 if key == "wrong" else 4000)
    assert "not reconnecting" in raised.value.message
    time.sleep(0.8)
    assert server.stats()["connects_total"] == 1
    assert client.state == State.FAILED
    client.free()


def test_zombie_connection_is_replaced(gateway):
    server = gateway()
    with Client("dev-key", url=server.url("v=1&fault_no_ack_after=2"), **FAST) as client:
        client.connect()
        ready = wait_for(client, EventType.READY)
        started = time.monotonic()
        closed = wait_for(client, EventType.CLOSED)
        assert closed.reconnect and "zombie" in closed.message
        assert time.monotonic() - started < 1.0
        wait_for(client, EventType.READY)
        assert ready is not None


@pytest.mark.parametrize("code", [4006, 1000])
def test_server_closes_reconnect_with_backoff(gateway, code):
    server = gateway()
    with Client("dev-key", url=server.url(), **FAST) as client:
        client.connect()
        wait_for(client, EventType.READY)
        server.command({"cmd": "close_all", "code": code})
        closed = wait_for(client, EventType.CLOSED)
        assert closed.code == code and closed.reconnect
        wait_for(client, EventType.READY)
        assert client.stats.reconnects == 1


def test_gateway_errors_carry_code_message_and_data(gateway):
    server = gateway()
    with Client("dev-key", url=server.url("v=1&fault_error=4005"), **FAST) as client:
        client.connect()
        error = wait_for(client, EventType.ERROR)
        assert (error.code, error.message, error.local) == (4005, "Malformed data.", False)
        assert error.data == {"errors": ["Injected error."], "data": [None]}


def test_handlers_see_global_guild_count_after_send_servers(gateway):
    server = gateway()
    seen: list[dict] = []
    with Client("dev-key", url=server.url(), **FAST) as client:

        @client.on_ready
        def ready(event):
            client.send("send_servers", {"guilds": 7, "guildMembers": 70, "cachedGuildMembers": 7})

        @client.on("GLOBAL_GUILD_COUNT")
        def count(event):
            seen.append(event.data)
            client.close()

        client.run_forever()
    assert seen == [{"guilds": 7, "guildMembers": 70, "cachedGuildMembers": 7}]


def test_handler_exceptions_reach_the_caller(gateway):
    server = gateway()
    with Client("dev-key", url=server.url(), **FAST) as client:

        @client.on("bot_connect_success")
        def explode(event):
            raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError, match="handler failed"):
            client.run_forever()


@pytest.mark.parametrize("style", ["stream", "message"])
def test_both_zlib_styles(gateway, style):
    server = gateway("--echo")
    with Client("dev-key", url=server.url(f"v=1&zlib_style={style}"), compression="zlib", **FAST) as client:
        client.connect()
        wait_for(client, EventType.READY)
        for i in range(10):
            client.send("probe", {"i": i, "text": "zlib " * 20})
        echoes = [wait_for(client, EventType.DISPATCH, "ECHO").data for _ in range(10)]
        assert [e["d"]["i"] for e in echoes] == list(range(10))
        assert client.stats.bytes_in > 0


def test_wss_with_the_dev_ca_and_refused_without(gateway):
    server = gateway("--tls")
    with Client("dev-key", url=server.url(), ca_file=server.ca, **FAST) as client:
        client.connect()
        wait_for(client, EventType.READY)
    with Client("dev-key", url=server.url(), **FAST) as client:
        client.connect()
        closed = wait_for(client, EventType.CLOSED)
        assert isinstance(closed.error, TLSError)
        assert "certificate verification failed" in closed.error.message
        assert closed.error.code.name == "ETLS"


def test_sends_before_ready_arrive_after_ready_in_order(gateway):
    server = gateway("--echo")
    with Client("dev-key", url=server.url(), **FAST) as client:
        client.connect()
        for i in range(5):
            client.send("early", {"n": i})
        wait_for(client, EventType.READY)
        assert [wait_for(client, EventType.DISPATCH, "ECHO").data["d"]["n"] for _ in range(5)] == list(range(5))


def test_bursts_arrive_whole_and_in_order_through_batched_pulls(gateway):
    # 600 echoes come out of the library in batches of up to 256; every event, its name, its
    # text (with non-ASCII) and its decoded data must survive the copy, in order.
    server = gateway("--echo")
    with Client("dev-key", url=server.url(), **FAST) as client:
        client.connect()
        wait_for(client, EventType.READY)
        for i in range(600):
            client.send("burst", {"i": i, "text": f"é{i}✓"})
        seen = []
        for event in client.events(timeout=10):
            if event.type == EventType.DISPATCH and event.name == "ECHO":
                d = event.data["d"]
                assert d == {"i": len(seen), "text": f"é{len(seen)}✓"}
                assert event.raw is not None and event.code is None and not event.local
                seen.append(d["i"])
                if len(seen) == 600:
                    break
        assert seen == list(range(600))
        assert client.stats.queued_events == 0


class Injected(Exception):
    pass


@pytest.mark.parametrize("exception", [KeyboardInterrupt, Injected])
@pytest.mark.parametrize("fail_at", [[10], [10, 11, 200], [256, 257]])
def test_an_exception_while_copying_a_batch_loses_no_event(gateway, monkeypatch, exception, fail_at):
    # Ctrl-C (or any exception) while a pulled batch is being copied out: the events not yet
    # copied stay for the next pull, which hands them out before asking the library for more.
    # fail_at counts calls of the DISPATCH copy, so the retried event counts again.
    count = 300
    server = gateway("--echo")
    with Client("dev-key", url=server.url(), **FAST) as client:
        client.connect()
        wait_for(client, EventType.READY)
        wait_for(client, EventType.DISPATCH, "bot_connect_success")
        for n in range(count):
            client.send("numbered", {"n": n})
        # Every echo waits in the library, so the first pull takes a full batch.
        assert eventually(lambda: client.stats.queued_events >= count, timeout=30)

        copy = Event._make
        calls = 0

        def flaky(*fields):
            nonlocal calls
            calls += 1
            if calls in fail_at:
                raise exception("injected")
            return copy(*fields)

        monkeypatch.setattr(Event, "_make", staticmethod(flaky))
        seen: list[int] = []
        raised = 0
        deadline = time.monotonic() + 30
        while len(seen) < count and time.monotonic() < deadline:
            try:
                event = client.next_event(deadline - time.monotonic())
            except exception:
                raised += 1
                continue
            if event is not None and event.type == EventType.DISPATCH and event.name == "ECHO":
                n = event.data["d"]["n"]
                assert n == len(seen), f"echo {n} after {seen[-3:]}"
                seen.append(n)
        assert seen == list(range(count))
        assert raised == len(fail_at)
        assert EventBatch.CAPACITY < count  # the failures fall inside full batches


def test_bad_input_raises_typed_errors():
    client = Client("dev-key", url="ws://127.0.0.1:9/")
    with pytest.raises(InvalidStateError):
        client.send("x", {})
    client.connect()
    with pytest.raises(InvalidArgumentError, match="JSON object"):
        client.send("x", [1, 2])
    with pytest.raises(InvalidArgumentError, match="identify"):
        client.send("identify", {})
    with pytest.raises(InvalidStateError):
        client.connect()
    with pytest.raises(ValueError):
        client.close(1005)
    client.free()
    with pytest.raises(ClientClosedError):
        client.send("x", {})
    with pytest.raises(InvalidArgumentError, match="scheme"):
        Client("k", url="http://example.com/")
    with pytest.raises(InvalidArgumentError):
        Client("")
    with pytest.raises(TypeError):
        Client(b"bytes")  # type: ignore[arg-type]
    assert issubclass(InvalidJSONError, UbgError)


def test_a_selector_waits_on_the_client_itself(gateway):
    # fileno() is a method, so the client is a file object for selectors (and select.select).
    server = gateway()
    with Client("dev-key", url=server.url(), **FAST) as client, selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, "bot")
        assert selector.get_key(client).fd == client.fileno()
        client.connect()
        kinds = []
        deadline = time.monotonic() + 10
        while EventType.READY not in kinds and time.monotonic() < deadline:
            for key, _ in selector.select(deadline - time.monotonic()):
                assert key.fileobj is client and key.data == "bot"
                while (event := client.next_event(0)) is not None:
                    kinds.append(event.type)
        assert EventType.READY in kinds
        selector.unregister(client)


def test_asyncio_several_clients_on_one_loop(gateway):
    server = gateway("--echo")

    async def bot(index: int) -> list[int]:
        async with AsyncClient("dev-key", url=server.url(), **FAST) as client:
            numbers = []
            async for event in client:
                if event.type == EventType.READY:
                    for n in range(3):
                        await client.send("count", {"bot": index, "n": n})
                elif event.name == "ECHO":
                    numbers.append(event.data["d"]["n"])
                    if len(numbers) == 3:
                        await client.close()
            assert client.finished and client.state == State.CLOSED
            return numbers

    async def main() -> list[list[int]]:
        return await asyncio.wait_for(asyncio.gather(*(bot(i) for i in range(5))), 20)

    assert asyncio.run(main()) == [[0, 1, 2]] * 5
    assert eventually(lambda: server.stats()["connections"] == 0)


async def ready(client: AsyncClient) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        event = await client.next_event(max(0.0, deadline - asyncio.get_running_loop().time()))
        assert event is not None, "no READY within 10 s"
        if event.type == EventType.READY:
            return


def test_asyncio_iterating_while_aexit_waits_for_the_close(gateway):
    # Two coroutines wait on one client: a task in `async for`, and __aexit__ draining up to
    # CLOSED. Both are woken by the client's one reader, and both finish.
    server = gateway()

    async def main() -> list[EventType]:
        async with AsyncClient("dev-key", url=server.url(), **FAST) as client:
            await ready(client)

            async def iterate() -> list[EventType]:
                return [event.type async for event in client]

            iterating = asyncio.create_task(iterate())
            await asyncio.sleep(0)  # it runs up to its wait on the descriptor
            assert not iterating.done()
        assert client.finished
        return await asyncio.wait_for(iterating, 15)

    kinds = asyncio.run(asyncio.wait_for(main(), 30))
    assert EventType.READY not in kinds
    assert eventually(lambda: server.stats()["connections"] == 0)


def test_asyncio_two_iterators_share_the_events_and_both_end(gateway):
    server = gateway("--echo")
    count = 200

    async def main() -> list[list[int]]:
        async with AsyncClient("dev-key", url=server.url(), **FAST) as client:
            await ready(client)
            seen: list[int] = []

            async def iterate() -> list[int]:
                mine = []
                async for event in client:
                    if event.type == EventType.DISPATCH and event.name == "ECHO":
                        mine.append(event.data["d"]["n"])
                        seen.append(mine[-1])
                return mine

            tasks = [asyncio.create_task(iterate()) for _ in range(2)]
            await asyncio.sleep(0)  # both wait on the descriptor
            for n in range(count):
                await client.send("numbered", {"n": n})
            deadline = asyncio.get_running_loop().time() + 20
            while len(seen) < count and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            await client.close()
            return await asyncio.wait_for(asyncio.gather(*tasks), 15)

    first, second = asyncio.run(asyncio.wait_for(main(), 40))
    assert sorted(first + second) == list(range(count))
    assert first == sorted(first) and second == sorted(second)


def test_asyncio_free_ends_every_wait(gateway):
    server = gateway()

    async def main() -> list[object]:
        client = AsyncClient("dev-key", url=server.url(), **FAST)
        client.connect()
        await ready(client)

        async def iterate() -> int:
            return len([event async for event in client])

        tasks = [asyncio.create_task(iterate()), asyncio.create_task(client.next_event())]
        await asyncio.sleep(0)
        assert not any(task.done() for task in tasks)
        client.free()
        client.free()  # idempotent
        return await asyncio.wait_for(asyncio.gather(*tasks), 15)

    count, event = asyncio.run(asyncio.wait_for(main(), 30))
    assert isinstance(count, int) and (event is None or event.type != EventType.READY)
    assert eventually(lambda: server.stats()["connections"] == 0)


def test_asyncio_a_readable_client_nobody_waits_on_does_not_spin_the_loop(gateway):
    # The reader stays registered between waits; when it fires with nobody waiting it steps
    # aside until the next wait, or a descriptor that stays readable would busy-loop.
    server = gateway("--echo")
    count = 50

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        calls = 0
        add_reader = loop.add_reader

        def counting_add_reader(fd, callback, *args):
            def counted(*callback_args):
                nonlocal calls
                calls += 1
                callback(*callback_args)

            return add_reader(fd, counted, *args)

        loop.add_reader = counting_add_reader  # type: ignore[method-assign]
        async with AsyncClient("dev-key", url=server.url(), **FAST) as client:
            await ready(client)
            before = calls
            for n in range(count):
                await client.send("numbered", {"n": n})
            deadline = loop.time() + 20
            while client.stats.queued_events < count and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert client.stats.queued_events >= count
            await asyncio.sleep(0.3)
            assert calls - before <= 1
            numbers = []
            while len(numbers) < count:
                event = await client.next_event(10)
                assert event is not None
                if event.type == EventType.DISPATCH and event.name == "ECHO":
                    numbers.append(event.data["d"]["n"])
            return numbers

    assert asyncio.run(asyncio.wait_for(main(), 40)) == list(range(count))


def run_python(code: str, timeout: float = 20, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, timeout=timeout, **kwargs)


def test_garbage_collection_and_interpreter_exit_clean_up(gateway):
    server = gateway()
    result = run_python(f"""
        import gc
        from utilbot_gateway import Client, EventType
        url = {server.url()!r}
        for _ in range(20):
            client = Client("dev-key", url=url)
            client.connect()
            client.next_event(0.05)
            del client          # never closed: the finalizer frees it
        gc.collect()
        alive = Client("dev-key", url=url)  # still connected at exit
        alive.connect()
        while alive.next_event(5).type != EventType.READY:
            pass
        print("exiting")
    """)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "exiting"
    assert eventually(lambda: server.stats()["connections"] == 0)


def test_ctrl_c_interrupts_a_blocking_wait_promptly():
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import signal, sys
            # A suite started in the background (nohup, `cmd &`) passes SIGINT on ignored, and
            # Python then installs no handler for it: ask for the usual one.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            from utilbot_gateway import Client
            client = Client("k", url="ws://127.0.0.1:9/", reconnect=(5, 10))
            print("waiting", flush=True)
            try:
                client.next_event()   # blocks: nothing will come for seconds
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(3)
        """)],
        env={**os.environ, "PYTHONPATH": str(PYTHON_ROOT)},
        stdout=subprocess.PIPE,
    )
    assert process.stdout.readline() == b"waiting\n"
    time.sleep(0.3)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(5) == 3
    assert process.stdout.read() == b"interrupted\n"
    assert time.monotonic() - sent < 1.0

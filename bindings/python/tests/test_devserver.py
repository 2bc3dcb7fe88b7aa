"""Tests of the dev gateway (utilbot_gateway.devserver).

Most tests start the server as a subprocess, the way the library's end-to-end tests do, and talk
to it with websockets' client and through its stdin/stdout control channel. The last section
tests the pure modules directly. Every test runs under a timeout (conftest.run).

Run: cd /work/wt-devserver && PYTHONPATH=bindings/python .venv/bin/python3 -m pytest -q bindings/python/tests
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from cryptography import x509
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import (
    IDENTIFY,
    PYTHON_ROOT,
    RECV_TIMEOUT,
    DevServer,
    Inflater,
    hello,
    identify,
    nothing_within,
    recv_json,
    recv_raw,
    run,
    send_json,
    until_closed,
)
from utilbot_gateway.devserver import protocol
from utilbot_gateway.devserver.certificates import make_certificates, server_context
from utilbot_gateway.devserver.compression import MessageEncoder, SplitEncoder, StreamEncoder
from utilbot_gateway.devserver.counts import Aggregate, ServerCounts, parse_report
from utilbot_gateway.devserver.faults import Faults, FaultParameterError, parse_faults
from utilbot_gateway.devserver.heartbeat import StrictSchedule, late_ms, margin_ms
from utilbot_gateway.devserver.params import ParameterError, parse_request_target
from utilbot_gateway.devserver.protocol import GatewayError

DOCUMENTED_4005 = (
    '{"op":-1,"e":4005,"d":{"errors":["Type not provided.","Key not provided."],"data":[null,null]},'
    '"m":"Malformed data."}'
)


def error(code: int, message: str, errors: list | None = None, data: list | None = None) -> dict:
    payload: dict = {"op": -1, "e": code}
    if errors is not None:
        payload["d"] = {"errors": errors, "data": data}
    payload["m"] = message
    return payload


# =============================================================================================
# Start-up line, TLS


def test_first_line_for_ws(server: DevServer) -> None:
    port = server.info["port"]
    assert server.first_line == f'{{"url": "ws://127.0.0.1:{port}/", "port": {port}}}\n'.encode()
    assert 0 < port < 65536

    async def body() -> None:
        async with server.bot() as ws:
            assert await recv_json(ws) == {"op": 5, "d": {"heartbeat": 5000}}
            # No permessage-deflate: the gateway compresses with zlib itself, or not at all.
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None

    run(body())


def test_first_line_for_tls_and_the_ca_verifies_localhost(start_server) -> None:
    server = start_server("--tls")
    port = server.info["port"]
    assert set(server.info) == {"url", "port", "ca"}
    assert server.info["url"] == f"wss://localhost:{port}/"
    ca = Path(server.info["ca"])
    assert ca.is_absolute() and ca.name == "ca.pem"
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    cert = x509.load_pem_x509_certificate((ca.parent / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(map(str, names.get_values_for_type(x509.DNSName))) == ["localhost"]
    assert sorted(map(str, names.get_values_for_type(x509.IPAddress))) == ["127.0.0.1", "::1"]

    async def body() -> None:
        trusting = ssl.create_default_context(cafile=str(ca))  # verifies the chain and the host name
        async with server.bot(ssl=trusting) as ws:
            assert await recv_json(ws) == {"op": 5, "d": {"heartbeat": 5000}}
            assert ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        # The IP address SAN: the same CA verifies wss://127.0.0.1 too.
        async with connect(f"wss://127.0.0.1:{port}/?v=1", ssl=trusting, close_timeout=1) as ws:
            await hello(ws)
        tls12 = ssl.create_default_context(cafile=str(ca))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        async with server.bot(ssl=tls12) as ws:
            await hello(ws)
            assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.2"
        # Without the CA the certificate is not trusted.
        with pytest.raises(ssl.SSLCertVerificationError):
            async with server.bot(ssl=ssl.create_default_context()):
                pass

    run(body())
    assert server.stop() == 0
    assert not ca.parent.exists(), "the temporary certificate directory outlived the server"


def test_certdir_is_kept_and_its_ca_reused(start_server, tmp_path: Path) -> None:
    certdir = tmp_path / "certs"
    first = start_server("--tls", "--certdir", str(certdir))
    assert first.info["ca"] == str((certdir / "ca.pem").resolve())
    assert first.stop() == 0
    files = {path.name for path in certdir.iterdir()}
    assert files == {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"}
    assert (certdir / "ca-key.pem").stat().st_mode & 0o077 == 0
    assert (certdir / "server-key.pem").stat().st_mode & 0o077 == 0
    ca_before = (certdir / "ca.pem").read_bytes()
    server_before = (certdir / "server.pem").read_bytes()

    second = start_server("--tls", "--certdir", str(certdir))
    assert (certdir / "ca.pem").read_bytes() == ca_before  # trusted once, trusted again
    assert (certdir / "server.pem").read_bytes() != server_before  # issued afresh

    async def body() -> None:
        async with second.bot(ssl=ssl.create_default_context(cafile=second.info["ca"])) as ws:
            await hello(ws)

    run(body())


def test_tls_context_refuses_below_tls_1_2(tmp_path: Path) -> None:
    context = server_context(make_certificates(tmp_path))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


# =============================================================================================
# Hello and heartbeats


def test_hello_spellings(start_server) -> None:
    standard = start_server("--heartbeat", "1234")
    misspelled = start_server("--heartbeat", "1234", "--hello-spelling", "hearbeat")

    async def body() -> None:
        async with standard.bot() as ws:
            assert await recv_raw(ws) == '{"op":5,"d":{"heartbeat":1234}}'
        async with misspelled.bot() as ws:
            assert await recv_raw(ws) == '{"op":5,"d":{"hearbeat":1234}}'
        # Per connection, overriding the server's default.
        async with standard.bot("v=1&hello_spelling=hearbeat") as ws:
            assert await recv_json(ws) == {"op": 5, "d": {"hearbeat": 1234}}
        async with misspelled.bot("v=1&hello_spelling=heartbeat") as ws:
            assert await recv_json(ws) == {"op": 5, "d": {"heartbeat": 1234}}

    run(body())


def test_heartbeats_are_acknowledged_before_and_after_identify(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            for _ in range(3):
                await send_json(ws, {"op": 10})
                assert await recv_raw(ws) == '{"op":11}'
            await identify(ws)
            await send_json(ws, {"op": 10, "d": None})  # extra fields do not matter
            assert await recv_json(ws) == {"op": 11}
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["heartbeats_total"] == 4
        assert stats["acks_total"] == 4

    run(body())


def test_silence_closes_with_4006_after_interval_plus_grace(start_server) -> None:
    server = start_server("--heartbeat", "200")  # grace: 50 ms

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            started = time.monotonic()
            messages, code, reason = await until_closed(ws)
            elapsed = time.monotonic() - started
        assert messages == [error(4006, "No heartbeat received.")]
        assert (code, reason) == (4006, "No heartbeat received.")
        assert 0.2 <= elapsed < 1.5
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["closes_by_code"] == {"4006": 1}

    run(body())


def test_regular_heartbeats_keep_the_connection(start_server) -> None:
    server = start_server("--heartbeat", "200")

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            for _ in range(8):  # 1.2 s, far beyond one interval + grace
                await asyncio.sleep(0.15)
                await send_json(ws, {"op": 10})
                assert await recv_json(ws) == {"op": 11}

    run(body())


def test_heartbeat_grace_flag(start_server) -> None:
    server = start_server("--heartbeat", "200", "--heartbeat-grace", "600")  # deadline 800 ms

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await asyncio.sleep(0.5)  # late for the interval, in time with the grace
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}
            started = time.monotonic()
            messages, code, _ = await until_closed(ws)
            elapsed = time.monotonic() - started
        assert messages == [error(4006, "No heartbeat received.")]
        assert code == 4006
        assert 0.75 <= elapsed < 2.0

    run(body())


async def beat_at(ws, at: float) -> None:
    """Sends a heartbeat at loop time `at` (at once when that is past)."""
    await asyncio.sleep(max(0.0, at - asyncio.get_running_loop().time()))
    await send_json(ws, {"op": 10})


def test_strict_heartbeat_passes_a_bot_beating_slightly_early(start_server) -> None:
    server = start_server("--heartbeat", "500")
    interval, early = 0.5, 0.2  # each beat 200 ms before its deadline, as the bot's clock sees it

    async def body() -> None:
        async with server.bot("v=1&strict_heartbeat=1") as ws:
            await hello(ws)
            hello_at = asyncio.get_running_loop().time()
            await send_json(ws, {"op": 10})  # the first beat, at once: slot 0; the next is due by H + 500 ms
            assert await recv_json(ws) == {"op": 11}
            await identify(ws)
            for slot in range(1, 12):  # due by H + slot * 500 ms (it covers that slot); sent 200 ms before
                await beat_at(ws, hello_at + slot * interval - early)
                assert await recv_json(ws) == {"op": 11}
            connections = (await server.command({"cmd": "connections"}))["connections"]
            assert [c["strict_heartbeat"] for c in connections] == [True]
            stats = await server.stats()
        assert stats["heartbeats_total"] == stats["acks_total"] == 12
        assert stats["closes_by_code"] == {}
        assert stats["strict_heartbeat_beats_total"] == 12
        assert stats["strict_heartbeat_late_closes_total"] == 0
        assert stats["strict_heartbeat_last_late_ms"] is None
        assert 0 <= stats["strict_heartbeat_min_margin_ms"] <= 500
        [record] = stats["strict_heartbeat_connections"]
        assert (record["conn"], record["beats"], record["closed"], record["late_ms"]) == (1, 12, None, None)
        assert record["min_margin_ms"] == stats["strict_heartbeat_min_margin_ms"]
        assert 0 <= record["last_margin_ms"] <= 500

    run(body(), timeout=40)


def test_strict_heartbeat_closes_a_bot_one_beat_late_with_4006(start_server) -> None:
    server = start_server("--heartbeat", "500", "--strict-heartbeat")  # for every connection
    interval = 0.5

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            hello_at = asyncio.get_running_loop().time()
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}
            for slot in (1, 2):  # in time: by H + 500 ms and by H + 1000 ms
                await beat_at(ws, hello_at + slot * interval - 0.2)
                assert await recv_json(ws) == {"op": 11}
            # The next beat is due by H + 1500 ms; this one comes 200 ms after that (if the
            # connection is still open then: the watchdog fires at the deadline itself).
            try:
                await beat_at(ws, hello_at + 3 * interval + 0.2)
            except ConnectionClosed:
                pass
            messages, code, reason = await until_closed(ws, timeout=10)
            closed_after = asyncio.get_running_loop().time() - hello_at
        assert messages == [error(4006, "No heartbeat received.")]
        assert (code, reason) == (4006, "No heartbeat received.")
        assert closed_after >= 3 * interval - 0.2  # not before the deadline (H is a bit before hello_at)
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["closes_by_code"] == {"4006": 1}
        assert stats["acks_total"] == 3
        assert stats["strict_heartbeat_late_closes_total"] == 1
        [record] = stats["strict_heartbeat_connections"]
        # Usually the watchdog fires first ("missed"); a server too busy to fire it before the
        # late beat is read judges the beat itself ("late", its lateness, a negative margin).
        assert record["closed"] in ("missed", "late"), record
        assert record["late_ms"] == stats["strict_heartbeat_last_late_ms"] >= 0
        if record["closed"] == "late":
            assert record["beats"] == 4 and record["min_margin_ms"] == -record["late_ms"]
        else:
            assert record["beats"] == 3 and record["min_margin_ms"] >= 0
        # strict_heartbeat=0 turns it off for one connection; the normal watchdog then applies.
        async with server.bot("v=1&strict_heartbeat=0") as ws:
            await hello(ws)
            connections = (await server.command({"cmd": "connections"}))["connections"]
            assert [c["strict_heartbeat"] for c in connections] == [False]

    run(body(), timeout=40)


# =============================================================================================
# Version, compression parameter, errors


@pytest.mark.parametrize("query", ["", "compression=zlib&x=1", "v=2", "v=", "v=1.0", "v=01&v=1"])
def test_wrong_or_missing_version_is_4000(server: DevServer, query: str) -> None:
    async def body() -> None:
        async with server.bot(query) as ws:
            messages, code, reason = await until_closed(ws)
        if "compression=zlib" in query:  # compression is on: so is the error
            assert len(messages) == 1 and isinstance(messages[0], bytes)
            messages = [json.loads(zlib.decompressobj().decompress(messages[0]))]
        assert messages == [error(4000, "Wrong Version.")]  # no Hello before it
        assert (code, reason) == (4000, "Wrong Version.")

    run(body())


@pytest.mark.parametrize("value", ["gzip", "", "ZLIB"])
def test_unknown_compression_is_4000(server: DevServer, value: str) -> None:
    async def body() -> None:
        async with server.bot(f"v=1&compression={value}") as ws:
            messages, code, reason = await until_closed(ws)
        assert messages == [error(4000, "Unknown compression.")]
        assert (code, reason) == (4000, "Unknown compression.")

    run(body())


def test_unknown_parameters_are_ignored(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&encoding=zlib&foo=bar") as ws:
            assert await recv_raw(ws) == '{"op":5,"d":{"heartbeat":5000}}'  # text: encoding= is not compression=
            await identify(ws)

    run(body())


def test_wrong_key_is_4001(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, {"op": 1, "t": "identify", "d": {"type": "bot", "key": "nope"}})
            messages, code, reason = await until_closed(ws)
        assert messages == [error(4001, "Wrong auth key.")]
        assert (code, reason) == (4001, "Wrong auth key.")

    run(body())


def test_key_flag_replaces_the_default_key(start_server) -> None:
    server = start_server("--key", "alpha", "--key", "beta")

    async def body() -> None:
        for key in ("alpha", "beta"):
            async with server.bot() as ws:
                await hello(ws)
                await identify(ws, key)
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, IDENTIFY)  # dev-key is no longer accepted
            messages, code, _ = await until_closed(ws)
        assert (messages, code) == ([error(4001, "Wrong auth key.")], 4001)

    run(body())


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"op": 1, "t": "identify", "d": {}}, DOCUMENTED_4005),
        ({"op": 1, "t": "identify"}, DOCUMENTED_4005),
        ({"op": 1, "t": "identify", "d": None}, DOCUMENTED_4005),
        ({"op": 1, "t": "identify", "d": {"type": None, "key": None}}, DOCUMENTED_4005),
        (
            {"op": 1, "t": "identify", "d": {"type": "bot"}},
            '{"op":-1,"e":4005,"d":{"errors":["Key not provided."],"data":[null]},"m":"Malformed data."}',
        ),
        (
            {"op": 1, "t": "identify", "d": {"key": "dev-key"}},
            '{"op":-1,"e":4005,"d":{"errors":["Type not provided."],"data":[null]},"m":"Malformed data."}',
        ),
        (
            {"op": 1, "t": "identify", "d": {"type": 7, "key": ["k"]}},
            '{"op":-1,"e":4005,"d":{"errors":["Type must be a string.","Key must be a string."],"data":[7,["k"]]},'
            '"m":"Malformed data."}',
        ),
        (
            {"op": 1, "d": {"type": "bot", "key": "dev-key"}},
            '{"op":-1,"e":4005,"d":{"errors":["Event name not provided."],"data":[null]},"m":"Malformed data."}',
        ),
        (
            {"op": 1, "t": 5, "d": [1]},
            '{"op":-1,"e":4005,"d":{"errors":["Event name must be a string.","Data must be an object."],'
            '"data":[5,[1]]},"m":"Malformed data."}',
        ),
        (
            {"op": 1, "t": "identify", "d": "bot"},
            '{"op":-1,"e":4005,"d":{"errors":["Data must be an object."],"data":["bot"]},"m":"Malformed data."}',
        ),
    ],
)
def test_malformed_data_is_4005_in_the_documented_shape(server: DevServer, payload: dict, expected: str) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, payload)
            assert await recv_raw(ws) == expected
            messages, code, reason = await until_closed(ws)
        assert (messages, code, reason) == ([], 4005, "Malformed data.")

    run(body())


def test_wrong_identify_type_is_4007(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, {"op": 1, "t": "identify", "d": {"type": "website", "key": "dev-key"}})
            messages, code, reason = await until_closed(ws)
        assert messages == [error(4007, "Wrong identify.", ["Unsupported type."], ["website"])]
        assert (code, reason) == (4007, "Wrong identify.")

    run(body())


def test_second_identify_is_4007(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await identify(ws)
            await send_json(ws, IDENTIFY)
            messages, code, _ = await until_closed(ws)
        assert messages == [error(4007, "Wrong identify.", ["Already identified."], [None])]
        assert code == 4007

    run(body())


@pytest.mark.parametrize("payload", [{}, {"t": "identify", "d": {}}, {"op": None}])
def test_no_opcode_is_4003(server: DevServer, payload: dict) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, payload)
            messages, code, reason = await until_closed(ws)
        assert messages == [error(4003, "No opcode provided.")]
        assert (code, reason) == (4003, "No opcode provided.")

    run(body())


def test_nothing_is_handled_after_a_fatal_error(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await ws.send("{}")  # 4003; what follows in the same breath is not answered, only counted
            await send_json(ws, {"op": 10})
            await send_json(ws, IDENTIFY)
            await send_json(ws, {"op": 1, "t": "late", "d": {}})
            messages, code, _ = await until_closed(ws)
        assert (messages, code) == ([error(4003, "No opcode provided.")], 4003)
        # Events that arrive while the gateway closes are recorded (so every send is accounted
        # for), the key redacted, but never handled: no identify, no heartbeat counted.
        received = await server.command({"cmd": "received"})
        assert received["received"] == [
            {"conn": 1, "op": 1, "t": "identify", "d": {"type": "bot", "key": "***"}},
            {"conn": 1, "op": 1, "t": "late", "d": {}},
        ]
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert (stats["heartbeats_total"], stats["identifies_total"]) == (0, 0)

    run(body())


@pytest.mark.parametrize("op", [0, 5, 11, -1, 99, 2, "1", "10", 1.0, 10.5, True, [1], {"op": 1}])
def test_wrong_opcode_is_4004(server: DevServer, op: object) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await identify(ws)
            await send_json(ws, {"op": op, "t": "identify", "d": {}})
            messages, code, reason = await until_closed(ws)
        assert messages == [error(4004, "Wrong opcode.")]
        assert (code, reason) == (4004, "Wrong opcode.")

    run(body())


def test_envelope_errors_apply_before_identify_too(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, {"op": 11})
            messages, code, _ = await until_closed(ws)
        assert (messages, code) == ([error(4004, "Wrong opcode.")], 4004)

    run(body())


def test_non_json_is_dropped_and_the_connection_lives_on(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            for text in ["hello", "{", "[1,2]", "42", '"op"', "null", "NaN", '{"op":NaN}', "", " "]:
                await ws.send(text)
            await ws.send(b'{"op":10}')  # binary frames are dropped too
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}  # the first answer: nothing else was answered
            await identify(ws)
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["heartbeats_total"] == 1
        assert stats["closes_by_code"] == {}
        assert stats["client_closes_by_code"] == {"1000": 1}

    run(body())


def test_events_before_identify_are_ignored(start_server) -> None:
    server = start_server("--echo")

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, {"op": 1, "t": "send_servers", "d": {"guilds": 5}})
            await send_json(ws, {"op": 1, "t": "custom", "d": {"x": 1}})
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}  # no GLOBAL_GUILD_COUNT, no ECHO before it
            await identify(ws)
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}
            stats = await server.stats()
            assert stats["global"] == {"guilds": 0, "guildMembers": 0, "cachedGuildMembers": 0}
            assert stats["events_by_name"] == {"custom": 1, "identify": 1, "send_servers": 1}

    run(body())


def test_bot_connect_success(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as first, server.bot() as second:
            await hello(first)
            await hello(second)
            await send_json(first, IDENTIFY)
            raw = await recv_raw(first)
            success = json.loads(raw)
            assert raw == '{"op":0,"t":"bot_connect_success","d":{"bot_id":"%s"}}' % success["d"]["bot_id"]
            assert re.fullmatch(r"[0-9a-f]{16}", success["d"]["bot_id"])
            other = await identify(second)
            assert other["d"]["bot_id"] != success["d"]["bot_id"]
            connections = (await server.command({"cmd": "connections"}))["connections"]
            assert [(c["conn"], c["bot_id"], c["identified"]) for c in connections] == [
                (1, success["d"]["bot_id"], True),
                (2, other["d"]["bot_id"], True),
            ]

    run(body())


# =============================================================================================
# send_servers and GLOBAL_GUILD_COUNT


def global_count(guilds: int, members: int, cached: int) -> dict:
    return {
        "op": 0,
        "t": "GLOBAL_GUILD_COUNT",
        "d": {"guilds": guilds, "guildMembers": members, "cachedGuildMembers": cached},
    }


def test_send_servers_is_aggregated_across_bots(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as a:
            await hello(a)
            await identify(a)
            async with server.bot() as b:
                await hello(b)
                await identify(b)
                report = {"guilds": 3, "guildMembers": 10, "cachedGuildMembers": 5}
                await send_json(a, {"op": 1, "t": "send_servers", "d": report})
                assert await recv_raw(a) == (
                    '{"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":3,"guildMembers":10,"cachedGuildMembers":5}}'
                )
                assert await recv_json(b) == global_count(3, 10, 5)
                # The aliases, an array of guilds, and fields the gateway does not know.
                report = {"guilds": ["g1", "g2"], "users": 7, "cachedUsers": 1, "shard": 3}
                await send_json(b, {"op": 1, "t": "send_servers", "d": report})
                assert await recv_json(a) == global_count(5, 17, 6)
                assert await recv_json(b) == global_count(5, 17, 6)
                # A new report replaces the bot's previous one.
                await send_json(a, {"op": 1, "t": "send_servers", "d": {"guilds": 1, "guildMembers": 1}})
                assert await recv_json(a) == global_count(3, 8, 1)
                assert await recv_json(b) == global_count(3, 8, 1)
                assert (await server.stats())["global"] == global_count(3, 8, 1)["d"]
            # b is gone: its share drops out, and a hears about it.
            assert await recv_json(a) == global_count(1, 1, 0)
            assert (await server.stats())["global"] == global_count(1, 1, 0)["d"]
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["global"] == {"guilds": 0, "guildMembers": 0, "cachedGuildMembers": 0}
        assert stats["events_by_name"] == {"identify": 2, "send_servers": 3}

    run(body())


def test_unidentified_bots_get_no_global_count(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as reporter, server.bot() as lurker:
            await hello(reporter)
            await hello(lurker)
            await identify(reporter)
            await send_json(reporter, {"op": 1, "t": "send_servers", "d": {"guilds": 2}})
            assert await recv_json(reporter) == global_count(2, 0, 0)
            await send_json(lurker, {"op": 10})
            assert await recv_json(lurker) == {"op": 11}

    run(body())


@pytest.mark.parametrize(
    ("data", "errors", "offending"),
    [
        (None, ["Data not provided."], [None]),
        ({"guilds": "3"}, ["guilds must be a non-negative integer or an array."], ["3"]),
        (
            {"guilds": -1, "users": 1.5},
            ["guilds must be a non-negative integer or an array.", "users must be a non-negative integer."],
            [-1, 1.5],
        ),
        ({"cachedGuildMembers": True}, ["cachedGuildMembers must be a non-negative integer."], [True]),
    ],
)
def test_bad_send_servers_is_4005(server: DevServer, data: object, errors: list, offending: list) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await identify(ws)
            payload = {"op": 1, "t": "send_servers"}
            if data is not None:
                payload["d"] = data
            await send_json(ws, payload)
            messages, code, _ = await until_closed(ws)
        assert messages == [error(4005, "Malformed data.", errors, offending)]
        assert code == 4005

    run(body())


# =============================================================================================
# Echo


def test_echo_answers_other_events_in_order(start_server) -> None:
    server = start_server("--echo")

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await identify(ws)
            await send_json(ws, {"op": 1, "t": "first", "d": {"n": 1, "s": "héllo ✓"}})
            await send_json(ws, {"op": 1, "t": "second"})
            await send_json(ws, {"op": 1, "t": "send_servers", "d": {"guilds": 1}})  # not echoed
            await send_json(ws, {"op": 1, "t": "third", "d": {}})
            assert await recv_raw(ws) == '{"op":0,"t":"ECHO","d":{"t":"first","d":{"n":1,"s":"héllo ✓"}}}'
            assert await recv_json(ws) == {"op": 0, "t": "ECHO", "d": {"t": "second", "d": None}}
            assert await recv_json(ws) == global_count(1, 0, 0)
            assert await recv_json(ws) == {"op": 0, "t": "ECHO", "d": {"t": "third", "d": {}}}

    run(body())


def test_without_echo_other_events_are_ignored(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await identify(ws)
            await send_json(ws, {"op": 1, "t": "custom", "d": {"x": 1}})
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}

    run(body())


# =============================================================================================
# zlib


def test_zlib_stream_style(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&compression=zlib") as ws:
            inflate = Inflater()
            frame = await recv_raw(ws)
            assert frame[:1] == b"\x78"  # a zlib header (RFC 1950), not raw deflate
            assert inflate(frame) == {"op": 5, "d": {"heartbeat": 5000}}
            await send_json(ws, {"op": 10})
            assert inflate(await recv_raw(ws)) == {"op": 11}
            await send_json(ws, IDENTIFY)
            assert inflate(await recv_raw(ws))["t"] == "bot_connect_success"
            await send_json(ws, {"op": 1, "t": "send_servers", "d": {"guilds": 4}})
            following = await recv_raw(ws)
            assert inflate(following) == global_count(4, 0, 0)
            # It really is one stream: this message does not inflate on its own.
            with pytest.raises(zlib.error):
                zlib.decompress(following)
        async with server.bot("v=1&compression=zlib&zlib_style=stream") as ws:
            assert Inflater()(await recv_raw(ws))["op"] == 5

    run(body())


def test_zlib_message_style(start_server) -> None:
    by_flag = start_server("--zlib-style", "message")
    by_default = start_server()

    async def body() -> None:
        for server, query in (
            (by_flag, "v=1&compression=zlib"),
            (by_default, "v=1&compression=zlib&zlib_style=message"),
        ):
            async with server.bot(query) as ws:
                frames = [await recv_raw(ws)]
                await send_json(ws, {"op": 10})
                frames.append(await recv_raw(ws))
                await send_json(ws, IDENTIFY)
                frames.append(await recv_raw(ws))
            assert all(isinstance(frame, bytes) for frame in frames)
            decoded = [json.loads(zlib.decompress(frame)) for frame in frames]  # each a whole stream
            assert decoded[:2] == [{"op": 5, "d": {"heartbeat": 5000}}, {"op": 11}]
            assert decoded[2]["t"] == "bot_connect_success"
        async with by_flag.bot("v=1&compression=zlib&zlib_style=stream") as ws:
            assert Inflater()(await recv_raw(ws))["op"] == 5

    run(body())


class SplitInflater:
    """A bot's view of the split style: one decompressobj for the connection, binary messages
    joined until one ends with the sync flush suffix."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj()
        self.parts: list[list[bytes]] = []  # the parts of every message decoded so far

    async def recv(self, ws) -> dict:
        parts: list[bytes] = []
        while True:
            part = await recv_raw(ws)
            assert isinstance(part, bytes), f"expected a binary frame, got {part!r}"
            parts.append(part)
            if part.endswith(b"\x00\x00\xff\xff"):
                break
            assert len(parts) < 2, "a message in more than two parts"
        self.parts.append(parts)
        return json.loads(self._inflater.decompress(b"".join(parts)))


def test_zlib_split_style(start_server) -> None:
    by_default = start_server()
    by_flag = start_server("--zlib-style", "split")
    big = {"text": "".join(chr(0x41 + (i * 7919) % 58) for i in range(50_000)), "n": list(range(2000))}

    async def body() -> None:
        for server, query in (
            (by_default, "v=1&compression=zlib&zlib_style=split"),
            (by_flag, "v=1&compression=zlib"),
        ):
            async with server.bot(query) as ws:
                inflate = SplitInflater()
                assert await inflate.recv(ws) == {"op": 5, "d": {"heartbeat": 5000}}
                await send_json(ws, {"op": 10})
                assert await inflate.recv(ws) == {"op": 11}
                await send_json(ws, IDENTIFY)
                assert (await inflate.recv(ws))["t"] == "bot_connect_success"
                await send_json(ws, {"op": 1, "t": "send_servers", "d": {"guilds": 4}})
                assert await inflate.recv(ws) == global_count(4, 0, 0)
                assert await server.command({"cmd": "send_all", "t": "BIG", "d": big}) == {"ok": True, "sent": 1}
                assert await inflate.recv(ws) == {"op": 0, "t": "BIG", "d": big}
                await send_json(ws, {"op": 10})
                assert await inflate.recv(ws) == {"op": 11}
                connections = (await server.command({"cmd": "connections"}))["connections"]
                assert [c["zlib_style"] for c in connections] == ["split"]
            # Every message came in exactly two parts; only the second ends with the suffix.
            assert [len(parts) for parts in inflate.parts] == [2] * 6
            for first, second in inflate.parts:
                assert first and not first.endswith(b"\x00\x00\xff\xff")
                assert second.endswith(b"\x00\x00\xff\xff")
            assert inflate.parts[0][0][:1] == b"\x78"  # the zlib header opens the connection's stream
            # One stream: a later message does not inflate on its own.
            with pytest.raises(zlib.error):
                zlib.decompress(b"".join(inflate.parts[3]))
            # Errors and their close come the same way.
            async with server.bot(query) as ws:
                inflate = SplitInflater()
                await inflate.recv(ws)
                await send_json(ws, {"op": 1, "t": "identify", "d": {"type": "bot", "key": "bad"}})
                assert await inflate.recv(ws) == error(4001, "Wrong auth key.")
                messages, code, _ = await until_closed(ws)
            assert (messages, code) == ([], 4001)
        # The other styles are untouched by the new one.
        async with by_flag.bot("v=1&compression=zlib&zlib_style=stream") as ws:
            assert Inflater()(await recv_raw(ws))["op"] == 5
        async with by_flag.bot("v=1&compression=zlib&zlib_style=message") as ws:
            assert json.loads(zlib.decompress(await recv_raw(ws)))["op"] == 5

    run(body())


def test_zlib_errors_and_closes(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&compression=zlib") as ws:
            inflate = Inflater()
            inflate(await recv_raw(ws))
            await send_json(ws, {"op": 1, "t": "identify", "d": {"type": "bot", "key": "bad"}})
            messages, code, _ = await until_closed(ws)
        assert [inflate(frame) for frame in messages] == [error(4001, "Wrong auth key.")]
        assert code == 4001

    run(body())


def test_bad_dev_parameters_refuse_the_upgrade(server: DevServer) -> None:
    async def body() -> None:
        for query, reason in [
            ("v=1&zlib_style=gzip", b"zlib_style must be one of stream, message, split, not 'gzip'\n"),
            ("v=1&hello_spelling=beat", b"hello_spelling must be one of heartbeat, hearbeat, not 'beat'\n"),
            ("v=1&strict_heartbeat=yes", b"strict_heartbeat must be one of 1, 0, true, false, not 'yes'\n"),
        ]:
            with pytest.raises(InvalidStatus) as refused:
                async with server.bot(query):
                    pass
            assert refused.value.response.status_code == 400
            assert refused.value.response.body == reason

    run(body())


# =============================================================================================
# Faults on the URL


def test_fault_no_ack(start_server) -> None:
    server = start_server("--heartbeat", "200")

    async def body() -> None:
        async with server.bot("v=1&fault_no_ack=1") as ws:
            await hello(ws)
            await identify(ws)
            for _ in range(5):  # 0.75 s: heartbeats still count, so no 4006 either
                await send_json(ws, {"op": 10})
                await nothing_within(ws, 0.15)
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert (stats["heartbeats_total"], stats["acks_total"]) == (5, 0)
        assert stats["closes_by_code"] == {}

    run(body())


def test_fault_no_ack_after(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&fault_no_ack_after=2") as ws:
            await hello(ws)
            for _ in range(2):
                await send_json(ws, {"op": 10})
                assert await recv_json(ws) == {"op": 11}
            await send_json(ws, {"op": 10})
            await send_json(ws, {"op": 10})
            await nothing_within(ws, 0.3)
            await identify(ws)  # everything else still works

    run(body())


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (4001, [error(4001, "Wrong auth key.")]),
        (4006, [error(4006, "No heartbeat received.")]),
        (1000, [error(1000, "Unknown error.")]),
        (4999, []),  # not one of the gateway's codes: a bare close
        (1011, []),
    ],
)
def test_fault_close_right_after_identify(server: DevServer, code: int, expected: list) -> None:
    async def body() -> None:
        async with server.bot(f"v=1&fault_close={code}") as ws:
            await hello(ws)
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}  # nothing happens before identify
            await identify(ws)
            messages, close_code, reason = await until_closed(ws)
        assert messages == expected
        assert close_code == code
        assert reason == (expected[0]["m"] if expected else "")
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["closes_by_code"] == {str(code): 1}

    run(body())


def test_fault_close_after_ms(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&fault_close=4002&fault_close_after_ms=400") as ws:
            await hello(ws)
            await identify(ws)
            identified = time.monotonic()
            messages, code, _ = await until_closed(ws)
            elapsed = time.monotonic() - identified
        assert messages == [error(4002, "Bot ID already in use.")]
        assert code == 4002
        assert 0.35 <= elapsed < 2

    run(body())


def test_fault_malformed(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&fault_malformed=1") as ws:
            await hello(ws)
            await identify(ws)
            assert await recv_raw(ws) == '{"op":0,"t":'
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}

    run(body())


def test_fault_no_hello(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&fault_no_hello=1", close_timeout=0.3) as ws:
            await send_json(ws, {"op": 10})
            await send_json(ws, IDENTIFY)
            await nothing_within(ws, 0.5)
            connections = (await server.command({"cmd": "connections"}))["connections"]
            assert [(c["stalled"], c["identified"]) for c in connections] == [(True, False)]
        # The client's close frame was never answered; it dropped the TCP connection itself.
        assert ws.close_code == 1006
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["client_closes_by_code"] == {"1006": 1}
        assert stats["heartbeats_total"] == 0
        assert stats["events_by_name"] == {}

    run(body())


def test_fault_stall_after_ms(start_server) -> None:
    server = start_server("--heartbeat", "200")

    async def body() -> None:
        async with server.bot("v=1&fault_stall_after_ms=300", close_timeout=0.3) as ws:
            await hello(ws)
            await identify(ws)
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}
            await asyncio.sleep(0.15)
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}
            await asyncio.sleep(0.25)  # past the stall
            await send_json(ws, {"op": 10})
            # Silent: no ACK, no 4006 although no heartbeat is handled any more, no close.
            await nothing_within(ws, 0.6)
            stats = await server.stats()
            assert (stats["connections"], stats["heartbeats_total"], stats["closes_by_code"]) == (1, 2, {})
        assert ws.close_code == 1006  # the close frame went unanswered

    run(body())


@pytest.mark.parametrize(
    ("code", "message"), [(4002, "Bot ID already in use."), (1000, "Unknown error."), (4321, "Unknown error.")]
)
def test_fault_error(server: DevServer, code: int, message: str) -> None:
    async def body() -> None:
        async with server.bot(f"v=1&fault_error={code}") as ws:
            await hello(ws)
            await identify(ws)
            raw = await recv_raw(ws)
            messages, close_code, reason = await until_closed(ws)
        assert raw == '{"op":-1,"e":%d,"d":{"errors":["Injected error."],"data":[null]},"m":"%s"}' % (code, message)
        assert (messages, close_code, reason) == ([], code, message)

    run(body())


def test_faults_run_in_the_documented_order(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&fault_malformed=1&fault_error=4005&fault_close=4001") as ws:
            await hello(ws)
            await identify(ws)
            messages = [await recv_raw(ws)]
            rest, code, _ = await until_closed(ws)
        assert messages == ['{"op":0,"t":']
        assert rest == [error(4005, "Malformed data.", ["Injected error."], [None])]
        assert code == 4005

    run(body())


def test_fault_no_ready(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&fault_no_ready=1") as ws:
            await hello(ws)
            await send_json(ws, IDENTIFY)
            await send_json(ws, {"op": 10})
            # bot_connect_success would have been queued before this ACK: it is never sent.
            assert await recv_json(ws) == {"op": 11}
            connections = (await server.command({"cmd": "connections"}))["connections"]
            assert [(c["identified"], c["bot_id"] is not None) for c in connections] == [(True, True)]
            # Otherwise healthy: heartbeats are ACKed, events and send_all reach the bot.
            for _ in range(3):
                await send_json(ws, {"op": 10})
                assert await recv_json(ws) == {"op": 11}
            assert await server.command({"cmd": "send_all", "t": "NEWS", "d": {"n": 1}}) == {"ok": True, "sent": 1}
            assert await recv_json(ws) == {"op": 0, "t": "NEWS", "d": {"n": 1}}
            await send_json(ws, {"op": 1, "t": "send_servers", "d": {"guilds": 2}})
            assert await recv_json(ws) == global_count(2, 0, 0)
            stats = await server.stats()
            assert (stats["identifies_total"], stats["closes_by_code"]) == (1, {})
            # The identify was accepted: a second one is the usual 4007.
            await send_json(ws, IDENTIFY)
            messages, code, _ = await until_closed(ws)
        assert (messages, code) == ([error(4007, "Wrong identify.", ["Already identified."], [None])], 4007)

    run(body())


@pytest.mark.parametrize("no_ready", [False, True])
def test_fault_flood(server: DevServer, no_ready: bool) -> None:
    count = 3000

    async def body() -> None:
        query = f"v=1&fault_flood={count}" + ("&fault_no_ready=1" if no_ready else "")
        async with server.bot(query) as ws:
            await hello(ws)
            await send_json(ws, IDENTIFY)
            await send_json(ws, {"op": 10})  # its ACK may come anywhere among the first FLOOD events
            if not no_ready:
                assert (await recv_json(ws))["t"] == "bot_connect_success"
            seqs, acks = [], 0
            async with asyncio.timeout(15):
                while len(seqs) < count:
                    raw = await ws.recv()
                    if raw == '{"op":11}':
                        acks += 1
                        continue
                    assert raw == '{"op":0,"t":"FLOOD","d":{"seq":%d}}' % len(seqs)
                    seqs.append(len(seqs))
            # Then a healthy connection: the ACK came (during or after the flood), heartbeats go on.
            if acks == 0:
                assert await recv_json(ws) == {"op": 11}
            await send_json(ws, {"op": 10})
            assert await recv_json(ws) == {"op": 11}
            stats = await server.stats()
            assert stats["flood_events_total"] == count
            assert (stats["identifies_total"], stats["acks_total"], stats["closes_by_code"]) == (1, 2, {})

    run(body())


def test_fault_flood_waits_for_a_client_that_does_not_read(server: DevServer) -> None:
    async def body() -> None:
        # A small receive buffer and queue on the bot's side, and a bot that stops reading: the
        # server's writes must stall on the transport, with only the flood's window queued.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.info["port"]))
        async with server.bot("v=1&fault_flood=1000000", sock=sock, max_queue=1) as ws:
            await hello(ws)
            await identify(ws)
            deadline = time.monotonic() + 15
            written, steady = -1, 0
            while steady < 4:  # the same count four times in a row, 0.25 s apart: stalled
                await asyncio.sleep(0.25)
                now = (await server.stats())["flood_events_total"]
                steady = steady + 1 if now == written else 0
                written = now
                assert time.monotonic() < deadline, f"the flood never stalled ({written} written)"
            assert 0 < written < 1_000_000
            connections = (await server.command({"cmd": "connections"}))["connections"]
            assert connections[0]["outbox"] <= 64 + 1  # the window (and no more) waits in the server
            # The bot reads again: the events go on in order from where it is.
            for seq in range(200):
                message = json.loads(await recv_raw(ws))
                assert message == {"op": 0, "t": "FLOOD", "d": {"seq": seq}}

    run(body())


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("fault_close=1005", "fault_close=1005 is not a valid close code (1000-1003, 1007-1014, 3000-4999)\n"),
        ("fault_close=abc", "fault_close must be a non-negative integer, not 'abc'\n"),
        ("fault_close_after_ms=10", "fault_close_after_ms needs fault_close\n"),
        ("fault_no_ack=yes", "fault_no_ack must be 1 or 0, not 'yes'\n"),
        ("fault_no_ack=1&fault_no_ack=1", "fault_no_ack is given 2 times\n"),
        ("fault_error=5000", "fault_error=5000 is not a valid close code (1000-1003, 1007-1014, 3000-4999)\n"),
    ],
)
def test_bad_fault_parameters_refuse_the_upgrade(server: DevServer, query: str, reason: str) -> None:
    async def body() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with server.bot(f"v=1&{query}"):
                pass
        assert refused.value.response.status_code == 400
        assert refused.value.response.body == reason.encode()
        with pytest.raises(InvalidStatus) as typo:
            async with server.bot("v=1&fault_noack=1"):
                pass
        assert typo.value.response.status_code == 400
        assert typo.value.response.body.startswith(b"unknown fault parameter 'fault_noack'")
        assert (await server.stats())["connects_total"] == 0

    run(body())


# =============================================================================================
# Control commands on stdin


def test_stats_counts_exactly(start_server) -> None:
    server = start_server()

    async def body() -> None:
        assert await server.stats() == {
            "connections": 0,
            "identified": 0,
            "connects_total": 0,
            "identifies_total": 0,
            "heartbeats_total": 0,
            "acks_total": 0,
            "flood_events_total": 0,
            "closes_by_code": {},
            "client_closes_by_code": {},
            "events_by_name": {},
            "global": {"guilds": 0, "guildMembers": 0, "cachedGuildMembers": 0},
            "strict_heartbeat_beats_total": 0,
            "strict_heartbeat_min_margin_ms": None,
            "strict_heartbeat_late_closes_total": 0,
            "strict_heartbeat_last_late_ms": None,
            "strict_heartbeat_connections": [],
        }
        async with server.bot() as a, server.bot("v=1&fault_no_ack_after=1") as b:
            await hello(a)
            await hello(b)
            for ws in (a, b, b):
                await send_json(ws, {"op": 10})
            assert await recv_json(a) == {"op": 11}
            assert await recv_json(b) == {"op": 11}
            await identify(a)
            await send_json(a, {"op": 1, "t": "send_servers", "d": {"guilds": 2, "users": 3, "cachedUsers": 1}})
            await recv_json(a)
            async with server.bot("v=2") as wrong:
                await until_closed(wrong)
            await send_json(b, {"op": 1, "t": "identify", "d": {"type": "bot"}})
            await until_closed(b)
            stats = await server.stats_when(lambda s: s["connections"] == 1)
            assert stats == {
                "connections": 1,
                "identified": 1,
                "connects_total": 3,
                "identifies_total": 1,
                "heartbeats_total": 3,
                "acks_total": 2,
                "flood_events_total": 0,
                "closes_by_code": {"4000": 1, "4005": 1},
                "client_closes_by_code": {},
                "events_by_name": {"identify": 2, "send_servers": 1},
                "global": {"guilds": 2, "guildMembers": 3, "cachedGuildMembers": 1},
                "strict_heartbeat_beats_total": 0,
                "strict_heartbeat_min_margin_ms": None,
                "strict_heartbeat_late_closes_total": 0,
                "strict_heartbeat_last_late_ms": None,
                "strict_heartbeat_connections": [],
            }
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["client_closes_by_code"] == {"1000": 1}
        assert stats["identified"] == 0

    run(body())


@pytest.mark.parametrize(
    ("code", "expected"),
    [(4000, [error(4000, "Wrong Version.")]), (1000, [error(1000, "Unknown error.")]), (4999, [])],
)
def test_close_all(server: DevServer, code: int, expected: list) -> None:
    async def body() -> None:
        async with server.bot() as a, server.bot() as b:
            await hello(a)
            await hello(b)
            await identify(a)  # identified or not, both are closed
            answer, (a_messages, a_code, _), (b_messages, b_code, _) = await asyncio.gather(
                server.command({"cmd": "close_all", "code": code}), until_closed(a), until_closed(b)
            )
        assert answer == {"ok": True, "closed": 2}
        assert (a_messages, a_code) == (expected, code)
        assert (b_messages, b_code) == (expected, code)
        stats = await server.stats()  # close_all answers once they are gone
        assert stats["connections"] == 0
        assert stats["closes_by_code"] == {str(code): 2}
        assert await server.command({"cmd": "close_all", "code": code}) == {"ok": True, "closed": 0}

    run(body())


def test_stop_and_resume_acks(start_server) -> None:
    server = start_server("--heartbeat", "300")  # 4006 after 375 ms without a heartbeat

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            assert await server.command({"cmd": "stop_acks"}) == {"ok": True}
            for _ in range(4):  # 0.6 s: unanswered heartbeats still count, so no 4006
                await send_json(ws, {"op": 10})
                await nothing_within(ws, 0.15)
            async with server.bot() as later:  # also for connections made afterwards
                await hello(later)
                await send_json(later, {"op": 10})
                await send_json(ws, {"op": 10})
                await nothing_within(later, 0.15)
                await nothing_within(ws, 0.01)
                assert await server.command({"cmd": "resume_acks"}) == {"ok": True}
                await send_json(later, {"op": 10})
                await send_json(ws, {"op": 10})
                assert await recv_json(later) == {"op": 11}
                assert await recv_json(ws) == {"op": 11}
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert (stats["heartbeats_total"], stats["acks_total"], stats["closes_by_code"]) == (8, 2, {})

    run(body())


def test_send_all(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as a, server.bot("v=1&compression=zlib") as b, server.bot() as unidentified:
            await hello(a)
            inflate = Inflater()
            inflate(await recv_raw(b))
            await hello(unidentified)
            await identify(a)
            await send_json(b, IDENTIFY)
            inflate(await recv_raw(b))
            answer = await server.command({"cmd": "send_all", "t": "NEWS", "d": {"n": 1, "list": [1, "x"]}})
            assert answer == {"ok": True, "sent": 2}
            assert await recv_raw(a) == '{"op":0,"t":"NEWS","d":{"n":1,"list":[1,"x"]}}'
            assert inflate(await recv_raw(b)) == {"op": 0, "t": "NEWS", "d": {"n": 1, "list": [1, "x"]}}
            assert await server.command({"cmd": "send_all", "t": "BARE"}) == {"ok": True, "sent": 2}
            assert await recv_raw(a) == '{"op":0,"t":"BARE"}'
            assert await server.command({"cmd": "send_all", "t": "NULL", "d": None}) == {"ok": True, "sent": 2}
            assert await recv_raw(a) == '{"op":0,"t":"NULL","d":null}'
            await send_json(unidentified, {"op": 10})
            assert await recv_json(unidentified) == {"op": 11}

    run(body())


def test_send_raw_all(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as a, server.bot("v=1&compression=zlib&zlib_style=message") as b:
            await hello(a)
            zlib.decompress(await recv_raw(b))
            await identify(a)
            await send_json(b, IDENTIFY)
            zlib.decompress(await recv_raw(b))
            answer = await server.command({"cmd": "send_raw_all", "text": '{"op":0,"t":"X","d":'})
            assert answer == {"ok": True, "sent": 2}
            assert await recv_raw(a) == '{"op":0,"t":"X","d":'
            assert zlib.decompress(await recv_raw(b)) == b'{"op":0,"t":"X","d":'

    run(body())


def test_stall_all(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot(close_timeout=0.3) as a, server.bot(close_timeout=0.3) as b:
            await hello(a)
            await hello(b)
            await identify(a)
            assert await server.command({"cmd": "stall_all"}) == {"ok": True, "stalled": 2}
            await send_json(a, {"op": 10})
            await send_json(b, {"op": 10})
            await nothing_within(a, 0.3)
            await nothing_within(b, 0.01)
            assert await server.command({"cmd": "send_all", "t": "X"}) == {"ok": True, "sent": 0}
            assert await server.command({"cmd": "close_all", "code": 4000}) == {"ok": True, "closed": 0}
            await nothing_within(a, 0.2)
            connections = (await server.command({"cmd": "connections"}))["connections"]
            assert [c["stalled"] for c in connections] == [True, True]
        assert (a.close_code, b.close_code) == (1006, 1006)
        stats = await server.stats_when(lambda s: s["connections"] == 0)
        assert stats["heartbeats_total"] == 0
        assert stats["client_closes_by_code"] == {"1006": 2}
        assert await server.command({"cmd": "stall_all"}) == {"ok": True, "stalled": 0}

    run(body())


def test_received(start_server) -> None:
    server = start_server("--echo")

    async def body() -> None:
        async with server.bot() as a, server.bot() as b:
            await hello(a)
            await hello(b)
            await send_json(a, {"op": 1, "t": "early", "d": {"i": 0}})  # ignored, still received
            await send_json(a, {"op": 10})
            await recv_json(a)
            await identify(a, "dev-key")
            await send_json(b, {"op": 1, "t": "identify", "d": {"type": "bot", "key": "dev-key", "extra": 1}})
            await recv_json(b)
            await send_json(a, {"op": 1, "t": "one", "d": {"i": 1}})
            await recv_json(a)
            await send_json(b, {"op": 1, "t": "two"})
            await recv_json(b)
            await send_json(a, {"op": 1, "t": "three", "d": {"i": 3}})
            await recv_json(a)
            answer = await server.command({"cmd": "received"})
            assert answer == {
                "ok": True,
                "received": [
                    {"conn": 1, "op": 1, "t": "early", "d": {"i": 0}},
                    {"conn": 1, "op": 1, "t": "identify", "d": {"type": "bot", "key": "***"}},
                    {"conn": 2, "op": 1, "t": "identify", "d": {"type": "bot", "key": "***", "extra": 1}},
                    {"conn": 1, "op": 1, "t": "one", "d": {"i": 1}},
                    {"conn": 2, "op": 1, "t": "two", "d": None},
                    {"conn": 1, "op": 1, "t": "three", "d": {"i": 3}},
                ],
                "dropped": 0,
            }
            assert await server.command({"cmd": "received"}) == {"ok": True, "received": [], "dropped": 0}
            # A wrong key never shows either.
            async with server.bot() as c:
                await hello(c)
                await send_json(c, {"op": 1, "t": "identify", "d": {"type": "bot", "key": "secret-typo"}})
                await until_closed(c)
            answer = await server.command({"cmd": "received"})
            assert answer["received"] == [{"conn": 3, "op": 1, "t": "identify", "d": {"type": "bot", "key": "***"}}]
            assert "secret-typo" not in json.dumps(answer)

    run(body())


def test_keys_command(server: DevServer) -> None:
    async def body() -> None:
        assert await server.command({"cmd": "keys", "keys": ["new-1", "new-2"]}) == {"ok": True}
        async with server.bot() as ws:
            await hello(ws)
            await identify(ws, "new-2")
        async with server.bot() as ws:
            await hello(ws)
            await send_json(ws, IDENTIFY)
            messages, code, _ = await until_closed(ws)
        assert (messages, code) == ([error(4001, "Wrong auth key.")], 4001)

    run(body())


def test_connections_command(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot("v=1&compression=zlib&zlib_style=message&x=y") as ws:
            await recv_raw(ws)
            answer = await server.command({"cmd": "connections"})
        assert answer == {
            "ok": True,
            "connections": [
                {
                    "conn": 1,
                    "path": "/?v=1&compression=zlib&zlib_style=message&x=y",
                    "identified": False,
                    "bot_id": None,
                    "compression": "zlib",
                    "zlib_style": "message",
                    "closing": False,
                    "stalled": False,
                    "outbox": 0,
                    "strict_heartbeat": False,
                }
            ],
        }

    run(body())


@pytest.mark.parametrize(
    ("line", "error_start"),
    [
        ("not json", "invalid JSON: "),
        ("[1]", "a command is a JSON object"),
        ('{"cmd":"dance"}', "unknown command 'dance' (known: stats, close_all, "),
        ('{"nocmd":1}', "unknown command None"),
        ('{"cmd":"close_all"}', "close_all needs a valid close code"),
        ('{"cmd":"close_all","code":1006}', "close_all needs a valid close code"),
        ('{"cmd":"send_all","d":{}}', "send_all needs a string t"),
        ('{"cmd":"send_raw_all","text":5}', "send_raw_all needs a string text"),
        ('{"cmd":"keys","keys":"dev-key"}', "keys needs an array of strings"),
    ],
)
def test_bad_commands_answer_ok_false(server: DevServer, line: str, error_start: str) -> None:
    async def body() -> None:
        answer = await server.command(line)
        assert set(answer) == {"ok", "error"}
        assert answer["ok"] is False
        assert answer["error"].startswith(error_start), answer["error"]
        assert (await server.stats())["connections"] == 0  # the channel still works

    run(body())


def test_blank_lines_get_no_answer(server: DevServer) -> None:
    async def body() -> None:
        server.process.stdin.write(b"\n   \n")
        assert (await server.command({"cmd": "stop_acks"})) == {"ok": True}

    run(body())


# =============================================================================================
# Exiting


def test_exit_at_end_of_stdin_closes_connections_with_1001(start_server) -> None:
    server = start_server()

    async def body() -> None:
        async with server.bot() as ws:
            await hello(ws)
            await identify(ws)
            started = time.monotonic()
            server.process.stdin.close()
            messages, code, _ = await until_closed(ws)
            assert (messages, code) == ([], 1001)
            status = await asyncio.to_thread(server.process.wait, 10)
            assert status == 0
            assert time.monotonic() - started < 5

    run(body())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_exit_on_signal(start_server, signum: int) -> None:
    server = start_server("--tls")
    certdir = Path(server.info["ca"]).parent

    async def body() -> None:
        async with server.bot(ssl=ssl.create_default_context(cafile=server.info["ca"])) as ws:
            await hello(ws)
            server.signal(signum)
            messages, code, _ = await until_closed(ws)
            assert (messages, code) == ([], 1001)
        assert await asyncio.to_thread(server.process.wait, 10) == 0

    run(body())
    assert not certdir.exists()


def test_exit_with_stalled_connections_is_prompt(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot(close_timeout=0.2) as ws:
            await hello(ws)
            await server.command({"cmd": "stall_all"})
            started = time.monotonic()
            server.process.stdin.close()
            assert await asyncio.to_thread(server.process.wait, 10) == 0
            assert time.monotonic() - started < 2.5

    run(body())


def test_no_stdin_ignores_end_of_input(start_server) -> None:
    server = start_server("--no-stdin")
    server.process.stdin.close()

    async def body() -> None:
        await asyncio.sleep(0.3)
        assert server.process.poll() is None
        async with server.bot() as ws:
            await hello(ws)
        server.signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.process.wait, 10) == 0

    run(body())


def test_port_in_use_exits_with_1_and_no_announcement(server: DevServer) -> None:
    env = dict(os.environ, PYTHONPATH=str(PYTHON_ROOT))
    busy = subprocess.run(
        [sys.executable, "-m", "utilbot_gateway.devserver", "--port", str(server.info["port"])],
        stdin=subprocess.PIPE,
        capture_output=True,
        env=env,
        timeout=20,
    )
    assert busy.returncode == 1
    assert busy.stdout == b""
    assert b"cannot listen on 127.0.0.1 port" in busy.stderr


@pytest.mark.parametrize("module", ["websockets", "cryptography"])
def test_without_the_extra_it_says_so_and_exits_2(tmp_path: Path, module: str) -> None:
    # A directory first on sys.path whose package of that name fails to import, like a missing one.
    poisoned = tmp_path / module
    poisoned.mkdir()
    (poisoned / "__init__.py").write_text(f'raise ModuleNotFoundError("No module named {module!r}", name={module!r})\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(PYTHON_ROOT)]))
    for arguments in ([], ["--help"]):
        ran = subprocess.run(
            [sys.executable, "-m", "utilbot_gateway.devserver", *arguments],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=30,
            text=True,
        )
        assert ran.returncode == 2, ran.stderr
        assert ran.stdout == ""
        assert ran.stderr == (
            "the dev gateway needs its extra: pip install 'utilbot-gateway[devserver]' "
            f"(cannot import {module}: No module named '{module}')\n"
        )
    # The client package (and the devserver package itself) import without the extra.
    imported = subprocess.run(
        [sys.executable, "-c", f"import utilbot_gateway, utilbot_gateway.devserver, sys; print({module!r} in sys.modules)"],
        capture_output=True,
        env=env,
        timeout=30,
        text=True,
    )
    assert (imported.returncode, imported.stdout, imported.stderr) == (0, "False\n", "")


def test_help_documents_faults_and_commands() -> None:
    env = dict(os.environ, PYTHONPATH=str(PYTHON_ROOT))
    shown = subprocess.run(
        [sys.executable, "-m", "utilbot_gateway.devserver", "--help"],
        capture_output=True,
        env=env,
        timeout=20,
        text=True,
    )
    assert shown.returncode == 0
    documented = ["fault_no_ack_after", "fault_stall_after_ms", "fault_error", "send_raw_all", "stall_all"]
    documented += ["fault_no_ready", "fault_flood", "flood_events_total", "zlib_style=stream|message|split"]
    documented += ["--strict-heartbeat", "strict_heartbeat=1|0", "strict_heartbeat_min_margin_ms"]
    documented += ["strict_heartbeat_late_closes_total", "strict_heartbeat_connections"]
    for name in documented + ["--no-stdin", "--hello-spelling", "--heartbeat-grace", "--zlib-style"]:
        assert name in shown.stdout


# =============================================================================================
# Pure modules


def test_protocol_opcode_rules() -> None:
    assert protocol.opcode({"op": 10}) == 10
    assert protocol.opcode({"op": 1}) == 1
    cases = [({}, 4003), ({"op": None}, 4003), ({"op": True}, 4004), ({"op": 1.0}, 4004), ({"op": 0}, 4004)]
    for payload, code in cases:
        with pytest.raises(GatewayError) as failure:
            protocol.opcode(payload)
        assert failure.value.code == code


def test_protocol_decode_drops_what_is_not_a_json_object() -> None:
    assert protocol.decode('{"op":10}') == {"op": 10}
    for text in ["x", "[]", "1", "NaN", '{"a":Infinity}', "[" * 100_000]:
        assert protocol.decode(text) is None


def test_protocol_encode_matches_javascript_and_survives_lone_surrogates() -> None:
    assert protocol.encode({"op": 0, "t": "é", "d": None}) == '{"op":0,"t":"é","d":null}'
    assert protocol.encode({"s": "\ud800"}) == '{"s":"\\ud800"}'
    assert protocol.encode(protocol.error(4005, errors=["a"], data=[None])) == (
        '{"op":-1,"e":4005,"d":{"errors":["a"],"data":[null]},"m":"Malformed data."}'
    )


def test_identify_validation() -> None:
    assert protocol.identify_key({"type": "bot", "key": "k"}) == "k"
    with pytest.raises(GatewayError) as failure:
        protocol.identify_key(None)
    assert protocol.encode(failure.value.payload()) == DOCUMENTED_4005
    with pytest.raises(GatewayError) as failure:
        protocol.identify_key({"type": "Bot", "key": "k"})
    assert failure.value.code == 4007


def test_counts_parse_and_aggregate() -> None:
    assert parse_report({}) == ServerCounts(0, 0, 0)
    assert parse_report({"guilds": [{}, {}, {}], "users": 4, "cachedUsers": 2}) == ServerCounts(3, 4, 2)
    assert parse_report({"guildMembers": 9, "users": 4}) == ServerCounts(0, 9, 0)  # the documented name wins
    with pytest.raises(GatewayError) as failure:
        parse_report({"guilds": 1.5, "guildMembers": -2})
    assert failure.value.errors == [
        "guilds must be a non-negative integer or an array.",
        "guildMembers must be a non-negative integer.",
    ]
    assert failure.value.data == [1.5, -2]
    aggregate = Aggregate()
    aggregate.report(1, ServerCounts(1, 2, 3))
    aggregate.report(2, ServerCounts(10, 20, 30))
    aggregate.report(1, ServerCounts(5, 5, 5))
    assert aggregate.total() == ServerCounts(15, 25, 35)
    assert aggregate.remove(2) is True
    assert aggregate.remove(2) is False
    assert aggregate.total().as_event_data() == {"guilds": 5, "guildMembers": 5, "cachedGuildMembers": 5}


def test_compression_styles() -> None:
    stream = StreamEncoder()
    inflater = zlib.decompressobj()
    for text in [b'{"op":5}', b'{"op":11}', b'{"op":11}']:
        frame = stream.encode(text)
        assert frame.endswith(b"\x00\x00\xff\xff")
        assert inflater.decompress(frame) == text
    frame = MessageEncoder().encode(b'{"op":11}')
    assert zlib.decompress(frame) == b'{"op":11}'
    inflater = zlib.decompressobj()
    inflater.decompress(frame)
    assert inflater.eof  # a complete stream
    split = SplitEncoder()
    inflater = zlib.decompressobj()
    for text in [b'{"op":5}', b"", b"x", b"\x00\x00\xff\xff" * 50, bytes(range(256)) * 40]:
        first, second = split.messages(text)
        assert first and not first.endswith(b"\x00\x00\xff\xff")
        assert second.endswith(b"\x00\x00\xff\xff")
        assert inflater.decompress(first + second) == text


def test_strict_schedule_rules() -> None:
    schedule = StrictSchedule(10.0, 1.0)  # Hello at 10 s, interval 1 s
    assert schedule.deadline == 11.0
    schedule.rebase(10.5)  # the Hello was written later than planned: before any beat, it counts
    assert schedule.deadline == 11.5
    schedule.rebase(10.0)
    assert schedule.beat(10.01) == pytest.approx(0.99)  # the first beat covers slot 0
    assert (schedule.slot, schedule.deadline) == (0, 11.0)
    schedule.rebase(10.5)  # after a beat the anchor stays
    assert schedule.deadline == 11.0
    assert schedule.beat(10.9) == pytest.approx(0.1)  # ceil(0.9) = slot 1: next due by 12
    assert (schedule.slot, schedule.deadline) == (1, 12.0)
    assert schedule.beat(11.95) == pytest.approx(0.05)  # slot 2
    assert schedule.beat(13.0) == 0.0  # exactly at the deadline is in time: slot 3
    assert (schedule.slot, schedule.deadline) == (3, 14.0)
    assert schedule.beat(13.2) > 0 and schedule.beat(13.5) > 0  # both slot 4: no credit for extra beats
    assert (schedule.slot, schedule.deadline) == (4, 15.0)
    margin = schedule.beat(15.0371)  # late: nothing moves
    assert margin < 0 and (schedule.slot, schedule.deadline) == (4, 15.0)
    assert (margin_ms(margin), late_ms(margin)) == (-38, 38)
    assert (margin_ms(0.0), margin_ms(0.2999), late_ms(-0.0001)) == (0, 299, 1)
    late_first = StrictSchedule(0.0, 0.5)
    assert late_first.beat(0.6) == pytest.approx(-0.1)  # even the first beat is due by H + I
    with pytest.raises(ValueError):
        StrictSchedule(0.0, 0.0)


def test_fault_and_parameter_parsing() -> None:
    params = parse_request_target(
        "/?v=1&compression=zlib&fault_no_ack_after=3&fault_close=4006&fault_close_after_ms=20"
    )
    assert (params.version, params.compression) == ("1", "zlib")
    assert params.faults == Faults(no_ack_after=3, close=4006, close_after_ms=20)
    assert params.faults.acks_allowed(2) and not params.faults.acks_allowed(3)
    assert parse_request_target("/?v=1&v=2").version == "1"  # the first value counts
    assert parse_request_target("/path").version is None
    assert parse_request_target("/path").strict_heartbeat is None  # the server's default
    assert parse_request_target("/?strict_heartbeat=1").strict_heartbeat is True
    assert parse_request_target("/?strict_heartbeat=false").strict_heartbeat is False
    faults = parse_faults({"fault_no_ack": ["true"], "fault_stall_after_ms": ["0"]})
    assert faults == Faults(no_ack=True, stall_after_ms=0)
    assert parse_faults({"fault_no_ready": ["1"], "fault_flood": ["250"]}) == Faults(no_ready=True, flood=250)
    with pytest.raises(FaultParameterError):
        parse_faults({"fault_flood": ["-1"]})
    with pytest.raises(FaultParameterError):
        parse_faults({"fault_close": ["999"]})
    with pytest.raises(ParameterError):
        parse_request_target("/?zlib_style=stream&zlib_style=message")


def test_stamp_numbers_every_event_per_connection(start_server) -> None:
    server = start_server("--stamp")

    async def body() -> None:
        async with server.bot() as a, server.bot() as b:
            await hello(a)
            await hello(b)
            assert (await identify(a))["d"]["seq"] == 0
            assert (await identify(b))["d"]["seq"] == 0
            await server.command({"cmd": "send_all", "t": "ONE", "d": {"x": 1}})
            await server.command({"cmd": "send_all", "t": "TWO"})
            assert await recv_json(a) == {"op": 0, "t": "ONE", "d": {"x": 1, "seq": 1}}
            assert await recv_json(a) == {"op": 0, "t": "TWO", "d": {"seq": 2}}
            assert (await recv_json(b))["d"]["seq"] == 1
            await send_json(a, {"op": 10})
            assert await recv_json(a) == {"op": 11}  # only op 0 events are stamped

    run(body())


def test_close_some_closes_a_random_fraction_with_the_given_codes(server: DevServer) -> None:
    async def body() -> None:
        async with server.bot() as a, server.bot() as b, server.bot() as c, server.bot() as d:
            bots = [a, b, c, d]
            for ws in bots:
                await hello(ws)
                await identify(ws)
            answer = await server.command({"cmd": "close_some", "fraction": 0.5, "codes": [4006]})
            assert answer == {"ok": True, "closed": 2}
            codes = []
            for ws in bots:
                try:
                    await asyncio.wait_for(ws.recv(), 0.5)
                    await ws.recv()
                except ConnectionClosed as closed:
                    codes.append(closed.rcvd.code if closed.rcvd else None)
                except asyncio.TimeoutError:
                    pass
            assert codes == [4006, 4006]
        bad = await server.command({"cmd": "close_some", "fraction": 2, "codes": [4006]})
        assert bad["ok"] is False
        bad = await server.command({"cmd": "close_some", "fraction": 0.5, "codes": [1005]})
        assert bad["ok"] is False

    run(body())


def test_started_in_the_background_it_serves_until_signalled(tmp_path) -> None:
    # stdin at /dev/null, as a script's background job has it: no control channel, no exit at
    # its end; the server answers until SIGTERM.
    env = {**os.environ, "PYTHONPATH": str(PYTHON_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "utilbot_gateway.devserver", "--key", "dev-key"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the dev gateway printed nothing"
        url = json.loads(process.stdout.readline())["url"]
        time.sleep(0.5)
        assert process.poll() is None, "the dev gateway exited at the end of a /dev/null stdin"

        async def identify() -> dict:
            async with connect(url + "?v=1") as ws:
                json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))  # Hello
                await ws.send(json.dumps(IDENTIFY))
                return json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))

        assert run(identify())["t"] == "bot_connect_success"
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

"""The utilbot-gateway command-line client against the dev gateway: its JSON lines out, its
commands in, its exit status. Needs `swift build` (the debug binary) and the dev gateway."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("UBG_CLI", ROOT / ".build" / "debug" / "utilbot-gateway"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "bindings" / "python")}


class Process:
    """A subprocess with line-oriented stdout and a deadline on every read."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or ENV
        )
        self.buffer = b""

    def line(self, timeout: float = 10) -> str:
        # Reads the descriptor directly: a buffered reader would hide lines from select().
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.process.stdout], [], [], max(0, deadline - time.monotonic()))
            assert ready, f"no output line in time (have {self.buffer!r})"
            chunk = os.read(self.process.stdout.fileno(), 65536)
            assert chunk, f"exited with {self.process.wait()}: {self.process.stderr.read().decode()}"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def write(self, text: str) -> None:
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def gateway():
    started: list[Process] = []

    def start(*arguments: str) -> tuple[Process, dict[str, Any]]:
        server = Process([sys.executable, "-m", "utilbot_gateway.devserver", "--heartbeat", "500", "--heartbeat-grace", "2000", *arguments])
        started.append(server)
        return server, json.loads(server.line())

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def cli():
    started: list[Process] = []

    def start(*arguments: str, env: dict[str, str] | None = None) -> Process:
        assert CLI.exists(), f"{CLI} is missing: run swift build"
        process = Process([str(CLI), "connect", *arguments], env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def read_until(process: Process, kind: str, timeout: float = 10) -> list[dict[str, Any]]:
    """Lines up to and including the first of `kind`."""
    lines: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        lines.append(json.loads(process.line(max(0.1, deadline - time.monotonic()))))
        if lines[-1]["kind"] == kind:
            return lines


def test_ready_events_send_and_quit(gateway, cli):
    _, info = gateway()
    bot = cli("--url", info["url"], "--key", "dev-key")
    lines = read_until(bot, "ready")
    assert lines == [{"kind": "ready"}]
    success = json.loads(bot.line())
    assert success["kind"] == "event" and success["t"] == "bot_connect_success"
    assert set(success["d"]) == {"bot_id"}
    bot.write('{"send":{"t":"send_servers","d":{"guilds":3,"guildMembers":30,"cachedGuildMembers":10}}}')
    count = json.loads(bot.line())
    assert count == {"kind": "event", "t": "GLOBAL_GUILD_COUNT", "d": {"guilds": 3, "guildMembers": 30, "cachedGuildMembers": 10}}
    bot.write('{"quit":true}')
    assert json.loads(bot.line()) == {"kind": "closed", "code": 1000, "reconnect": False}
    assert bot.process.wait(10) == 0


def test_wrong_key_is_fatal_with_a_non_zero_exit(gateway, cli):
    _, info = gateway()
    bot = cli("--url", info["url"], "--key", "wrong", "--log-level", "debug")
    lines = read_until(bot, "fatal")
    assert lines[0] == {"kind": "error", "e": 4001, "m": "Wrong auth key."}
    assert lines[1]["kind"] == "closed" and lines[1]["code"] == 4001 and lines[1]["reconnect"] is False
    assert lines[-1] == {"kind": "fatal", "code": 4001}
    assert bot.process.wait(10) == 2
    assert b"wrong" not in bot.process.stderr.read()  # the key is never logged


def test_events_without_data_have_d_null_and_unknown_events_pass_through(gateway, cli):
    server, info = gateway()
    bot = cli("--url", info["url"], "--key", "dev-key")
    read_until(bot, "ready")
    bot.line()  # bot_connect_success
    server.write('{"cmd":"send_all","t":"SOMETHING_NEW"}')
    assert json.loads(server.line())["ok"] is True
    assert json.loads(bot.line()) == {"kind": "event", "t": "SOMETHING_NEW", "d": None}


def test_malformed_json_is_a_local_error_and_the_session_goes_on(gateway, cli):
    server, info = gateway("--echo")
    bot = cli("--url", info["url"] + "?v=1&fault_malformed=1", "--key", "dev-key")
    lines = read_until(bot, "error")
    error = lines[-1]
    assert error["e"] is None and error["local"] is True and "malformed" in error["m"]
    bot.write('{"send":{"t":"ping","d":{"n":[1,2]}}}')
    assert json.loads(bot.line()) == {"kind": "event", "t": "ECHO", "d": {"t": "ping", "d": {"n": [1, 2]}}}
    bot.write('{"send":{"t":"ping","d":[1,2]}}')  # d must be an object: refused before sending
    refused = json.loads(bot.line())
    assert refused["kind"] == "error" and refused["local"] is True and "JSON object" in refused["m"]


def test_a_refused_upgrade_reports_its_http_status_and_reconnects(gateway, cli):
    _, info = gateway()
    bot = cli("--url", info["url"] + "?v=1&fault_no_such_fault=1", "--key", "dev-key")
    closed = read_until(bot, "closed")[-1]
    assert closed["code"] == 1006 and closed["reconnect"] is True and closed["http_status"] == 400
    again = json.loads(bot.line())
    assert again["kind"] == "closed" and again["http_status"] == 400  # it keeps trying, with backoff


def test_compression_and_tls_with_the_dev_ca(gateway, cli):
    _, info = gateway("--tls", "--zlib-style", "message")
    bot = cli("--url", info["url"], "--key", "dev-key", "--compression", "zlib", "--ca", info["ca"])
    read_until(bot, "ready")
    bot.write('{"send":{"t":"send_servers","d":{"guilds":1}}}')
    assert json.loads(bot.line())["t"] == "bot_connect_success"
    assert json.loads(bot.line())["d"]["guilds"] == 1


def test_a_send_the_library_refuses_is_reported(gateway, cli):
    _, info = gateway()
    bot = cli("--url", info["url"], "--key", "dev-key")
    read_until(bot, "ready")
    bot.line()
    bot.write('{"send":{"t":"identify","d":{}}}')
    error = json.loads(bot.line())
    assert error["kind"] == "error" and error["local"] is True and "identify" in error["m"]


def test_sigterm_closes_with_1000_and_exits_zero(gateway, cli):
    _, info = gateway()
    bot = cli("--url", info["url"], "--key", "dev-key")
    read_until(bot, "ready")
    bot.line()
    bot.process.send_signal(signal.SIGTERM)
    assert json.loads(bot.line()) == {"kind": "closed", "code": 1000, "reconnect": False}
    assert bot.process.wait(10) == 0


def test_usage_errors_exit_1():
    env = {k: v for k, v in ENV.items() if k != "UTILBOT_GATEWAY_KEY"}
    result = subprocess.run([str(CLI), "connect", "--url", "ws://x/"], capture_output=True, timeout=10, env=env)
    assert result.returncode == 1 and b"no key: use --key-file FILE or set UTILBOT_GATEWAY_KEY" in result.stderr
    result = subprocess.run([str(CLI), "connect", "--key-file", "/nonexistent/key"], capture_output=True, timeout=10)
    assert result.returncode == 1 and b"cannot read the key file /nonexistent/key" in result.stderr
    result = subprocess.run([str(CLI), "connect", "--key", "k", "--url", "http://x/"], capture_output=True, timeout=10)
    assert result.returncode == 1 and b"scheme" in result.stderr


def test_the_key_from_a_file_or_the_environment_never_on_the_command_line(gateway, cli, tmp_path):
    _, info = gateway()
    key_file = tmp_path / "key"
    key_file.write_text("dev-key\n")
    bot = cli("--url", info["url"], "--key-file", str(key_file))
    assert read_until(bot, "ready") == [{"kind": "ready"}]
    assert "dev-key" not in Path(f"/proc/{bot.process.pid}/cmdline").read_bytes().decode(errors="replace")
    from_env = cli("--url", info["url"], env={**ENV, "UTILBOT_GATEWAY_KEY": "dev-key"})
    assert read_until(from_env, "ready") == [{"kind": "ready"}]
    wrong = cli("--url", info["url"], env={**ENV, "UTILBOT_GATEWAY_KEY": "not-the-key"})
    assert read_until(wrong, "fatal")[-1] == {"kind": "fatal", "code": 4001}


def test_usage_says_why_not_to_pass_the_key_on_the_command_line():
    result = subprocess.run([str(CLI), "--help"], capture_output=True, timeout=10)
    assert result.returncode == 0 and b"/proc/PID/cmdline" in result.stdout and b"--key-file" in result.stdout


def test_proxy_from_the_flag_or_the_environment_and_no_proxy(gateway, cli):
    # microsocks (installed by scripts/bootstrap.sh) with a password: a wrong one proves which
    # proxy, if any, the CLI used.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    socks = subprocess.Popen(
        ["/usr/bin/microsocks", "-i", "127.0.0.1", "-p", str(port), "-u", "bot", "-P", "pw"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        _, info = gateway()
        bot = cli("--url", info["url"], "--key", "dev-key", "--proxy", f"socks5h://bot:pw@127.0.0.1:{port}")
        assert read_until(bot, "ready")[-1] == {"kind": "ready"}
        wrong = {**ENV, "http_proxy": f"socks5h://bot:nope@127.0.0.1:{port}"}
        refused = cli("--url", info["url"], "--key", "dev-key", "--log-level", "none", env=wrong)
        closed = read_until(refused, "closed")[-1]
        assert closed["reconnect"] is True
        direct = cli("--url", info["url"], "--key", "dev-key", "--no-proxy", env=wrong)
        assert read_until(direct, "ready")[-1] == {"kind": "ready"}
    finally:
        socks.terminate()
        socks.wait(10)

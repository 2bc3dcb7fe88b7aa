"""The command line: parse flags, make certificates, serve, announce, obey stdin, exit cleanly."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .compression import ZLIB_STYLES
from .config import DEFAULT_HEARTBEAT_MS, DEFAULT_KEY, Config
from .control import Control, read_stdin_lines, serve_control, write_line
from .gateway import Gateway
from .protocol import HELLO_SPELLINGS

log = logging.getLogger("utilbot_gateway.devserver")


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _port(text: str) -> int:
    value = _milliseconds(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("a port is 0-65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    summary, _, details = (PACKAGE_DOC or "").partition("\n")
    parser = argparse.ArgumentParser(
        prog="python3 -m utilbot_gateway.devserver",
        description=summary,
        epilog=details,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address or name to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port (default 0: a free one)")
    parser.add_argument("--tls", action="store_true", help="serve wss with a generated CA and localhost certificate")
    parser.add_argument("--certdir", help="where the certificates go (default: a temporary directory, removed at exit)")
    parser.add_argument(
        "--heartbeat", type=_milliseconds, default=DEFAULT_HEARTBEAT_MS, metavar="MS",
        help=f"heartbeat interval sent in Hello (default {DEFAULT_HEARTBEAT_MS})",
    )
    parser.add_argument(
        "--heartbeat-grace", type=_milliseconds, default=None, metavar="MS",
        help="how late a heartbeat may be before 4006 (default: a quarter of the interval)",
    )
    parser.add_argument(
        "--strict-heartbeat", action="store_true",
        help="hold every connection to a fixed heartbeat schedule anchored on the Hello, with zero grace "
        "(per connection: strict_heartbeat=1|0)",
    )
    parser.add_argument(
        "--key", action="append", dest="keys", metavar="KEY",
        help=f"an accepted identify key; repeatable (default: {DEFAULT_KEY})",
    )
    parser.add_argument(
        "--zlib-style", choices=ZLIB_STYLES, default="stream", help="zlib style when compression=zlib (default stream)"
    )
    parser.add_argument(
        "--hello-spelling", choices=HELLO_SPELLINGS, default="heartbeat",
        help="field name of the interval in Hello (default heartbeat; hearbeat is the docs' example)",
    )
    parser.add_argument("--echo", action="store_true", help="answer unknown op 1 events with an ECHO event")
    parser.add_argument(
        "--stamp",
        action="store_true",
        help='add "seq": N (0, 1, 2, ... per connection) to the d of every op 0 event, to check for gaps',
    )
    parser.add_argument(
        "--no-stdin",
        action="store_true",
        help="no control channel on stdin, even on a pipe or a terminal; run until SIGTERM or SIGINT. Without "
        "it, stdin is the control channel only when it is a pipe or a terminal (the server then exits at its "
        "end); started in the background with stdin at /dev/null or a file, it just serves",
    )
    parser.add_argument("--verbose", action="store_true", help="log every connection event to stderr")
    return parser


def config_from(arguments: argparse.Namespace) -> Config:
    return Config(
        host=arguments.host,
        port=arguments.port,
        tls=arguments.tls,
        certdir=arguments.certdir,
        heartbeat_ms=arguments.heartbeat,
        heartbeat_grace_ms=arguments.heartbeat_grace,
        strict_heartbeat=arguments.strict_heartbeat,
        keys=list(arguments.keys) if arguments.keys else [DEFAULT_KEY],
        zlib_style=arguments.zlib_style,
        hello_spelling=arguments.hello_spelling,
        echo=arguments.echo,
        stamp=arguments.stamp,
        verbose=arguments.verbose,
    )


def _extra_certificate_hosts(host: str) -> tuple[str, ...]:
    try:
        if ipaddress.ip_address(host).is_unspecified:
            return ()
    except ValueError:
        pass
    return (host,)


async def run(config: Config, *, use_stdin: bool) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    temporary: str | None = None
    gateway = Gateway(config)
    control_task: asyncio.Task[None] | None = None
    try:
        tls = None
        announcement: dict[str, object] = {}
        if config.tls:
            from .certificates import make_certificates, server_context

            if config.certdir:
                directory = Path(config.certdir)
                directory.mkdir(parents=True, exist_ok=True)
            else:
                temporary = tempfile.mkdtemp(prefix="utilbot-devserver-")
                directory = Path(temporary)
            paths = make_certificates(directory, _extra_certificate_hosts(config.host))
            tls = server_context(paths)
        try:
            await gateway.start(tls)
        except OSError as error:
            log.error("cannot listen on %s port %d: %s", config.host, config.port, error)
            return 1
        announcement = {"url": gateway.url(config.tls), "port": gateway.port}
        if config.tls:
            announcement["ca"] = str(paths.ca)
        write_line(json.dumps(announcement))

        if use_stdin:
            control_task = asyncio.create_task(serve_control(Control(gateway), read_stdin_lines(loop)))
            control_task.add_done_callback(lambda _: stop.set())
        await stop.wait()
        log.info("shutting down")
        return 0
    finally:
        if control_task is not None and not control_task.done():
            control_task.cancel()
        await gateway.shutdown()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def stdin_is_a_channel() -> bool:
    """Whether stdin is something a caller keeps open to send commands and to stop the server by
    closing it: a pipe, a socket or a terminal. /dev/null (a background job's stdin), a file or
    no stdin at all is not: the server then serves until it is signalled."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="devserver %(levelname)s: %(message)s")
    log.setLevel(logging.INFO if arguments.verbose else logging.WARNING)
    # websockets' own logs: failed handshakes and TLS errors are what bad clients cause.
    logging.getLogger("websockets").setLevel(logging.WARNING if arguments.verbose else logging.ERROR)
    if arguments.heartbeat == 0:
        print("devserver: --heartbeat must be at least 1 ms", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(config_from(arguments), use_stdin=not arguments.no_stdin and stdin_is_a_channel()))
    except KeyboardInterrupt:
        return 0

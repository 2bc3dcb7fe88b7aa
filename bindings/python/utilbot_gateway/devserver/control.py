"""The control channel: one JSON command per line on stdin, one JSON answer per line on stdout.

Commands run one at a time, in order; each gets exactly one answer line, `{"ok":true,...}` or
`{"ok":false,"error":"..."}`. Empty lines are skipped. End of input stops the server.

    {"cmd":"stats"}                        {"ok":true,"stats":{...}} (see Stats.snapshot)
    {"cmd":"close_all","code":CODE}        close every connection that is not already closing or
                                           stalled; op -1 first for 1000/4000-4007; answers once
                                           they are gone: {"ok":true,"closed":N}
    {"cmd":"close_some","fraction":F,"codes":[C,...]}
                                           close a random fraction (0..1) of the connections that are
                                           neither closing nor stalled, each with a code picked at
                                           random from the list; does not wait: {"ok":true,"closed":N}
    {"cmd":"stop_acks"}                    stop answering heartbeats (current and future connections)
    {"cmd":"resume_acks"}                  answer them again
    {"cmd":"send_all","t":NAME,"d":DATA}   op 0 event to every identified bot ("d" optional; left
                                           out of the event when not given): {"ok":true,"sent":N}
    {"cmd":"send_raw_all","text":"..."}    that text as is (compressed where zlib is on) to every
                                           identified bot: {"ok":true,"sent":N}
    {"cmd":"stall_all"}                    stall every current connection: {"ok":true,"stalled":N}
    {"cmd":"received"}                     {"ok":true,"received":[{"conn":ID,"op":1,"t":T,"d":D},...],
                                           "dropped":N}: the op 1 payloads received since the last
                                           `received`, in arrival order (identify's key as "***")
    {"cmd":"keys","keys":["k",...]}        replace the accepted keys
    {"cmd":"connections"}                  {"ok":true,"connections":[{"conn","path","identified",
                                           "bot_id","compression","zlib_style","closing","stalled",
                                           "outbox" (messages waiting to be written),
                                           "strict_heartbeat"}]}
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from typing import Any, Awaitable, Callable

from .faults import valid_close_code
from .gateway import Gateway

Answer = dict[str, Any]


class CommandError(ValueError):
    pass


class Control:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._commands: dict[str, Callable[[dict[str, Any]], Awaitable[Answer]]] = {
            "stats": self._stats,
            "close_all": self._close_all,
            "close_some": self._close_some,
            "stop_acks": self._stop_acks,
            "resume_acks": self._resume_acks,
            "send_all": self._send_all,
            "send_raw_all": self._send_raw_all,
            "stall_all": self._stall_all,
            "received": self._received,
            "keys": self._keys,
            "connections": self._connections,
        }

    async def execute(self, line: str) -> Answer:
        try:
            command = json.loads(line)
        except ValueError as error:
            return {"ok": False, "error": f"invalid JSON: {error}"}
        if not isinstance(command, dict):
            return {"ok": False, "error": "a command is a JSON object"}
        name = command.get("cmd")
        handler = self._commands.get(name) if isinstance(name, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown command {name!r} (known: {', '.join(self._commands)})"}
        try:
            return await handler(command)
        except CommandError as error:
            return {"ok": False, "error": str(error)}

    async def _stats(self, command: dict[str, Any]) -> Answer:
        return {"ok": True, "stats": self.gateway.snapshot()}

    async def _close_all(self, command: dict[str, Any]) -> Answer:
        code = command.get("code")
        if type(code) is not int or not valid_close_code(code):
            raise CommandError("close_all needs a valid close code: 1000-1003, 1007-1014 or 3000-4999")
        return {"ok": True, "closed": await self.gateway.close_all(code)}

    async def _close_some(self, command: dict[str, Any]) -> Answer:
        fraction = command.get("fraction")
        codes = command.get("codes")
        if type(fraction) not in (int, float) or not 0 <= fraction <= 1:
            raise CommandError("close_some needs a fraction from 0 to 1")
        if not isinstance(codes, list) or not codes or not all(type(c) is int and valid_close_code(c) for c in codes):
            raise CommandError("close_some needs a non-empty list of valid close codes")
        return {"ok": True, "closed": self.gateway.close_some(float(fraction), codes)}

    async def _stop_acks(self, command: dict[str, Any]) -> Answer:
        self.gateway.set_acks(False)
        return {"ok": True}

    async def _resume_acks(self, command: dict[str, Any]) -> Answer:
        self.gateway.set_acks(True)
        return {"ok": True}

    async def _send_all(self, command: dict[str, Any]) -> Answer:
        name = command.get("t")
        if not isinstance(name, str):
            raise CommandError("send_all needs a string t")
        sent = self.gateway.send_all(name, command.get("d"), with_data="d" in command)
        return {"ok": True, "sent": sent}

    async def _send_raw_all(self, command: dict[str, Any]) -> Answer:
        text = command.get("text")
        if not isinstance(text, str):
            raise CommandError("send_raw_all needs a string text")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise CommandError("send_raw_all: text is not valid Unicode (lone surrogate)") from None
        return {"ok": True, "sent": self.gateway.send_raw_all(text)}

    async def _stall_all(self, command: dict[str, Any]) -> Answer:
        return {"ok": True, "stalled": self.gateway.stall_all()}

    async def _received(self, command: dict[str, Any]) -> Answer:
        received, dropped = self.gateway.stats.take_received()
        return {"ok": True, "received": received, "dropped": dropped}

    async def _keys(self, command: dict[str, Any]) -> Answer:
        keys = command.get("keys")
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise CommandError("keys needs an array of strings")
        self.gateway.set_keys(keys)
        return {"ok": True}

    async def _connections(self, command: dict[str, Any]) -> Answer:
        return {"ok": True, "connections": self.gateway.connections()}


def read_stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Reads stdin line by line on a daemon thread (works for pipes, terminals and files alike);
    the queue gets each line, then None at end of input."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop is closed: the server is exiting anyway

    def read() -> None:
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered
        # reader would hold its lock, and the interpreter aborts when it exits under it.
        pending = b""
        try:
            descriptor = sys.stdin.fileno() if sys.stdin is not None else -1
            while descriptor >= 0:
                chunk = os.read(descriptor, 65536)
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    put(line.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
        if pending:
            put(pending.decode("utf-8", "replace"))
        put(None)

    threading.Thread(target=read, name="devserver-stdin", daemon=True).start()
    return queue


def write_line(text: str) -> None:
    """Writes one line to stdout and flushes; a reader that went away is not an error."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


async def serve_control(control: Control, lines: asyncio.Queue[str | None]) -> None:
    """Answers commands until end of input."""
    while True:
        line = await lines.get()
        if line is None:
            return
        if not line.strip():
            continue
        write_line(json.dumps(await control.execute(line)))

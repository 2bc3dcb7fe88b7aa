"""One bot's connection to the gateway: the protocol state machine.

Hello, the heartbeat watchdog, ACKs, identify, send_servers, echo, op -1 errors and the faults
asked for on the URL. Everything the session sends goes through one outbox, written by one task,
so messages leave in the order they were decided (which the per-connection zlib stream needs
too) and a close always follows the error that explains it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from websockets.exceptions import ConnectionClosed

from . import protocol
from .compression import Encoder, make_encoder
from .connection import GatewayConnection
from .counts import parse_report
from .faults import INJECTED_ERROR, MALFORMED_TEXT
from .heartbeat import StrictSchedule, late_ms, margin_ms
from .protocol import GatewayError

if TYPE_CHECKING:
    from .gateway import Gateway

log = logging.getLogger("utilbot_gateway.devserver")


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass(frozen=True)
class _Timed:
    """A message whose writing is noted: `on_written` gets the loop time right before it is
    handed to the transport (the Hello, which anchors the strict heartbeat schedule)."""

    text: str
    on_written: Callable[[float], None]


@dataclass(frozen=True)
class _Flooded:
    """A FLOOD event in the outbox (counted out of the flood's window when it is written)."""

    text: str


#: How many FLOOD events may wait in the outbox at a time: the flood never buffers more than
#: this in the server; the writer's drain paces it to what the client reads.
FLOOD_WINDOW = 64
#: How long the strict watchdog, past a deadline, lets the reader judge messages that arrived in
#: time but are not handled yet (one of them may be the beat) before it closes anyway.
STRICT_PENDING_LIMIT_S = 1.0


def _close_reason(text: str) -> str:
    """A close frame's reason holds at most 123 bytes of UTF-8."""
    data = text.encode("utf-8")[:123]
    return data.decode("utf-8", "ignore")


class Session:
    def __init__(self, gateway: Gateway, ws: GatewayConnection, conn_id: int) -> None:
        self.gateway = gateway
        self.ws = ws
        self.id = conn_id
        self.params = ws.params
        self.faults = self.params.faults
        self.encoder: Encoder | None = None
        self.zlib_style: str | None = None
        self.identified = False
        self.bot_id: str | None = None
        self.acks_sent = 0
        self.closing = False  # the gateway decided to close: nothing more is sent or handled
        self.seq = 0  # the next "seq" stamped into an op 0 event (--stamp)
        self.close_code: int | None = None  # the code the gateway closes with
        self.finished = asyncio.Event()  # set once the connection is gone and accounted for
        self._outbox: asyncio.Queue[str | _Close | _Flooded | _Timed] = asyncio.Queue()
        self._flood_queued = 0  # FLOOD events in the outbox
        self._flood_room = asyncio.Event()  # set when the writer took one out
        self._timers: list[asyncio.Task[None]] = []
        self._deadline = 0.0  # loop time by which the next heartbeat must arrive (normal watchdog)
        self.strict = False  # the strict watchdog (heartbeat.py) instead of the normal one
        self._schedule: StrictSchedule | None = None  # its schedule, once the Hello is queued
        self._strict_record: dict[str, Any] | None = None  # its record in the stats

    @property
    def stalled(self) -> bool:
        return self.ws.stalled

    # -----------------------------------------------------------------------------------------
    # Running

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name=f"conn-{self.id}-writer")
        try:
            self._start()
            await self._read_loop()
            if self.closing and not self.stalled and not writer.done():
                # The close the gateway started: let the writer finish its handshake.
                await asyncio.wait([writer], timeout=self.gateway.config.close_timeout_s + 1)
        finally:
            self._cancel_timers()
            if not writer.done():
                writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _start(self) -> None:
        params = self.params
        config = self.gateway.config
        if params.compression == "zlib":
            self.zlib_style = params.zlib_style or config.zlib_style
            self.encoder = make_encoder(self.zlib_style)
        if params.version != protocol.SUPPORTED_VERSION:
            log.info("conn %d: wrong version %r", self.id, params.version)
            self.close(protocol.WRONG_VERSION)
            return
        if params.compression is not None and params.compression != "zlib":
            log.info("conn %d: unknown compression %r", self.id, params.compression)
            self.close(protocol.WRONG_VERSION, message=protocol.UNKNOWN_COMPRESSION)
            return
        if self.faults.no_hello:
            log.info("conn %d: fault_no_hello: stalled without Hello", self.id)
            self.stall()
            return
        hello = protocol.encode(protocol.hello(config.heartbeat_ms, params.hello_spelling or config.hello_spelling))
        self.strict = params.strict_heartbeat if params.strict_heartbeat is not None else config.strict_heartbeat
        if self.strict:
            # Anchored on when the Hello is written; until then, on now (a little earlier).
            self._schedule = StrictSchedule(self._now(), config.heartbeat_ms / 1000)
            self._strict_record = self.gateway.stats.strict_connection(self.id)
            self._outbox.put_nowait(_Timed(hello, self._schedule.rebase))
        else:
            self.send_text(hello)
        self._deadline = self._now() + self.gateway.heartbeat_timeout_s
        self._timers.append(asyncio.create_task(self._watchdog(), name=f"conn-{self.id}-watchdog"))
        if self.faults.stall_after_ms is not None:
            self._after(self.faults.stall_after_ms, self._fault_stall)

    async def _read_loop(self) -> None:
        try:
            async for message in self.ws:
                arrived = self.ws.take_arrival()
                if self.stalled:
                    continue
                if self.closing:
                    # Not answered any more, but counted: what the client sent before it saw our
                    # close frame did arrive (soak tests account for every send).
                    self._record_late(message)
                    continue
                if isinstance(message, bytes):
                    log.info("conn %d: dropped a binary message (%d bytes)", self.id, len(message))
                    continue
                self._handle(message, arrived)
        except ConnectionClosed:
            pass

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                if isinstance(item, _Close):
                    await self.ws.close(item.code, item.reason)
                    return
                if self.stalled:
                    continue
                flooded = isinstance(item, _Flooded)
                if flooded:
                    self._flood_queued -= 1
                    self._flood_room.set()
                    item = item.text
                elif isinstance(item, _Timed):
                    item.on_written(self._now())
                    item = item.text
                if self.encoder is not None:
                    for part in self.encoder.messages(item.encode("utf-8")):
                        await self.ws.send(part)
                else:
                    await self.ws.send(item)
                if flooded:
                    self.gateway.stats.flood_events_total += 1
            except ConnectionClosed:
                return

    # -----------------------------------------------------------------------------------------
    # Sending

    def send(self, payload: dict[str, Any]) -> bool:
        if self.gateway.config.stamp and payload.get("op") == 0 and not (self.closing or self.stalled):
            data = payload.get("d")
            payload = {**payload, "d": {**(data if isinstance(data, dict) else {}), "seq": self.seq}}
            self.seq += 1
        return self.send_text(protocol.encode(payload))

    def send_text(self, text: str) -> bool:
        """Queues a message; False when the connection is closing or stalled (nothing is sent)."""
        if self.closing or self.stalled:
            return False
        self._outbox.put_nowait(text)
        return True

    def close(
        self,
        code: int,
        *,
        message: str | None = None,
        errors: list[str] | None = None,
        data: list[Any] | None = None,
        send_error: bool | None = None,
    ) -> bool:
        """Starts the gateway's close: the op -1 error (by default only for the gateway's own
        codes, 1000 and 4000-4007), then the close frame with the same code and the message as
        its reason. False when a close is already under way or the connection is stalled."""
        if self.closing or self.stalled:
            return False
        if send_error is None:
            send_error = code in protocol.MESSAGES
        reason = ""
        if send_error:
            payload = protocol.error(code, message, errors, data)
            self._outbox.put_nowait(protocol.encode(payload))
            reason = payload["m"]
        self.closing = True
        self.close_code = code
        self.gateway.stats.closes_by_code[code] += 1
        self._cancel_timers()
        self._outbox.put_nowait(_Close(code, _close_reason(reason)))
        log.info("conn %d: closing with %d", self.id, code)
        return True

    def stall(self) -> bool:
        """Stops sending and handling anything, for good; the TCP connection stays open until the
        client drops it or the server exits. False when already stalled."""
        if self.stalled:
            return False
        self.ws.stall()
        self._cancel_timers()
        while not self._outbox.empty():
            self._outbox.get_nowait()
        log.info("conn %d: stalled", self.id)
        return True

    # -----------------------------------------------------------------------------------------
    # Receiving

    def _handle(self, message: str, arrived: float) -> None:
        payload = protocol.decode(message)
        if payload is None:
            log.info("conn %d: dropped a message that is not a JSON object: %.100r", self.id, message)
            return
        try:
            if protocol.opcode(payload) == protocol.OP_HEARTBEAT:
                self._on_heartbeat(arrived)
                return
            name = payload.get("t")
            self.gateway.stats.record_event(self.id, name, protocol.redacted(name, payload.get("d")))
            self._on_event(protocol.client_event(payload))
        except GatewayError as failure:
            log.info("conn %d: %s %s", self.id, failure.reason, failure.errors or "")
            self.close(failure.code, message=failure.message, errors=failure.errors, data=failure.data)

    def _record_late(self, message: str | bytes) -> None:
        payload = protocol.decode(message) if isinstance(message, str) else None
        if payload is None or payload.get("op") != 1 or not isinstance(payload.get("t"), str):
            return
        name = payload["t"]
        self.gateway.stats.record_event(self.id, name, protocol.redacted(name, payload.get("d")))

    def _on_heartbeat(self, arrived: float) -> None:
        stats = self.gateway.stats
        stats.heartbeats_total += 1
        if self._schedule is not None:
            assert self._strict_record is not None
            margin = self._schedule.beat(arrived)
            stats.record_strict_beat(self._strict_record, margin_ms(margin))
            if margin < 0:
                late = late_ms(margin)
                log.info("conn %d: strict heartbeat %d ms late", self.id, late)
                stats.record_strict_close(self._strict_record, "late", late)
                self.close(protocol.NO_HEARTBEAT)
                return
        else:
            self._deadline = self._now() + self.gateway.heartbeat_timeout_s
        if self.gateway.acks_enabled and self.faults.acks_allowed(self.acks_sent):
            self.acks_sent += 1
            stats.acks_total += 1
            self.send(protocol.ack())
        else:
            log.info("conn %d: heartbeat not acknowledged (fault or stop_acks)", self.id)

    def _on_event(self, event: protocol.ClientEvent) -> None:
        if event.name == protocol.IDENTIFY:
            if self.identified:
                raise GatewayError(protocol.WRONG_IDENTIFY, errors=["Already identified."], data=[None])
            key = protocol.identify_key(event.data)
            if key not in self.gateway.keys:
                raise GatewayError(protocol.WRONG_AUTH_KEY)
            self._on_identified()
        elif not self.identified:
            log.info("conn %d: ignored %r: not identified yet", self.id, event.name)
        elif event.name == protocol.SEND_SERVERS:
            self.gateway.report(self, parse_report(event.data))
        elif self.gateway.config.echo:
            self.send(protocol.event(protocol.ECHO, {"t": event.name, "d": event.data}))
        else:
            log.info("conn %d: ignored unknown event %r", self.id, event.name)

    def _on_identified(self) -> None:
        self.identified = True
        self.bot_id = self.gateway.new_bot_id()
        self.gateway.stats.identifies_total += 1
        log.info("conn %d: identified as bot %s", self.id, self.bot_id)
        faults = self.faults
        if faults.no_ready:
            log.info("conn %d: fault_no_ready: no bot_connect_success", self.id)
        else:
            self.send(protocol.event(protocol.BOT_CONNECT_SUCCESS, {"bot_id": self.bot_id}))
        if faults.malformed:
            log.info("conn %d: fault_malformed", self.id)
            self.send_text(MALFORMED_TEXT)
        if faults.flood > 0:
            log.info("conn %d: fault_flood=%d", self.id, faults.flood)
            self._timers.append(asyncio.create_task(self._flood(faults.flood), name=f"conn-{self.id}-flood"))
        if faults.error is not None:
            log.info("conn %d: fault_error=%d", self.id, faults.error)
            self.close(faults.error, errors=[INJECTED_ERROR], data=[None], send_error=True)
        if faults.close is not None:
            code = faults.close
            if faults.close_after_ms == 0:
                self.close(code)
            else:
                self._after(faults.close_after_ms, lambda: self.close(code))

    # -----------------------------------------------------------------------------------------
    # Timers

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _watchdog(self) -> None:
        if self._schedule is not None:
            await self._strict_watchdog(self._schedule)
            return
        while True:
            remaining = self._deadline - self._now()
            if remaining <= 0:
                log.info("conn %d: no heartbeat in time", self.id)
                self.close(protocol.NO_HEARTBEAT)
                return
            await asyncio.sleep(remaining)

    async def _strict_watchdog(self, schedule: StrictSchedule) -> None:
        """Fires at the deadline itself. Messages that arrived by then but are not handled yet
        (the loop was busy) are left to the reader first: one may be the beat, in time."""
        pending_since: float | None = None
        while True:
            deadline = schedule.deadline
            now = self._now()
            if now < deadline:
                pending_since = None
                await asyncio.sleep(deadline - now)
                continue
            arrivals = self.ws.arrivals
            if arrivals and arrivals[0] <= deadline:
                pending_since = pending_since if pending_since is not None else now
                if now - pending_since < STRICT_PENDING_LIMIT_S:
                    await asyncio.sleep(0.001)
                    continue
            past = margin_ms(deadline - now)  # <= 0
            log.info("conn %d: strict heartbeat: none by the deadline (closing %d ms past it)", self.id, -past)
            assert self._strict_record is not None
            self.gateway.stats.record_strict_close(self._strict_record, "missed", -past)
            self.close(protocol.NO_HEARTBEAT)
            return

    def _after(self, delay_ms: int, action: Callable[[], object]) -> None:
        async def later() -> None:
            await asyncio.sleep(delay_ms / 1000)
            action()

        self._timers.append(asyncio.create_task(later(), name=f"conn-{self.id}-timer"))

    async def _flood(self, count: int) -> None:
        """Queues the FLOOD events, never more than FLOOD_WINDOW at a time; the writer sends them
        as fast as the transport drains. Cancelled (with the timers) by a close or a stall."""
        for seq in range(count):
            while self._flood_queued >= FLOOD_WINDOW:
                self._flood_room.clear()
                await self._flood_room.wait()
            if self.closing or self.stalled:
                return
            self._outbox.put_nowait(_Flooded(protocol.encode(protocol.event(protocol.FLOOD, {"seq": seq}))))
            self._flood_queued += 1
        log.info("conn %d: fault_flood: all %d queued", self.id, count)

    def _fault_stall(self) -> None:
        log.info("conn %d: fault_stall_after_ms", self.id)
        self.stall()

    def _cancel_timers(self) -> None:
        current = asyncio.current_task()
        for task in self._timers:
            if task is not current:
                task.cancel()
        self._timers.clear()

    # -----------------------------------------------------------------------------------------
    # Accounting

    def account_end(self) -> str:
        """Counts how the connection ended, unless the gateway closed it itself (counted when it
        decided to); returns a description for the log."""
        if self.close_code is not None:
            return f"the gateway closed with {self.close_code}"
        stats = self.gateway.stats
        state = self.ws.protocol
        if state.close_rcvd is not None and (state.close_sent is None or state.close_rcvd_then_sent):
            stats.client_closes_by_code[state.close_rcvd.code] += 1
            return f"the client closed with {state.close_rcvd.code}"
        if state.close_sent is not None:
            stats.closes_by_code[state.close_sent.code] += 1  # websockets' own: 1009, 1007, 1001 at exit
            return f"closed with {state.close_sent.code}"
        stats.client_closes_by_code[1006] += 1
        return "the TCP connection ended without a close frame (1006)"

    def describe(self) -> dict[str, Any]:
        return {
            "conn": self.id,
            "path": self.params.path,
            "identified": self.identified,
            "bot_id": self.bot_id,
            "compression": "zlib" if self.encoder is not None else None,
            "zlib_style": self.zlib_style,
            "closing": self.closing,
            "stalled": self.stalled,
            "outbox": self._outbox.qsize(),
            "strict_heartbeat": self.strict,
        }

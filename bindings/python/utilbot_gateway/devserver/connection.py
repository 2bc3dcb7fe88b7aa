"""The WebSocket connection the gateway serves: websockets' ServerConnection plus the ability to
stall, i.e. to become a silent, half-open server.

A stalled connection sends nothing more (not even the automatic answers websockets gives to
pings and close frames) and handles nothing that arrives. Incoming bytes are still read from the
socket and discarded, so that the end of the TCP connection is noticed and the connection is
cleaned up when the client finally gives up; the client cannot tell the difference from a server
that stopped reading, since nothing it sends is ever answered.

It also notes when each message arrived (when the event loop parsed its last frame), for the
strict heartbeat watchdog: the session handles messages a little later, and under load later still.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import DATA_OPCODES, Frame


class GatewayConnection(ServerConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stalled = False
        self.params: Any = None  # ConnectionParams, set by the gateway's process_request
        # Loop time at which each message not yet taken by the session arrived, oldest first: one
        # entry per message, appended when its last frame is parsed, taken by the session's reader.
        self.arrivals: deque[float] = deque()

    def stall(self) -> None:
        self.stalled = True

    def data_received(self, data: bytes) -> None:
        if self.stalled:
            return  # read and discarded: nothing is parsed, nothing is answered
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode in DATA_OPCODES and event.fin:
            self.arrivals.append(self.loop.time())
        super().process_event(event)

    def take_arrival(self) -> float:
        """When the message the session is about to handle arrived (now, if unknown)."""
        return self.arrivals.popleft() if self.arrivals else self.loop.time()

    def send_data(self) -> None:
        if self.stalled:
            self.protocol.data_to_send()  # discard whatever websockets wanted to write
            return
        super().send_data()

    def abort(self) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None:
            transport.abort()

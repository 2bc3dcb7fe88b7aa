"""The WebSocket connection the gateway serves: websockets' ServerConnection plus the ability to
stall, i.e. to become a silent, half-open server.

A stalled connection sends nothing more (not even the automatic answers websockets gives to
pings and close frames) and handles nothing that arrives. Incoming bytes are still read from the
socket and discarded, so that the end of the TCP connection is noticed and the connection is
cleaned up when the client finally gives up; the client cannot tell the difference from a server
that stopped reading, since nothing it sends is ever answered.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.server import ServerConnection


class GatewayConnection(ServerConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stalled = False
        self.params: Any = None  # ConnectionParams, set by the gateway's process_request

    def stall(self) -> None:
        self.stalled = True

    def data_received(self, data: bytes) -> None:
        if self.stalled:
            return  # read and discarded: nothing is parsed, nothing is answered
        super().data_received(data)

    def send_data(self) -> None:
        if self.stalled:
            self.protocol.data_to_send()  # discard whatever websockets wanted to write
            return
        super().send_data()

    def abort(self) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None:
            transport.abort()

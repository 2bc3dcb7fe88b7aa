"""What the gateway counts and records, for the `stats` and `received` control commands."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

#: How many received events `received` keeps between two calls; older ones are dropped (and
#: counted in its `dropped` field) so that a server nobody asks never grows without bound.
RECEIVED_LIMIT = 100_000


class Stats:
    def __init__(self, received_limit: int = RECEIVED_LIMIT) -> None:
        self.connects_total = 0  # WebSocket handshakes completed
        self.identifies_total = 0  # successful identifies (bot_connect_success sent, or withheld by fault_no_ready)
        self.heartbeats_total = 0  # op 10 received (answered or not)
        self.acks_total = 0  # op 11 sent
        self.flood_events_total = 0  # FLOOD events written (fault_flood)
        self.closes_by_code: Counter[int] = Counter()  # closes the gateway started, by code
        self.client_closes_by_code: Counter[int] = Counter()  # closes the client started; 1006: no close frame
        self.events_by_name: Counter[str] = Counter()  # op 1 events received with a string `t`, by `t`
        self._received: deque[dict[str, Any]] = deque(maxlen=received_limit)
        self._received_dropped = 0

    def record_event(self, conn: int, name: Any, data: Any) -> None:
        """An op 1 payload as it arrived (the identify key already redacted)."""
        if isinstance(name, str):
            self.events_by_name[name] += 1
        if len(self._received) == self._received.maxlen:
            self._received_dropped += 1
        self._received.append({"conn": conn, "op": 1, "t": name, "d": data})

    def take_received(self) -> tuple[list[dict[str, Any]], int]:
        """The events received since the last call, in arrival order, and how many were dropped."""
        received, dropped = list(self._received), self._received_dropped
        self._received.clear()
        self._received_dropped = 0
        return received, dropped

    def snapshot(self, *, connections: int, identified: int, global_counts: dict[str, int]) -> dict[str, Any]:
        return {
            "connections": connections,
            "identified": identified,
            "connects_total": self.connects_total,
            "identifies_total": self.identifies_total,
            "heartbeats_total": self.heartbeats_total,
            "acks_total": self.acks_total,
            "flood_events_total": self.flood_events_total,
            "closes_by_code": {str(code): n for code, n in sorted(self.closes_by_code.items())},
            "client_closes_by_code": {str(code): n for code, n in sorted(self.client_closes_by_code.items())},
            "events_by_name": dict(sorted(self.events_by_name.items())),
            "global": global_counts,
        }

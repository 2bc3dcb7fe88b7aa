"""What the gateway counts and records, for the `stats` and `received` control commands."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

#: How many received events `received` keeps between two calls; older ones are dropped (and
#: counted in its `dropped` field) so that a server nobody asks never grows without bound.
RECEIVED_LIMIT = 100_000
#: How many connections with the strict heartbeat watchdog `stats` describes (the latest ones).
STRICT_CONNECTIONS_LIMIT = 100


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
        # The strict heartbeat watchdog (heartbeat.py), over every connection that used it:
        self.strict_beats_total = 0  # heartbeats it judged (in time or late)
        self.strict_min_margin_ms: int | None = None  # the smallest margin of them all
        self.strict_late_closes_total = 0  # its 4006 closes: a late beat, or none by the deadline
        self.strict_last_late_ms: int | None = None  # how late, at the latest of those closes
        self._strict_connections: deque[dict[str, Any]] = deque(maxlen=STRICT_CONNECTIONS_LIMIT)

    def strict_connection(self, conn: int) -> dict[str, Any]:
        """The record of a connection under the strict watchdog, listed by `stats` (the latest
        STRICT_CONNECTIONS_LIMIT of them); the session updates it in place."""
        record: dict[str, Any] = {"conn": conn, "beats": 0, "min_margin_ms": None, "last_margin_ms": None,
                                  "closed": None, "late_ms": None}  # fmt: skip
        self._strict_connections.append(record)
        return record

    def record_strict_beat(self, record: dict[str, Any], margin_ms: int) -> None:
        self.strict_beats_total += 1
        record["beats"] += 1
        record["last_margin_ms"] = margin_ms
        if record["min_margin_ms"] is None or margin_ms < record["min_margin_ms"]:
            record["min_margin_ms"] = margin_ms
        if self.strict_min_margin_ms is None or margin_ms < self.strict_min_margin_ms:
            self.strict_min_margin_ms = margin_ms

    def record_strict_close(self, record: dict[str, Any], how: str, late_ms: int) -> None:
        """`how`: "late" (a beat came after its deadline, `late_ms` after it) or "missed" (no beat
        by the deadline; the watchdog fired `late_ms` after it)."""
        self.strict_late_closes_total += 1
        self.strict_last_late_ms = late_ms
        record["closed"] = how
        record["late_ms"] = late_ms

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
            "strict_heartbeat_beats_total": self.strict_beats_total,
            "strict_heartbeat_min_margin_ms": self.strict_min_margin_ms,
            "strict_heartbeat_late_closes_total": self.strict_late_closes_total,
            "strict_heartbeat_last_late_ms": self.strict_last_late_ms,
            "strict_heartbeat_connections": [dict(record) for record in self._strict_connections],
        }

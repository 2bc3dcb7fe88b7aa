"""The strict heartbeat schedule (`strict_heartbeat=1` on the URL, or --strict-heartbeat).

The normal watchdog wants each heartbeat within interval + grace of the previous one (or of the
Hello). The strict one holds the client to a fixed schedule anchored on the Hello, with no grace:
with the Hello written at time H and the interval I, slot k ends at H + (k+1)*I.

    - The first beat (a client sends it at once after the Hello) covers slot 0; it is due by H + I.
    - Every later beat arriving at time t covers slot ceil((t - H) / I) (never an earlier slot
      than the previous beat's).
    - After a beat that covers slot k, the next one is due by H + (k+1)*I exactly.

A beat that arrives after its deadline fails the connection (op -1 e 4006, close 4006); so does
no beat at all by the deadline (the watchdog fires then). A beat's margin is its deadline minus
its arrival: the closer to 0, the closer the client cut it; negative means late.

Pure: times are plain numbers (seconds on one monotonic clock), so the rules can be tested alone.
"""

from __future__ import annotations

import math


class StrictSchedule:
    def __init__(self, hello_at: float, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("the interval must be positive")
        self.hello_at = hello_at
        self.interval_s = interval_s
        self.slot: int | None = None  # the slot the latest beat covered; None before the first

    @property
    def deadline(self) -> float:
        """When the next beat is due at the latest."""
        covered = self.slot if self.slot is not None else 0
        return self.hello_at + (covered + 1) * self.interval_s

    def rebase(self, hello_at: float) -> None:
        """Moves the anchor to when the Hello was really written; only before the first beat (a
        beat that came first has already been judged against the earlier anchor)."""
        if self.slot is None:
            self.hello_at = hello_at

    def beat(self, arrived_at: float) -> float:
        """Judges a beat that arrived at `arrived_at` and returns its margin (deadline - arrival, in
        seconds). In time (margin >= 0), the beat covers its slot and the deadline moves on; late
        (margin < 0), nothing changes: the connection is failed."""
        margin = self.deadline - arrived_at
        if margin >= 0:
            if self.slot is None:
                self.slot = 0
            else:
                slot = math.ceil((arrived_at - self.hello_at) / self.interval_s)
                self.slot = max(self.slot, slot)
        return margin


def margin_ms(margin_s: float) -> int:
    """A margin in whole milliseconds, rounded down: negative exactly when the beat was late."""
    return math.floor(margin_s * 1000)


def late_ms(margin_s: float) -> int:
    """How late a beat with that (negative) margin was, in whole milliseconds, at least 1."""
    return max(1, math.ceil(-margin_s * 1000))

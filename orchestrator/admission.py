"""Admission control: how many replies the engine works on at once.

Past capacity, new work is refused at once with a retryable `busy` rather than queued behind
everyone else (where it would wait half a minute and then fail), so admitted replies keep
their latency. Capacity is `ENGINE_MAX_REPLIES_IN_FLIGHT`; `/metrics` shows the load.
"""

from __future__ import annotations

from orchestrator.metrics import REPLIES_IN_FLIGHT, REPLY_CAPACITY


class Admission:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_flight = 0
        REPLY_CAPACITY.set(capacity)
        REPLIES_IN_FLIGHT.set(0)

    def enter(self) -> bool:
        """Admits one reply if there is room; False when the engine is at capacity."""
        if self.in_flight >= self.capacity:
            return False
        self.in_flight += 1
        REPLIES_IN_FLIGHT.set(self.in_flight)
        return True

    def leave(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        REPLIES_IN_FLIGHT.set(self.in_flight)

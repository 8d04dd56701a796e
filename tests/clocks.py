"""A clock for tests and benchmarks that moves only when told (agent.control.types.Clock)."""

from __future__ import annotations


class FakeClock:
    """Time moves only when advance() is called."""

    def __init__(self, wall: float = 1_790_000_000.0, monotonic: float = 1000.0) -> None:
        self._wall, self._monotonic = wall, monotonic

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._wall += seconds

"""The interval a device actually achieves: the median of its recent sampling intervals.

Published as `sample_interval` on the device's retained state, so a central system (and the
doctor, through the agent's status line) sees a device that is sampled less often than
configured. A device whose algorithm needs a fixed cadence says when it is not getting it.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Optional

WINDOW = 60  # intervals
# Off by more than this, a fixed-cadence algorithm (the SGP40's VOC index) is fed wrong timing.
TOLERANCE = 0.05
# Judged only once this many intervals were seen: a start-up is not a starved device.
MIN_INTERVALS = 5


class Cadence:
    def __init__(self, interval: float, fixed: bool = False, window: int = WINDOW) -> None:
        self.interval, self.fixed = interval, fixed
        self._times: deque[float] = deque(maxlen=window + 1)

    def sampled(self, monotonic: float) -> None:
        self._times.append(monotonic)

    def achieved(self) -> Optional[float]:
        """Median seconds between the recent samples, or None before the second."""
        if len(self._times) < 2:
            return None
        times = list(self._times)
        return statistics.median(b - a for a, b in zip(times, times[1:]))

    def off(self) -> Optional[float]:
        """The achieved interval when it is off the configured one by more than the tolerance
        (judged once enough intervals were seen), else None."""
        achieved = self.achieved()
        if achieved is None or len(self._times) <= MIN_INTERVALS:
            return None
        if abs(achieved - self.interval) <= TOLERANCE * self.interval:
            return None
        return achieved

    def problem(self) -> Optional[str]:
        """Why this device's fixed-cadence algorithm is not being served, or None."""
        achieved = self.off()
        if not self.fixed or achieved is None:
            return None
        return (
            f"sampled every {achieved:.2f} s, its algorithm needs {self.interval:g} s: "
            "the bus is overloaded, its results are not trustworthy"
        )

"""Virtual time for a bus scheduler: hours of schedule in seconds, for tests and benchmarks.

Time passes when the scheduler waits for the next deadline and when a transaction is charged
(a simulated bus charges each transfer its time on the wire); a step that does not come back
within `grace` real seconds is charged its step timeout, as if the scheduler had waited it out.
"""

from __future__ import annotations

import queue
from typing import Any

from agent.sensing.operation import Outcome
from agent.sensing.scheduler import BusScheduler
from drivers.sim.bus import RecentList, Transfer, VirtualClock

I2C_HZ = 100_000  # standard mode


def transfer_seconds(transfer: Transfer) -> float:
    """Time on the wire: a start, the address byte and each data byte with its ACK (9 bits)."""
    return (1 + len(transfer.data)) * 9 / I2C_HZ


class VirtualTime(VirtualClock):
    def __init__(self, start: float = 0.0, grace: float = 5.0) -> None:
        super().__init__(start)
        self.grace = grace

    def receive(self, outcomes: queue.SimpleQueue[Outcome], timeout: float) -> Outcome:
        try:
            return outcomes.get(timeout=self.grace)
        except queue.Empty:
            self.now += timeout
            raise

    def scheduler(self, name: str) -> BusScheduler:
        return BusScheduler(name, clock=self, receive=self.receive)

    def run_until(self, scheduler: BusScheduler, t: float) -> None:
        """Runs the scheduler's work due before `t`, jumping over the idle time between."""
        while True:
            due = scheduler.run_ready()
            if due is None or due > t:
                self.now = max(self.now, t)
                return
            self.now = max(self.now, due)


class TimedLog(RecentList[Any]):
    """A simulated bus's log that charges each transfer its time on the wire and keeps when it
    happened and to whom: (time, address). Replaces SimBus.log."""

    def __init__(self, clock: VirtualClock, charge: bool = True) -> None:
        super().__init__()
        self.clock, self.charge = clock, charge
        self.stamps: list[tuple[float, int]] = []
        self.wire = 0.0  # seconds of transfers

    def append(self, item: Any) -> None:
        self.stamps.append((self.clock.now, item.address))
        seconds = transfer_seconds(item)
        self.wire += seconds
        if self.charge:
            self.clock.now += seconds

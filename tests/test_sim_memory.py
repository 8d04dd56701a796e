"""A simulated node runs for days (the demo, the footprint benchmark): what the simulated bus
and chips record for tests must not grow without end."""

from __future__ import annotations

from drivers.bh1750 import BH1750
from drivers.sim import SimBus, VirtualClock
from drivers.sim.bh1750 import SimBH1750
from drivers.sim.bus import RECENT, RecentList, Transfer

ADDR = 0x23


def test_a_recent_list_keeps_the_newest_entries_in_order() -> None:
    recent: RecentList[int] = RecentList()
    for i in range(5 * RECENT + 7):
        recent.append(i)
    assert RECENT <= len(recent) <= 2 * RECENT
    assert recent == list(range(5 * RECENT + 7 - len(recent), 5 * RECENT + 7))
    assert recent[-1] == 5 * RECENT + 6


def test_a_long_simulated_run_keeps_a_bounded_record() -> None:
    clock = VirtualClock()
    chip = SimBH1750()
    bus = SimBus({ADDR: chip}, clock=clock)
    sensor = BH1750(bus, ADDR, sleep=clock.sleep)
    sensor.open()
    readings = 3 * RECENT  # each reading is several transfers, a sleep and a chip command
    for _ in range(readings):
        sensor.read()
    for record in (bus.log, clock.sleeps, chip.commands):
        assert len(record) <= 2 * RECENT
    # The newest entry is still the last transfer: the reading's two result bytes.
    assert bus.log[-1].kind == "read" and len(bus.log[-1].data) == 2
    assert isinstance(bus.log[-1], Transfer)

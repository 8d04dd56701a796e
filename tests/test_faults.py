"""Every driver's chip, faulted as on a real bus, through the agent's DeviceRunner.

The faults (issue 3): a NACK (chip pulled off the header), a bad CRC or checksum, a data-ready
that never comes, a brown-out that loses the chip's configuration, a value out of physical
range. The agent must keep running, count failures, mark the device unavailable after the
configured number, re-initialise the chip, reject implausible values and recover by itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest

from agent.common.clock import SystemClock
from agent.config.schema import DeviceConfig
from agent.sensing.runner import DeviceRunner, Sample
from drivers import DRIVERS
from drivers.sim import Environment, SimBus, SimChip, VirtualClock
from drivers.sim.room import SIMULATED_CHIPS

ROOM = Environment(temperature=22.0, humidity=40.0, pressure=990.0, co2=800.0, voc_raw=29000,
                   pm1_0=3.0, pm2_5=5.0, pm10=9.0, voltage=12.0, current=0.5)  # fmt: skip


@dataclass(frozen=True)
class Case:
    driver: str
    chip: Callable[[Callable[[], Environment]], SimChip]
    # A room that makes the chip report a value outside its quantity's plausible range, or None
    # where the chip cannot report one (its scale ends inside the range).
    implausible: Optional[Environment] = None
    checksum: bool = True  # the chip protects its data with a CRC or checksum
    data_ready: bool = True  # the chip has a data-ready/conversion-done that can get stuck
    options: dict[str, Any] = field(default_factory=dict)
    interval: float = 5.0


# What the chips' own facts cannot say: a room outside each one's plausible range, and settings
# a fault would show in. Every other chip (a new one too) gets the default case.
IMPLAUSIBLE = {
    "sht3x": dataclasses.replace(ROOM, temperature=120.0),
    "sht4x": dataclasses.replace(ROOM, temperature=-44.0),
    "scd4x": dataclasses.replace(ROOM, co2=45000.0),
    "pmsa003i": dataclasses.replace(ROOM, pm2_5=1500.0),
    # None: BME280 (no checksum; an implausible value is covered with raw codes in
    # test_devices), SGP40 (its index is bounded by the algorithm), the light sensors (they
    # saturate at 121.6 and 140.9 klx, below the 200 klx limit), INA2xx (the ADC overflows
    # first, a DriverError).
}
SETTINGS: dict[str, dict[str, Any]] = {
    # Not the chip's default offset (4 °C), so a reset that loses it shows in the reading.
    "scd4x": {"options": {"temperature_offset": 6.0}},
    "sgp40": {"interval": 1.0},  # its algorithm's sampling interval
}


def _case(driver: str) -> Case:
    """A chip's case from its registered facts (drivers.base): its simulated chip says which
    faults it can be given (`corrupt_checksum`: a checksum; `stuck`: a data-ready flag)."""
    make = SIMULATED_CHIPS[driver]

    def chip(environment: Callable[[], Environment]) -> SimChip:
        return make(_Room(environment), {})

    probe = chip(lambda: ROOM)
    return Case(driver, chip, IMPLAUSIBLE.get(driver), checksum=hasattr(probe, "corrupt_checksum"),
                data_ready=hasattr(probe, "stuck"), **SETTINGS.get(driver, {}))  # fmt: skip


@dataclass(frozen=True)
class _Room:
    """What a simulated chip is given: a source of the room's environment."""

    environment: Callable[[], Environment]


# Modbus meters are simulated by pymodbus servers and have their faults in test_modbus.py.
CASES = [_case(driver) for driver in SIMULATED_CHIPS]


class Rig:
    """One device, its simulated chip and a DeviceRunner, with a virtual clock for the chip."""

    def __init__(self, case: Case, unavailable_after: int = 2) -> None:
        self.environment = ROOM
        self.chip = case.chip(lambda: self.environment)
        self.interval = case.interval
        self.clock = clock = VirtualClock()
        address = DRIVERS[case.driver].default_address
        driver = DRIVERS[case.driver](
            SimBus({address: self.chip}, clock=clock), None, sleep=clock.sleep, **case.options
        )
        config = DeviceConfig(name="dev", driver=case.driver, interval=case.interval,
                              unavailable_after=unavailable_after)  # fmt: skip
        self.samples: list[Sample] = []
        self.changes: list[tuple[bool, Optional[str]]] = []
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.runner = DeviceRunner(config, driver, self.pool, SystemClock("synced"),
                                   self._on_sample, self._on_availability)  # fmt: skip

    async def _on_sample(self, sample: Sample) -> None:
        self.samples.append(sample)

    async def _on_availability(self, name: str, available: bool, error: Optional[str]) -> None:
        self.changes.append((available, error))

    def poll(self, times: int = 1) -> list[bool]:
        async def run() -> list[bool]:
            results = []
            for _ in range(times):
                self.clock.now += self.interval  # the chip lives on between polls
                results.append(await self.runner.poll_once())
            return results

        return asyncio.run(run())

    def start(self) -> None:
        """Polls until the first value is published (an SGP40's algorithm has a 45 s blackout
        in which it answers but publishes nothing)."""
        for _ in range(100):
            assert self.poll() == [True]
            if self.samples:
                return
        raise AssertionError("no value published in 100 good polls")

    def poll_until_published(self, attempts: int = 3) -> int:
        """Polls until a new value is published; returns how many polls failed first."""
        published, failed = len(self.samples), 0
        for _ in range(attempts):
            failed += self.poll() == [False]
            if len(self.samples) > published:
                return failed
        raise AssertionError(f"nothing published in {attempts} polls: {self.changes}")


def cases(wanted: Callable[[Case], bool] = lambda c: True) -> Any:
    chosen = [c for c in CASES if wanted(c)]
    return pytest.mark.parametrize("case", chosen, ids=[c.driver for c in chosen])


def close_to(a: dict[str, float], b: dict[str, float]) -> bool:
    # Same room, same chip: readings agree to the chip's noise-free quantisation, except the
    # VOC index, which is a running algorithm and moves by design.
    keys = set(a) - {"voc_index"}
    return set(a) == set(b) and all(abs(a[k] - b[k]) <= 0.05 * max(1.0, abs(a[k])) for k in keys)


@cases()
def test_nack_makes_the_device_unavailable_after_the_configured_count_then_it_recovers(
    case: Case,
) -> None:
    rig = Rig(case, unavailable_after=2)
    rig.start()
    rig.chip.nack = True  # pulled off the header
    assert rig.poll(1) == [False]
    assert [c[0] for c in rig.changes] == [True]  # one failure is not yet unavailability
    assert rig.poll(1) == [False]
    assert [c[0] for c in rig.changes] == [True, False]
    assert "no chip answers" in (rig.changes[-1][1] or "") or "errno 121" in (
        rig.changes[-1][1] or ""
    )
    rig.chip.nack = False
    rig.chip.reset()  # plugged back in: it comes up from power-on
    assert rig.poll_until_published(10) == 0
    assert [c[0] for c in rig.changes] == [True, False, True]
    assert close_to(dict(rig.samples[0].values), dict(rig.samples[-1].values))


@cases(lambda c: c.checksum)
def test_a_bad_checksum_is_a_failed_read_and_nothing_is_published(case: Case) -> None:
    rig = Rig(case)
    rig.start()
    rig.chip.corrupt_checksum = True  # type: ignore[attr-defined]
    assert rig.poll(2) == [False, False]
    assert len(rig.samples) == 1
    assert "CRC" in (rig.changes[-1][1] or "") or "checksum" in (rig.changes[-1][1] or "")
    rig.chip.corrupt_checksum = False  # type: ignore[attr-defined]
    assert rig.poll_until_published(10) == 0


@cases(lambda c: c.data_ready)
def test_a_stuck_data_ready_fails_in_bounded_time(case: Case) -> None:
    rig = Rig(case)
    rig.start()
    rig.chip.stuck = True  # type: ignore[attr-defined]
    assert rig.poll(1) == [False]  # returns (a DriverError), rather than hanging the bus thread
    rig.chip.stuck = False  # type: ignore[attr-defined]
    assert rig.poll_until_published(10) == 0


@cases()
def test_a_chip_that_reset_is_reinitialised_and_reads_the_same_again(case: Case) -> None:
    rig = Rig(case)
    rig.start()
    rig.chip.reset()  # a brown-out: its configuration is gone
    # Detected at the next read (one failure, then re-opened), or the driver configures the chip
    # on every reading anyway; either way the next good reading is right, not a default's.
    assert rig.poll_until_published(10) <= 1
    assert close_to(dict(rig.samples[0].values), dict(rig.samples[-1].values))


@cases(lambda c: c.implausible is not None)
def test_an_implausible_value_is_rejected_and_the_device_recovers(case: Case) -> None:
    rig = Rig(case)
    rig.start()
    assert case.implausible is not None
    rig.environment = case.implausible
    assert rig.poll(2) == [False, False]
    assert "implausible" in (rig.changes[-1][1] or "")
    assert len(rig.samples) == 1
    rig.environment = ROOM
    assert rig.poll_until_published(10) == 0

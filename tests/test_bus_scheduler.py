"""The per-bus scheduler on virtual time (issue 15): real drivers and simulated chips on one bus,
time passing only as the scheduler waits, so hours of schedule run in seconds.

Each I2C transfer is charged its time on the wire at 100 kHz (tests/virtual_time.py); a step
that does not come back is charged its step timeout. Generator operations charge TRANSFER_S.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any, Callable, Optional

import pytest

from agent.sensing.operation import (
    Done,
    Failed,
    GeneratorOperation,
    Hung,
    Operation,
    Outcome,
    bus_sleep,
)
from agent.sensing.scheduler import Job, StillHung
from drivers import DRIVERS, Driver, values_of
from drivers.sim import Environment, SimBus, VirtualClock
from drivers.sim.bme280 import SimBME280
from drivers.sim.scd4x import SimSCD4x
from drivers.sim.sgp40 import SimSGP40
from drivers.sim.veml7700 import SimVEML7700
from tests.virtual_time import TimedLog, VirtualTime

TRANSFER_S = 0.0001  # a transaction of a generator operation
REAL_WAIT = 5.0  # real seconds a healthy step is given before the test calls it hung
ROOM = Environment(temperature=22.0, humidity=40.0, pressure=990.0, co2=800.0, voc_raw=29000,
                   illuminance=300.0)  # fmt: skip


class VirtualBus:
    def __init__(self) -> None:
        self.clock = VirtualTime(0.0, grace=REAL_WAIT)
        self.scheduler = self.clock.scheduler("i2c-test")
        self.sim = SimBus(clock=self.clock)
        self.log = TimedLog(self.clock)
        self.sim.log = self.log
        self.samples: dict[str, list[float]] = {}
        self.outcomes: dict[str, list[Outcome]] = {}

    def run_until(self, t: float) -> None:
        self.clock.run_until(self.scheduler, t)

    def job(self, name: str, interval: float, start: Callable[[], Operation], **kwargs: Any) -> Job:
        self.samples[name], self.outcomes[name] = [], []

        def finished(outcome: Outcome, at: float) -> Optional[float]:
            self.outcomes[name].append(outcome)
            if isinstance(outcome, Done) and outcome.value is not None:
                self.samples[name].append(at)
            return interval

        return Job(name, start, finished, **kwargs)

    def device(self, name: str, chip: Any, driver: str, interval: float, **options: Any) -> Job:
        """A real driver for a simulated chip, measured as the agent measures it."""
        cls = DRIVERS[driver]
        self.sim.attach(cls.default_address, chip)
        drv: Driver = cls(self.sim, None, sleep=bus_sleep, **options)
        opened = [False]

        def measure() -> Any:
            if not opened[0]:
                drv.open()
                opened[0] = True
            return dict(values_of(drv.read())) or None

        return self.job(
            name,
            interval,
            lambda: self.scheduler.stepwise(measure, name),
            fixed_cadence=getattr(cls, "fixed_cadence", False),
            timeout=3 * max(interval, cls.worst_read_time(options)),
        )


def intervals(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def test_devices_with_long_waits_interleave_and_keep_their_cadence() -> None:
    # The council chamber's bus: the SCD4x polls data-ready for up to 6 s, the VEML7700
    # integrates, the BME280 converts, and the SGP40 must be sampled every second.
    bus = VirtualBus()
    co2 = bus.device("co2", SimSCD4x(lambda: ROOM), "scd4x", 5.0)
    voc = bus.device("voc", SimSGP40(lambda: ROOM), "sgp40", 1.0)
    climate = bus.device("climate", SimBME280(lambda: ROOM), "bme280", 2.0)
    light = bus.device("light", SimVEML7700(lambda: ROOM), "veml7700", 5.0)
    for job in (co2, voc, climate, light):
        bus.scheduler.add(job, at=0.0)
    bus.run_until(600.0)

    # Interleaved: while the SCD4x waits for its sample (polling data-ready every 100 ms), the
    # others' transactions go on the bus between two of its polls.
    co2_times = [t for t, address in bus.log.stamps if address == 0x62]
    polls = [(a, b) for a, b in zip(co2_times, co2_times[1:]) if 0.05 < b - a < 0.2]
    others_inside = [
        address for t, address in bus.log.stamps
        if address != 0x62 and any(a < t < b for a, b in polls[-60:])
    ]  # fmt: skip
    assert {0x59, 0x76, 0x10} <= set(others_inside)
    # Every device on its interval; the SGP40 every second within a few transfers' time.
    for name, interval in (("voc", 1.0), ("climate", 2.0), ("co2", 5.0), ("light", 5.0)):
        gaps = intervals(bus.samples[name][5:])
        assert gaps, name
        assert max(abs(g - interval) for g in gaps) < 0.01 * interval + 0.02, (name, max(gaps))
    # The VOC algorithm published its first index within its 45 s blackout plus a sample.
    assert bus.samples["voc"][0] <= 47.0
    assert not any(isinstance(o, Failed) for done in bus.outcomes.values() for o in done)


def test_the_same_bus_one_read_at_a_time_starves_the_sgp40() -> None:
    """The old design (a read holds the bus through its waits), for contrast: the same chips,
    each read run whole. Shows what the test above guards against."""
    bus = VirtualBus()
    chips = {"co2": (SimSCD4x(lambda: ROOM), "scd4x", 5.0),
             "voc": (SimSGP40(lambda: ROOM), "sgp40", 1.0)}  # fmt: skip
    for name, (chip, driver, interval) in chips.items():
        cls = DRIVERS[driver]
        bus.sim.attach(cls.default_address, chip)
        drv = cls(bus.sim, None, sleep=bus.clock.sleep)  # waits are bus time

        def whole(drv: Driver = drv) -> Generator[float, None, Any]:
            if not getattr(drv, "_opened", False):
                drv.open()
                drv._opened = True  # type: ignore[attr-defined]
            return dict(values_of(drv.read())) or None
            yield 0.0  # a generator that never waits: the whole read is one step

        bus.scheduler.add(
            bus.job(name, interval, lambda w=whole: GeneratorOperation(w()), timeout=20.0), at=0.0
        )
    bus.run_until(300.0)
    gaps = sorted(intervals(bus.samples["voc"][5:]))
    assert gaps[len(gaps) // 2] > 1.2  # median well off the algorithm's 1 s


def test_a_hung_device_delays_the_others_by_at_most_one_transaction() -> None:
    bus = VirtualBus()
    release = threading.Event()
    calls = [0]

    def stuck_read() -> Any:
        calls[0] += 1
        bus_sleep(0.2)
        if calls[0] == 50:
            release.wait()  # the 50th measurement's second transaction never returns
            raise OSError("released")
        return {"x": 1.0}

    stuck = bus.job("stuck", 1.0, lambda: bus.scheduler.stepwise(stuck_read, "stuck"),
                    step_timeout=1.0)  # fmt: skip
    voc = bus.device("voc", SimSGP40(lambda: ROOM), "sgp40", 1.0)
    bus.scheduler.add(stuck, at=0.0)
    bus.scheduler.add(voc, at=0.1)
    try:
        bus.run_until(100.0)
    finally:
        release.set()
    gaps = intervals(bus.samples["voc"])
    late = [g for g in gaps if g > 1.0 + 0.01]
    # One gap, stretched by the one hung transaction (its 1 s step timeout), no more.
    assert len(late) == 1 and late[0] <= 1.0 + 1.0 + 0.01, late
    assert len(gaps) >= 100 - 47 - 2  # sampled from the end of the VOC blackout (45 s)
    # The hung device was abandoned once and not started again while its call was stuck.
    outcomes = bus.outcomes["stuck"]
    assert sum(isinstance(o, Hung) for o in outcomes) == 1
    assert calls[0] == 50
    stuck_after = [o for o in outcomes if isinstance(o, Failed)]
    assert stuck_after and all(isinstance(o.error, StillHung) for o in stuck_after)
    assert bus.scheduler.abandoned == 1


def counting(
    log: list[tuple[str, float]], name: str, clock: VirtualClock, waits: tuple[float, ...]
) -> Callable[[], Operation]:
    def steps() -> Generator[float, None, Any]:
        log.append((name, clock.now))
        for wait in waits:
            clock.now += TRANSFER_S
            yield wait
        clock.now += TRANSFER_S
        return 1.0

    return lambda: GeneratorOperation(steps())


def test_deadlines_do_not_drift_over_24_simulated_hours() -> None:
    bus = VirtualBus()
    starts: list[tuple[str, float]] = []
    devices = {  # name: (interval, waits of one measurement, fixed cadence)
        "voc": (1.0, (0.03, 0.0), True),
        "co2": (5.0, tuple([0.5] * 9), False),  # polls a data-ready flag for 4.5 s
        "climate": (2.0, (0.011,), False),
        "light": (5.0, (0.8, 0.0), False),
        "power": (10.0, (0.0042,), False),
        "slow": (60.0, (0.25, 0.25), False),
    }
    for name, (interval, waits, fixed) in devices.items():
        job = bus.job(name, interval, counting(starts, name, bus.clock, waits),
                      fixed_cadence=fixed)  # fmt: skip
        bus.scheduler.add(job, at=0.0)
    day = 24 * 3600.0
    bus.run_until(day)
    for name, (interval, _, fixed) in devices.items():
        mine = [t for n, t in starts if n == name]
        # Not one measurement lost or added (the one at the day's end included).
        assert len(mine) == int(day / interval) + 1, name
        # Each starts on its grid: k * interval, late by at most the transactions ahead of it
        # (a fixed-cadence device by at most one), never by an accumulating amount.
        worst = max(t - k * interval for k, t in enumerate(mine))
        assert 0 <= worst <= (2 if fixed else len(devices)) * TRANSFER_S + 1e-6, (name, worst)
    assert 0.0 < bus.scheduler.utilisation() < 0.01


def test_a_device_leaves_and_joins_the_schedule_cleanly() -> None:
    bus = VirtualBus()
    co2 = bus.device("co2", SimSCD4x(lambda: ROOM), "scd4x", 5.0)
    voc = bus.device("voc", SimSGP40(lambda: ROOM), "sgp40", 1.0)
    bus.scheduler.add(co2, at=0.0)
    bus.scheduler.add(voc, at=0.0)
    bus.run_until(12.3)  # the SCD4x is mid-measurement, polling data-ready
    assert co2.op is not None
    op = co2.op
    bus.scheduler.remove(co2)
    removed_at = bus.clock.now
    bus.run_until(30.0)
    # It left: its operation unwound at its wait (its thread ended) and nothing more was sent.
    assert not op.running
    assert not [t for t, address in bus.log.stamps if address == 0x62 and t > removed_at]
    assert co2 not in bus.scheduler.jobs
    # A new device joins: it is measured at once, then on its interval; the SGP40 is not upset.
    climate = bus.device("climate", SimBME280(lambda: ROOM), "bme280", 2.0)
    bus.scheduler.add(climate)
    joined = bus.clock.now
    bus.run_until(60.0)
    assert bus.samples["climate"][0] - joined < 0.05
    assert all(abs(g - 2.0) < 0.01 for g in intervals(bus.samples["climate"]))
    assert all(abs(g - 1.0) < 0.01 for g in intervals(bus.samples["voc"][5:]))


def test_a_wait_past_the_operation_timeout_cancels_it() -> None:
    bus = VirtualBus()

    def never_ready() -> Generator[float, None, Any]:
        while True:
            yield 0.1

    job = bus.job("dead", 5.0, lambda: GeneratorOperation(never_ready()), timeout=2.0)
    bus.scheduler.add(job, at=0.0)
    bus.run_until(4.0)
    (outcome,) = bus.outcomes["dead"]
    assert isinstance(outcome, Failed) and "no answer within 2 s" in str(outcome.error)


@pytest.mark.parametrize("failing", [OSError(121, "Remote I/O error"), ValueError("bad")])
def test_an_error_in_a_measurement_is_its_outcome(failing: Exception) -> None:
    bus = VirtualBus()

    def fails() -> Any:
        bus_sleep(0.01)
        raise failing

    bus.scheduler.add(bus.job("f", 1.0, lambda: bus.scheduler.stepwise(fails, "f")), at=0.0)
    bus.run_until(2.5)
    assert [type(o) for o in bus.outcomes["f"]] == [Failed, Failed, Failed]
    assert all(o.error is failing for o in bus.outcomes["f"])  # type: ignore[union-attr]

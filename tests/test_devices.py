"""A device's life in the runtime: failures, unavailability, recovery; and log rate limiting."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Optional

from agent.app.logs import RateLimitFilter
from agent.common.clock import SystemClock
from agent.config.schema import DeviceConfig
from agent.sensing.runner import DeviceRunner, Sample, link_compensation
from drivers import DRIVERS
from drivers.sim import SimBus
from drivers.sim.bme280 import Environment, SimBME280


def make_runner(
    chip: SimBME280,
) -> tuple[DeviceRunner, list[Sample], list[tuple[bool, Optional[str]]]]:
    samples: list[Sample] = []
    changes: list[tuple[bool, Optional[str]]] = []

    async def on_sample(s: Sample) -> None:
        samples.append(s)

    async def on_availability(name: str, available: bool, error: Optional[str]) -> None:
        changes.append((available, error))

    config = DeviceConfig(name="climate", driver="bme280", interval=1.0)
    driver = DRIVERS["bme280"](SimBus({0x76: chip}), None, sleep=lambda s: None)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    runner = DeviceRunner(config, driver, pool, SystemClock("synced"), on_sample, on_availability)
    return runner, samples, changes


def test_unplugged_chip_goes_unavailable_then_recovers() -> None:
    chip = SimBME280(lambda: Environment(temperature=19.5))
    runner, samples, changes = make_runner(chip)

    async def scenario() -> None:
        assert await runner.poll_once()
        chip.nack = True  # pulled off the header
        for _ in range(runner.config.unavailable_after):
            assert not await runner.poll_once()
        chip.nack = False
        chip.reset()  # it comes back from power-on: the driver must initialise it again
        assert await runner.poll_once()

    asyncio.run(scenario())
    assert [c[0] for c in changes] == [True, False, True]
    assert "no chip answers at 0x76" in (changes[1][1] or "")
    assert len(samples) == 2 and abs(samples[-1].values["temperature"] - 19.5) < 0.05


def test_implausible_values_are_rejected_not_published() -> None:
    chip = SimBME280()
    runner, samples, _ = make_runner(chip)
    # adc_T at full scale is far above 85 °C with the datasheet trimming: a broken conversion.
    chip.forced_raw = (415148, 0xFFFF0, 30000)

    async def scenario() -> bool:
        return await runner.poll_once()

    assert asyncio.run(scenario()) is False
    assert samples == []


def test_rate_limit_lets_a_burst_through_then_summarises() -> None:
    now = [0.0]
    limiter = RateLimitFilter(burst=3, window=60, clock=lambda: now[0])

    def record() -> logging.LogRecord:
        return logging.LogRecord("roomagent.devices", logging.WARNING, __file__, 1,
                                 "climate: %s", ("errno 121",), None)  # fmt: skip

    passed = [limiter.filter(record()) for _ in range(10)]
    assert passed == [True] * 3 + [False] * 7
    now[0] = 61.0
    summary = record()
    assert limiter.filter(summary)
    assert "and 7 more like it in the last 60 s" in summary.getMessage()
    other = logging.LogRecord("roomagent.mqtt", logging.WARNING, __file__, 1, "other", (), None)
    assert limiter.filter(other)  # a different message is counted on its own


def test_a_sibling_s_fresh_pressure_compensates_the_co2_sensor_and_stale_falls_back() -> None:
    from drivers.sim import VirtualClock
    from drivers.sim.scd4x import SimSCD4x

    room = Environment(pressure=987.0)
    clock = VirtualClock()
    barometer, co2_chip = SimBME280(lambda: room), SimSCD4x(lambda: room)
    bus = SimBus({0x76: barometer, 0x62: co2_chip}, clock=clock)
    pool = concurrent.futures.ThreadPoolExecutor(1)

    async def ignore(*args: object) -> None:
        pass

    def runner(config: DeviceConfig) -> DeviceRunner:
        driver = DRIVERS[config.driver](bus, None, sleep=clock.sleep)
        return DeviceRunner(config, driver, pool, SystemClock("synced"), ignore, ignore)

    climate = runner(DeviceConfig(name="climate", driver="bme280", interval=5.0))
    co2 = runner(DeviceConfig(name="co2", driver="scd4x", interval=5.0, compensate_from="climate"))
    link_compensation([climate, co2])

    async def poll(r: DeviceRunner) -> None:
        clock.now += 5.0
        assert await r.poll_once()

    asyncio.run(poll(climate))
    asyncio.run(poll(co2))
    # set_ambient_pressure's word is the pressure in units of 100 Pa (SCD4x datasheet).
    assert co2_chip.ambient_pressure == 987
    climate.last_good -= 3 * 5.0 + 1  # older than 3 of its intervals: no longer trusted
    room = Environment(pressure=950.0)
    asyncio.run(poll(co2))
    # Falls back to the configured altitude (0 m: the standard 1013 hPa), not the stale 987.
    assert co2_chip.ambient_pressure == 1013

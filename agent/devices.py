"""Polls one device on its interval: opens it, reads it off the event loop, survives its faults."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from agent.clock import SystemClock
from agent.config import DeviceConfig
from agent.contract import rounded
from drivers import QUANTITIES, Driver, DriverError, values_of

log = logging.getLogger("roomagent.devices")


class HungDriverError(Exception):
    """A previous call into the driver is still running: nothing new is sent to it."""


@dataclass(frozen=True)
class Sample:
    device: str
    timestamp: float
    clock_synced: bool
    values: Mapping[str, float]
    monotonic: float = 0.0  # when it was taken, on the clock NTP cannot step


class DeviceRunner:
    def __init__(
        self,
        config: DeviceConfig,
        driver: Driver,
        executor: concurrent.futures.Executor,
        clock: SystemClock,
        on_sample: Callable[[Sample], Awaitable[None]],
        on_availability: Callable[[str, bool, Optional[str]], Awaitable[None]],
        compensation: Callable[[], Mapping[str, float]] = dict,
    ) -> None:
        self.config, self.driver, self.executor, self.clock = config, driver, executor, clock
        self.on_sample, self.on_availability = on_sample, on_availability
        self.compensation = compensation
        self.opened = False
        self.available: Optional[bool] = None
        self.failures = 0
        self.stopped = False
        self.last_values: Mapping[str, float] = {}
        self._first_poll: Optional[asyncio.Event] = None
        self.hung: Optional[asyncio.Future[object]] = None
        self.hung_since = 0.0
        self.last_good = float("-inf")  # monotonic time of the last good reading

    @property
    def first_poll(self) -> asyncio.Event:
        """Set once the device has been tried (for READY=1). Made on first use, inside the
        event loop: before Python 3.10 an Event binds to the loop current when it is made."""
        if self._first_poll is None:
            self._first_poll = asyncio.Event()
        return self._first_poll

    def fresh_values(self) -> Mapping[str, float]:
        """The last reading if it is recent enough for a sibling to correct its own with."""
        age = self.clock.monotonic() - self.last_good
        return self.last_values if age <= 3 * self.config.interval else {}

    def _measure(self) -> object:
        # Compensation and reading in one call on the bus thread: nothing else gets in between.
        self.driver.compensate(self.compensation())
        return self.driver.read()

    async def _call(self, fn: Callable[[], object]) -> object:
        if self.hung is not None and not self.hung.done():
            raise HungDriverError(
                f"a call into the driver has not returned for "
                f"{self.clock.monotonic() - self.hung_since:.0f} s (driver or bus hung)"
            )
        self.hung = None
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, fn)
        # If this task is cancelled (shutdown) or gives up (timeout), the call still ends some
        # time; its outcome is collected here so asyncio does not report it as never retrieved.
        future.add_done_callback(_collect)
        done, _ = await asyncio.wait({future}, timeout=self.config.timeout)
        if not done:
            # The thread is stuck in the driver. Leave it; give the bus a fresh thread so the
            # other devices on it carry on, and call this driver again only once it returns.
            self.hung, self.hung_since = future, self.clock.monotonic()
            abandon = getattr(self.executor, "abandon", None)
            if abandon is not None:
                abandon()
            raise asyncio.TimeoutError
        return future.result()

    async def poll_once(self) -> bool:
        try:
            if not self.opened:
                await self._call(self.driver.open)
                self.opened = True
            measurement = await self._call(self._measure)
            values = values_of(measurement)
            _check_plausible(values)
        except (DriverError, OSError, ValueError, asyncio.TimeoutError, HungDriverError) as e:
            reason = _describe(e, self.config.timeout)
            # Re-initialise on the next try: a chip that browned out has lost its configuration.
            self.opened = False
            self.failures += 1
            log.warning("%s (%s): %s", self.config.name, self.config.driver, reason)
            if self.failures >= self.config.unavailable_after and self.available is not False:
                self.available = False
                await self.on_availability(self.config.name, False, reason)
            return False
        self.failures = 0
        if self.available is not True:
            self.available = True
            await self.on_availability(self.config.name, True, None)
        if not values:
            return True  # the chip answered but has no value yet (e.g. an algorithm warming up)
        self.last_values, self.last_good = values, self.clock.monotonic()
        await self.on_sample(
            Sample(
                self.config.name,
                self.clock.time(),
                self.clock.synced(),
                rounded(values),
                self.clock.monotonic(),
            )
        )
        return True

    async def run(self) -> None:
        """Polls on a fixed schedule (no drift); after failures, backs off up to 8 intervals."""
        next_at = self.clock.monotonic()
        while not self.stopped:  # see Forwarder.run on why a flag as well as cancellation
            ok = await self.poll_once()
            self.first_poll.set()
            delay = self.config.interval * (1 if ok else min(8, 2 ** min(self.failures - 1, 3)))
            next_at = max(next_at + delay, self.clock.monotonic())
            await asyncio.sleep(max(0.0, next_at - self.clock.monotonic()))


def _collect(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


def link_compensation(runners: Sequence[DeviceRunner]) -> None:
    """Gives each runner with `compensate_from` its source's fresh values (config-checked)."""
    by_name = {r.config.name: r for r in runners}
    for runner in runners:
        if runner.config.compensate_from is None:
            continue
        source, wanted = by_name[runner.config.compensate_from], runner.driver.compensation

        def fresh(
            source: DeviceRunner = source, wanted: Sequence[str] = wanted
        ) -> dict[str, float]:
            values = source.fresh_values()
            return {q: values[q] for q in wanted if q in values}

        runner.compensation = fresh


def _check_plausible(values: Mapping[str, float]) -> None:
    for name, value in values.items():
        q = QUANTITIES[name]
        if not q.minimum <= value <= q.maximum:
            raise ValueError(
                f"implausible {name} {value:g} {q.unit.value} "
                f"(outside {q.minimum:g}..{q.maximum:g})"
            )


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(e, OSError) and e.errno == 121:
        return "no acknowledgement on the bus (errno 121): chip missing or miswired"
    return str(e) or type(e).__name__

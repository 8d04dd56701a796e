"""One device: measured by its bus's scheduler on its interval, its outcome counted and published
on the event loop; it survives its faults (unavailable after some, re-opened, recovered)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from agent.common.clock import SystemClock
from agent.config.schema import DeviceConfig
from agent.mqtt.contract import rounded
from agent.sensing.cadence import Cadence
from agent.sensing.operation import Done, Failed, Hung, Outcome
from agent.sensing.scheduler import STEP_TIMEOUT, Job, OperationTimeout
from drivers import QUANTITIES, Driver, values_of

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
    sample_interval: Optional[float] = None  # s, the median of the device's recent intervals
    cadence: Optional[str] = None  # why its fixed-cadence algorithm is not served, if it is not


# What a finished measurement hands to the event loop: an availability change (or None) and
# the sample to publish (or None).
_Report = tuple[Optional[tuple[bool, Optional[str]]], Optional[Sample]]


class DeviceRunner:
    """One device: its bus's scheduler runs its measurements (run()), or poll_once() runs one
    on an executor (tools and tests). Both settle the outcome the same way."""

    def __init__(
        self,
        config: DeviceConfig,
        driver: Driver,
        executor: Any,
        clock: SystemClock,
        on_sample: Callable[[Sample], Awaitable[None]],
        on_availability: Callable[[str, bool, Optional[str]], Awaitable[None]],
        compensation: Callable[[], Mapping[str, float]] = dict,
    ) -> None:
        """`executor`: the device's BusScheduler (agent.sensing.scheduler), or for poll_once()
        any concurrent.futures.Executor."""
        self.config, self.driver, self.executor, self.clock = config, driver, executor, clock
        self.on_sample, self.on_availability = on_sample, on_availability
        self.compensation = compensation
        self.opened = False
        self.available: Optional[bool] = None
        self.failures = 0
        self.stopped = False
        self.last_values: Mapping[str, float] = {}
        self._first_poll: Optional[asyncio.Event] = None
        self.last_good = float("-inf")  # monotonic time of the last good reading
        self.cadence = Cadence(config.interval, fixed=getattr(driver, "fixed_cadence", False))
        self.job: Optional[Job] = None
        self._pending: Optional[concurrent.futures.Future[object]] = None  # poll_once's call

    @property
    def first_poll(self) -> asyncio.Event:
        """Set once the device has been tried (for READY=1). Made on first use, inside the
        event loop: before Python 3.10 an Event binds to the loop current when it is made."""
        if self._first_poll is None:
            self._first_poll = asyncio.Event()
        return self._first_poll

    @property
    def hung(self) -> bool:
        """A call into the driver was abandoned and has not returned."""
        if self.job is not None and self.job.stuck is not None and self.job.stuck.running:
            return True
        return self._pending is not None and not self._pending.done()

    def fresh_values(self) -> Mapping[str, float]:
        """The last reading if it is recent enough for a sibling to correct its own with."""
        age = self.clock.monotonic() - self.last_good
        return self.last_values if age <= 3 * self.config.interval else {}

    def sample_interval(self) -> Optional[float]:
        achieved = self.cadence.achieved()
        return None if achieved is None else round(achieved, 3)

    def _measure(self) -> Mapping[str, float]:
        """One measurement, blocking, on the bus's side: every wait the driver makes through
        its `sleep` lets the bus's other devices in. Compensation and reading go together."""
        if not self.opened:
            self.driver.open()
            self.opened = True
        self.driver.compensate(self.compensation())
        values = values_of(self.driver.read())
        _check_plausible(values)
        return values

    def _settle(self, result: object, at: float) -> tuple[bool, _Report]:
        """Counts a measurement's result (values, or the exception that ended it)."""
        change: Optional[tuple[bool, Optional[str]]] = None
        if isinstance(result, BaseException):
            reason = _describe(result, self.config.timeout)
            # Re-initialise on the next try: a chip that browned out has lost its configuration.
            self.opened = False
            self.failures += 1
            log.warning("%s (%s): %s", self.config.name, self.config.driver, reason)
            if self.failures >= self.config.unavailable_after and self.available is not False:
                self.available = False
                change = (False, reason)
            return False, (change, None)
        assert isinstance(result, Mapping)
        self.failures = 0
        self.cadence.interval = self.config.interval  # cmd/device/<name>/interval may change it
        self.cadence.sampled(at)
        if self.available is not True:
            self.available = True
            change = (True, None)
        if not result:
            return True, (change, None)  # answered, no value yet (e.g. an algorithm warming up)
        self.last_values, self.last_good = result, at
        sample = Sample(
            self.config.name, self.clock.time(), self.clock.synced(), rounded(result), at,
            self.sample_interval(), self.cadence.problem(),
        )  # fmt: skip
        return True, (change, sample)

    async def _report(self, report: _Report) -> None:
        change, sample = report
        if change is not None:
            await self.on_availability(self.config.name, *change)
        if sample is not None:
            await self.on_sample(sample)

    def _delay(self, ok: bool) -> float:
        """To the next measurement: the interval; after failures, backs off up to 8 of them."""
        return self.config.interval * (1 if ok else min(8, 2 ** min(self.failures - 1, 3)))

    # -- scheduled by the bus ---------------------------------------------------------------

    async def run(self) -> None:
        """Joins the bus's schedule and publishes what its measurements bring, in order,
        until cancelled (then it leaves the schedule)."""
        loop = asyncio.get_running_loop()
        reports: asyncio.Queue[_Report] = asyncio.Queue()
        bus = self.executor

        def finished(outcome: Outcome, at: float) -> Optional[float]:
            if self.stopped:
                return None
            if isinstance(outcome, Done):
                result: object = outcome.value
            elif isinstance(outcome, Failed):
                result = outcome.error
            else:
                assert isinstance(outcome, Hung)  # a Wait never ends an operation
                result = OperationTimeout(outcome.timeout)
            ok, report = self._settle(result, at)
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(reports.put_nowait, report)
            return self._delay(ok)

        self.job = Job(
            self.config.name,
            lambda: bus.stepwise(self._measure, self.config.name),
            finished,
            fixed_cadence=self.cadence.fixed,
            timeout=self.config.timeout,
            step_timeout=min(getattr(bus, "step_timeout", STEP_TIMEOUT), self.config.timeout),
        )
        bus.add(self.job)
        try:
            while not self.stopped:  # see Forwarder.run on why a flag as well as cancellation
                report = await reports.get()
                await self._report(report)
                self.first_poll.set()
        finally:
            bus.remove(self.job)

    # -- one at a time, on an executor ------------------------------------------------------

    async def poll_once(self) -> bool:
        """One measurement on the executor, waited for up to the device's timeout."""
        if self.hung:
            result: object = HungDriverError(
                "a call into the driver has not returned (driver or bus hung)"
            )
        else:
            future = self.executor.submit(self._measure)
            self._pending = future
            done, _ = await asyncio.wait({asyncio.wrap_future(future)}, timeout=self.config.timeout)
            if done:
                self._pending = None
                result = future.exception() or future.result()
            else:
                future.add_done_callback(_collect)
                result = OperationTimeout(self.config.timeout)
        ok, report = self._settle(result, self.clock.monotonic())
        await self._report(report)
        return ok


def _collect(future: concurrent.futures.Future[object]) -> None:
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


SLOW_MARK = "; slow: "  # in the status line, where `roomagent doctor` looks for it


def slow_devices(runners: Sequence[DeviceRunner]) -> str:
    """For the status line: the devices sampled off their configured interval (more than 5 %),
    e.g. "; slow: voc 1.80 s for 1 s", or "" when every device keeps its cadence."""
    slow = []
    for r in runners:
        achieved = r.cadence.off() if r.available else None
        if achieved is not None:
            slow.append(f"{r.config.name} {achieved:.2f} s for {r.config.interval:g} s")
    return SLOW_MARK + ", ".join(slow) if slow else ""


def _check_plausible(values: Mapping[str, float]) -> None:
    for name, value in values.items():
        q = QUANTITIES[name]
        if not q.minimum <= value <= q.maximum:
            raise ValueError(
                f"implausible {name} {value:g} {q.unit.value} "
                f"(outside {q.minimum:g}..{q.maximum:g})"
            )


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, OSError) and e.errno == 121:
        return "no acknowledgement on the bus (errno 121): chip missing or miswired"
    return str(e) or type(e).__name__


async def close_drivers(runners: Sequence[DeviceRunner], timeout: float) -> None:
    """Closes every driver not hung in a read. Each is closed through its bus's scheduler,
    between other transactions on that bus: closing from elsewhere could interleave with one
    of them."""
    closing = [
        asyncio.wrap_future(
            runner.executor.submit(runner.driver.close, f"{runner.config.name}.close")
        )
        for runner in runners
        if not runner.hung
    ]
    if closing:
        await asyncio.wait(closing, timeout=timeout)
        for future in closing:
            if future.done() and not future.cancelled() and future.exception():
                log.debug("closing a driver: %s", future.exception())

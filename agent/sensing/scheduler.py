"""One scheduler per bus: runs its devices' transactions by deadline, and other devices'
transactions during a device's waits.

A bus here is anything whose transactions must not overlap: an I2C bus, a Modbus RTU line
(several meters by unit id), a Modbus TCP endpoint. The scheduler knows nothing of the protocol:
a device is a `Job` that makes an `Operation` (agent.sensing.operation) at each deadline, and the
scheduler advances one operation by one transaction at a time:

- a job starts at its deadline; the next deadline is the previous one plus the job's delay
  (its interval, or a back-off after a failure), so the cadence never drifts by the time a
  measurement takes; a job that overran starts again at once;
- when several are ready, devices whose algorithm needs a fixed cadence (the SGP40's VOC index)
  go first, then the earliest due;
- a transaction that does not end within the job's step timeout is abandoned (its thread is left
  behind): the other devices are delayed by that one transaction, and the hung device is not
  started again until its abandoned call returns;
- an operation that has not ended `timeout` seconds after it started is cancelled.

The clock and the way a step's outcome is awaited are injected, so tests run on virtual time.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Optional

from agent.sensing.operation import (
    Done,
    Failed,
    Hung,
    Operation,
    Outcome,
    Receive,
    StepwiseCall,
    Wait,
    receive,
)

log = logging.getLogger("roomagent.bus")

# An I2C transaction takes well under 10 ms at 100 kHz; one that has not ended after a second
# will not. Serial buses with slow baud rates pass their own.
STEP_TIMEOUT = 1.0


class StillHung(Exception):
    """The device's previous call is still stuck on the bus: nothing new is sent to it."""


class OperationTimeout(Exception):
    def __init__(self, timeout: float) -> None:
        super().__init__(f"no answer within {timeout:g} s")
        self.timeout = timeout


class Job:
    """A device as its bus's scheduler sees it.

    start() makes the operation for one measurement; finished(outcome, at) is told how it ended
    (Done, Failed or Hung, at monotonic time `at`, on the scheduler's thread) and returns the
    delay from this measurement's deadline to the next, or None to leave the bus."""

    def __init__(
        self,
        name: str,
        start: Callable[[], Operation],
        finished: Callable[[Outcome, float], Optional[float]],
        *,
        fixed_cadence: bool = False,
        timeout: float = 10.0,
        step_timeout: float = STEP_TIMEOUT,
    ) -> None:
        self.name, self.start, self.finished = name, start, finished
        self.fixed_cadence, self.timeout, self.step_timeout = fixed_cadence, timeout, step_timeout
        self.deadline = 0.0  # when the current or next measurement is due
        self.ready = 0.0  # when the job next needs the bus (its deadline, or a wait's end)
        self.op: Optional[Operation] = None
        self.op_started = 0.0
        self.stuck: Optional[Operation] = None  # an abandoned operation whose call still runs
        self.stuck_since = 0.0
        self.removed = False

    def __repr__(self) -> str:
        return f"Job({self.name!r})"


class BusScheduler:
    def __init__(
        self, name: str, *, clock: Callable[[], float] = time.monotonic, receive: Receive = receive
    ) -> None:
        self.name, self.clock, self.receive = name, clock, receive
        self.jobs: list[Job] = []
        self.step_timeout = STEP_TIMEOUT  # the longest a transaction of its devices may take
        self.busy = 0.0  # seconds the bus spent in transactions (for its utilisation)
        self.abandoned = 0  # transactions given up on
        self.since = clock()
        self._cond = threading.Condition()
        self._current: Optional[Job] = None
        self._changed = False
        self._stopped = False
        self._thread: Optional[threading.Thread] = None

    def utilisation(self) -> float:
        elapsed = self.clock() - self.since
        return self.busy / elapsed if elapsed > 0 else 0.0

    def add(self, job: Job, at: Optional[float] = None) -> None:
        """Joins the schedule; the first measurement is due at `at` (default: now)."""
        with self._cond:
            job.deadline = job.ready = self.clock() if at is None else at
            job.removed = False
            self.jobs.append(job)
            self._changed = True
            self._cond.notify()

    def remove(self, job: Job) -> None:
        """Leaves the schedule; an operation in progress is stopped at its next wait."""
        with self._cond:
            job.removed = True
            if job in self.jobs:
                self.jobs.remove(job)
            if job.op is not None and self._current is not job:
                job.op.cancel()
                job.op = None
            self._changed = True
            self._cond.notify()

    def submit(self, fn: Callable[[], Any], name: str = "call") -> concurrent.futures.Future[Any]:
        """Runs a blocking call once, as soon as the bus is free (e.g. a driver's close())."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def finished(outcome: Outcome, at: float) -> None:
            if isinstance(outcome, Done):
                future.set_result(outcome.value)
            elif isinstance(outcome, Failed):
                future.set_exception(outcome.error)
            else:
                future.set_exception(TimeoutError(f"{name}: hung on bus {self.name}"))

        self.add(Job(name, lambda: self._stepwise(fn, name), finished))
        return future

    def _stepwise(self, fn: Callable[[], Any], name: str) -> Operation:
        return StepwiseCall(fn, f"{self.name}:{name}", self.receive)

    def stepwise(self, fn: Callable[[], Any], name: str) -> Operation:
        """A blocking call (a driver's) as an operation of this bus."""
        return self._stepwise(fn, name)

    # -- the work ---------------------------------------------------------------------------

    def run_ready(self) -> Optional[float]:
        """Runs the most urgent transaction that is due now, if any; returns when the next one
        is due (None: no jobs). One at a time, so a saturated bus still sees stop and changes."""
        with self._cond:
            now = self.clock()
            ready = [j for j in self.jobs if j.ready <= now]
            if not ready:
                return min((j.ready for j in self.jobs), default=None)
            job = min(ready, key=lambda j: (not j.fixed_cadence, j.ready))
            self._current = job
        try:
            self._step(job)
        finally:
            with self._cond:
                self._current = None
        with self._cond:
            return min((j.ready for j in self.jobs), default=None)

    def _step(self, job: Job) -> None:
        t0 = self.clock()
        if job.op is None:
            if job.stuck is not None and job.stuck.running:
                since = t0 - job.stuck_since
                error = StillHung(
                    f"a call into the driver has not returned for {since:.0f} s "
                    "(driver or bus hung)"
                )
                self._end(job, Failed(error), t0)
                return
            job.stuck = None
            job.op, job.op_started = job.start(), t0
        op = job.op
        outcome = op.advance(job.step_timeout)
        t1 = self.clock()
        self.busy += t1 - t0
        if isinstance(outcome, Wait):
            resume = t1 + max(0.0, outcome.seconds)
            if job.removed:
                op.cancel()
                job.op = None
                return
            if resume - job.op_started <= job.timeout:
                with self._cond:
                    job.ready = resume
                return
            op.cancel()
            outcome = Failed(OperationTimeout(job.timeout))
        elif isinstance(outcome, Hung):
            self.abandoned += 1
            job.stuck, job.stuck_since = op, t0
            log.warning(
                "%s: a transaction of %s did not end within %g s; abandoned it",
                self.name, job.name, outcome.timeout,
            )  # fmt: skip
        job.op = None
        self._end(job, outcome, t1)

    def _end(self, job: Job, outcome: Outcome, at: float) -> None:
        try:
            delay = job.finished(outcome, at)
        except Exception:
            log.exception("%s: %s's result handler failed", self.name, job.name)
            delay = None
        with self._cond:
            if delay is None or job.removed:
                if job in self.jobs:
                    self.jobs.remove(job)
                return
            # From the deadline, not from now: the time a measurement takes does not add up.
            job.deadline = max(job.deadline + delay, at)
            job.ready = job.deadline

    # -- its thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"bus-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            due = self.run_ready()
            with self._cond:
                if self._stopped:
                    return
                if not self._changed:
                    timeout = None if due is None else max(0.0, due - self.clock())
                    if timeout is None or timeout > 0:
                        self._cond.wait(timeout)
                self._changed = False
                if self._stopped:
                    return

    def shutdown(self) -> None:
        """Stops scheduling; operations in progress are stopped at their next wait."""
        with self._cond:
            self._stopped = True
            for job in self.jobs:
                job.removed = True
                if job.op is not None and self._current is not job:
                    job.op.cancel()
            self.jobs.clear()
            self._cond.notify()

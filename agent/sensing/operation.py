"""A measurement is a sequence of bus transactions with waits between them.

The scheduler advances an operation one transaction at a time; between two transactions the
operation says how long it must wait (a conversion, an integration, a chip's execution time), and
that wait is not bus time: the bus's other devices run their transactions meanwhile.

Two kinds of operation:
- `StepwiseCall` runs a blocking call (a driver's open() or read()) on a thread of its own, and
  turns every `bus_sleep(seconds)` it makes into a point where the bus is handed back. Drivers
  get `bus_sleep` as their injected `sleep`, so every existing driver is stepwise without being
  rewritten, and a transaction that hangs is walked away from: its thread is left behind.
- `GeneratorOperation` runs a generator that yields waits (seconds) and returns the result, on
  the scheduler's own thread: for code that never blocks long (tests, network protocols with
  their own timeouts).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Union


@dataclass(frozen=True)
class Wait:
    """The operation paused: resume it after this many seconds. The bus is free meanwhile."""

    seconds: float


@dataclass(frozen=True)
class Done:
    value: Any


@dataclass(frozen=True)
class Failed:
    error: BaseException


@dataclass(frozen=True)
class Hung:
    """A transaction did not end within the step timeout: the operation was abandoned."""

    timeout: float


Outcome = Union[Wait, Done, Failed, Hung]
# How the scheduler waits for a step's outcome: production blocks on the queue; a virtual clock
# can charge the timeout to simulated time instead.
Receive = Callable[["queue.SimpleQueue[Outcome]", float], Outcome]


class Abandoned(BaseException):
    """Raised inside a call whose operation was abandoned or cancelled, at its next wait, so it
    unwinds without touching the bus again. A BaseException: drivers' `except OSError` and
    `contextlib.suppress` must not swallow it."""


class Operation(Protocol):
    def advance(self, timeout: float) -> Outcome:
        """Runs the next transaction (up to the next wait or the end)."""

    def cancel(self) -> None:
        """Stops it at its next wait (nothing more is sent)."""

    @property
    def running(self) -> bool:
        """True while code of this operation may still be on the bus (an abandoned thread)."""


def receive(outcomes: queue.SimpleQueue[Outcome], timeout: float) -> Outcome:
    return outcomes.get(timeout=timeout)


_current = threading.local()


def bus_sleep(seconds: float) -> None:
    """The `sleep` drivers on a scheduled bus are given. Inside an operation it hands the bus
    back for `seconds`; anywhere else (scan-i2c, doctor, a driver's own tests) it sleeps."""
    operation: Optional[StepwiseCall] = getattr(_current, "operation", None)
    if operation is None:
        time.sleep(seconds)
    else:
        operation.pause(seconds)


class StepwiseCall:
    """A blocking call advanced wait by wait: each advance() lets it run until its next
    bus_sleep() or its end, on a thread of its own."""

    def __init__(self, fn: Callable[[], Any], name: str, receive: Receive = receive) -> None:
        self._fn, self._name, self._receive = fn, name, receive
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._resume: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._ended = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._ended.is_set()

    def advance(self, timeout: float) -> Outcome:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        else:
            self._resume.put(True)
        try:
            return self._receive(self._outcomes, timeout)
        except queue.Empty:
            self.cancel()  # if the transaction ever returns, the call unwinds at its next wait
            return Hung(timeout)

    def cancel(self) -> None:
        self._resume.put(False)

    def pause(self, seconds: float) -> None:
        self._outcomes.put(Wait(seconds))
        if not self._resume.get():
            raise Abandoned

    def _run(self) -> None:
        _current.operation = self
        try:
            self._outcomes.put(Done(self._fn()))
        except Abandoned:
            pass
        except BaseException as e:  # handed to the scheduler, which hands it to the device
            self._outcomes.put(Failed(e))
        finally:
            _current.operation = None
            self._ended.set()


class GeneratorOperation:
    """A generator that yields waits in seconds and returns its result."""

    running = False  # it runs only inside advance(), on the caller's thread

    def __init__(self, steps: Generator[float, None, Any]) -> None:
        self._steps = steps

    def advance(self, timeout: float) -> Outcome:
        try:
            return Wait(float(next(self._steps)))
        except StopIteration as e:
            return Done(e.value)
        except Exception as e:
            return Failed(e)

    def cancel(self) -> None:
        self._steps.close()

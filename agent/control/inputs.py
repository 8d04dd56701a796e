"""Wall buttons, switches, door contacts and PIR motion sensors on GPIO, through gpiozero.

gpiozero calls back from its own threads (one per pin factory); the callbacks only put the change
on a queue, and the runtime's loop collects them with `InputBank.poll()`. So the control logic
sees inputs in order, on its own thread, and nothing here blocks.

Levels: every kind has an "active" state that means the circuit is made (button pressed, switch
on, contact closed) or the PIR reports motion. With the usual wiring to ground and the internal
pull-up, active is the pin going low; `active_high` says otherwise. A magnetic door contact is
closed while the door is shut, so "closed" is the door shut.

Debouncing is gpiozero's `bounce_time`, done by the pin library (lgpio filters glitches shorter
than it). gpiozero's MockFactory ignores bounce_time entirely (MockPin._set_bounce stores it and
says "XXX Need to implement this"), so tests check only that it is passed to the pin. Edges can
still be lost (RPi.GPIO's bouncetime drops the one that ends a bounce): poll() also reads every
level, and one that disagrees with the reported state for RECONCILE_AFTER is reported as such.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from agent.common.events import Event
from agent.config.inputs import KINDS, InputConfig, validate_inputs
from agent.control.types import Clock, Published
from agent.mqtt.contract import Topics

if TYPE_CHECKING:
    from agent.control.room import RoomController

# A level that disagrees with the last reported state for this long means an edge was lost
# (RPi.GPIO's bouncetime drops the edge that ends a bounce), not that the pin is bouncing.
RECONCILE_AFTER = 2.0  # s
# An input whose pin could not be opened is tried again this often (a pin library installed,
# /dev/gpiochip* permissions fixed, another program letting go of the pin).
RETRY_AFTER = 30.0  # s
UNAVAILABLE = "unavailable"


class InputError(Exception):
    """A GPIO input cannot be opened: the message names the input, the pin and the cause."""


class _Change(NamedTuple):
    name: str
    level_high: bool
    monotonic: float
    wall: float
    missed: bool = False  # found by reading the level, not by an edge callback


@dataclass
class _Input:
    config: InputConfig
    device: Any  # gpiozero.InputDevice
    callback: Callable[[float, Any], None]
    state: str
    motion_ended: Optional[float] = None  # monotonic of the last motion -> clear
    mismatch_since: Optional[float] = None


class InputBank:
    """The GPIO inputs of one node. pin_factory None lets gpiozero choose (lgpio on a Pi).

    An input whose pin cannot be opened does not stop the others: its state is "unavailable",
    an event says why, and poll() tries it again every RETRY_AFTER seconds. `strict` (a bank
    built for a live reconfiguration) raises instead: a new config that cannot claim its pins
    is refused whole, and the bank it would replace carries on."""

    def __init__(
        self,
        configs: Sequence[InputConfig],
        pin_factory: Optional[Any],
        clock: Clock,
        strict: bool = False,
    ) -> None:
        validate_inputs(configs)
        self.clock = clock
        self._changes: queue.Queue[_Change] = queue.Queue()
        self._inputs: dict[str, _Input] = {}
        self._lock = threading.Lock()  # close() against a callback still running
        self._closed = False
        self._pin_factory = pin_factory
        self._unavailable: dict[str, tuple[InputConfig, str]] = {}  # name -> (config, why)
        self._next_retry = clock.monotonic() + RETRY_AFTER
        self._events: list[Event] = []  # unavailable/available, for the next poll()
        self._strict = strict
        try:
            for config in configs:
                self._try_open(config)
        except Exception:
            self.close()
            raise

    def _try_open(self, config: InputConfig) -> None:
        try:
            self._inputs[config.name] = self._open(config, self._pin_factory)
        except InputError as e:
            if self._strict:
                raise
            self._unavailable[config.name] = (config, str(e))
            self._events.append(Event("input", config.name, UNAVAILABLE, str(e), self.clock.time()))

    def _retry(self) -> None:
        now = self.clock.monotonic()
        if not self._unavailable or now < self._next_retry:
            return
        self._next_retry = now + RETRY_AFTER
        for name, (config, _why) in list(self._unavailable.items()):
            del self._unavailable[name]
            self._try_open(config)
            if name in self._inputs:
                entry = self._inputs[name]
                self._events.append(Event("input", name, entry.state,
                    f"GPIO {config.pin} opened after all: it reads {entry.state}",
                    self.clock.time()))  # fmt: skip
            else:  # still failing: said once, not every RETRY_AFTER
                self._events.pop()

    def unavailable(self) -> dict[str, str]:
        """The inputs that could not be opened, with why."""
        return {name: why for name, (_config, why) in self._unavailable.items()}

    def _open(self, config: InputConfig, pin_factory: Optional[Any]) -> _Input:
        # unused-ignore: stays clean once pyproject gives gpiozero an ignore_missing_imports
        from gpiozero import (
            GPIOZeroError,
            InputDevice,
        )

        # The plain InputDevice sets the pull; the pin's own callback then reports every level.
        # Not DigitalInputDevice's when_activated: it fires only when its own idea of the state
        # changes, so after one lost edge it would stay silent on the next. Not MotionSensor:
        # its smoothing runs a sampling thread and delays the edge, while a PIR module already
        # holds a clean level for its own hold time.
        try:
            device = InputDevice(config.pin, pull_up=config.pull_up, pin_factory=pin_factory)
        except (GPIOZeroError, OSError, RuntimeError) as e:
            raise InputError(f"input {config.name!r}: cannot open GPIO {config.pin}: {e}") from e
        try:
            device.pin.bounce = config.bounce_time
            device.pin.edges = "both"
            # The pin holds its callback by a weak reference: _Input keeps it alive.
            callback = self._callback(config)
            device.pin.when_changed = callback
        except (GPIOZeroError, OSError, RuntimeError) as e:
            device.close()
            raise InputError(
                f"input {config.name!r}: cannot watch GPIO {config.pin} for changes: {e}"
            ) from e
        return _Input(config, device, callback, config.state_of(_level(device)))

    def _callback(self, config: InputConfig) -> Callable[[float, Any], None]:
        def changed(ticks: float, level: Any) -> None:
            with self._lock:
                if self._closed:
                    return
                self._changes.put(
                    _Change(config.name, bool(level), self.clock.monotonic(), self.clock.time())
                )

        return changed

    def poll(self) -> list[Event]:
        """The changes since the last poll, oldest first. Call it from one thread only."""
        if not self._closed:
            self._retry()
        events, self._events = self._events, []
        while True:
            try:
                change = self._changes.get_nowait()
            except queue.Empty:
                break
            event = self._apply(change)
            if event is not None:
                events.append(event)
        events.extend(self._reconcile())
        return events

    def _apply(self, change: _Change) -> Optional[Event]:
        entry = self._inputs[change.name]
        state = entry.config.state_of(change.level_high)
        if state == entry.state:
            return None  # the same level twice (e.g. an edge also caught by _reconcile)
        if state == "clear":
            entry.motion_ended = change.monotonic
        entry.state, entry.mismatch_since = state, None
        level = "high" if change.level_high else "low"
        if change.missed:
            reason = (
                f"GPIO {entry.config.pin} reads {level} for {RECONCILE_AFTER:.0f} s "
                "with no edge reported (an edge was missed)"
            )
        else:
            reason = f"GPIO {entry.config.pin} went {level}"
        return Event("input", change.name, state, reason, change.wall)

    def _reconcile(self) -> list[Event]:
        events: list[Event] = []
        if self._closed:
            return events
        now = self.clock.monotonic()
        for entry in self._inputs.values():
            try:
                level_high = _level(entry.device)
            except Exception:  # lgpio raises its own error type: a pin that cannot be read
                continue  # leaves its edges as all there is to go on
            if entry.config.state_of(level_high) == entry.state:
                entry.mismatch_since = None
            elif entry.mismatch_since is None:
                entry.mismatch_since = now
            elif now - entry.mismatch_since >= RECONCILE_AFTER:
                event = self._apply(
                    _Change(entry.config.name, level_high, now, self.clock.time(), missed=True)
                )
                if event is not None:
                    events.append(event)
        return events

    def state(self, name: str) -> str:
        """The input's state as of the last poll() (or as read when the bank was opened);
        "unavailable" for one whose pin could not be opened."""
        if name in self._unavailable:
            return UNAVAILABLE
        return self._entry(name).state

    def last_motion(self, name: str) -> Optional[float]:
        """Monotonic time motion was last seen: now while the PIR holds motion, the moment it
        cleared after that, None if it has shown none since the bank opened (as of poll())."""
        if name in self._unavailable:
            config = self._unavailable[name][0]
            if config.kind != "motion":
                raise ValueError(f"input {name!r} is a {config.kind}, not a motion sensor")
            return None  # nothing known: occupancy rests on the other sensors
        entry = self._entry(name)
        if entry.config.kind != "motion":
            raise ValueError(f"input {name!r} is a {entry.config.kind}, not a motion sensor")
        if entry.state == "motion":
            return self.clock.monotonic()
        return entry.motion_ended

    def _entry(self, name: str) -> _Input:
        try:
            return self._inputs[name]
        except KeyError:
            raise KeyError(f"no input named {name!r}") from None

    def close(self) -> None:
        """Releases every pin. Changes not yet polled are dropped."""
        with self._lock:
            self._closed = True
        for entry in self._inputs.values():
            entry.device.pin.when_changed = None
            entry.device.close()

    def __enter__(self) -> InputBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _level(device: Any) -> bool:
    """The pin's electrical level now (gpiozero's value would be inverted by the pull)."""
    return bool(device.pin.state)


# What central systems see of an input (agent.control.types.Published) ---------------------------

# input kind -> (HA binary_sensor device class or None, the input state HA shows as "on").
# A contact is "closed" while the door is shut, but HA's opening class means open when on.
INPUT_CLASSES: dict[str, tuple[Optional[str], str]] = {
    "motion": ("motion", "motion"),
    "contact": ("opening", "open"),
    "button": (None, "pressed"),
    "switch": (None, "on"),
}
INPUT_TEMPLATE = "{{ value_json['state'] }}"


def _state(room: RoomController, name: str) -> dict[str, Any]:
    return {"state": room.inputs.state(name)}


def _entities(inp: InputConfig, topics: Topics) -> dict[str, dict[str, Any]]:
    device_class, on = INPUT_CLASSES[inp.kind]
    binary: dict[str, Any] = {
        "p": "binary_sensor",
        "name": inp.name,
        "stat_t": topics.control("input", inp.name),
        "val_tpl": INPUT_TEMPLATE,
        "pl_on": on,
        "pl_off": next(s for s in KINDS[inp.kind] if s != on),
    }
    if device_class is not None:
        binary["dev_cla"] = device_class
    return {f"input_{inp.name}": binary}


PUBLISHED = Published("input", "inputs", _entities, _state)

"""The small shared vocabulary of room control."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from agent.common.events import Event
from agent.mqtt.contract import Topics

if TYPE_CHECKING:
    from agent.control.room import RoomController


class Clock(Protocol):
    """agent.common.clock.SystemClock satisfies it; tests pass tests/clocks.py FakeClock, moved by
    hand."""

    def monotonic(self) -> float: ...  # seconds, never stepped: durations, timers

    def time(self) -> float: ...  # wall clock, UTC epoch seconds: schedules, event stamps


@dataclass(frozen=True)
class Want:
    """A control rule's wish for one relay, with the reason a facility manager will read."""

    relay: str
    on: bool
    reason: str  # e.g. "zone chamber: 19.2 °C below comfort 21.0 − 0.5 (sensor climate)"


@dataclass(frozen=True)
class RoomInputs:
    """What the room knows at one tick: every control reads what it needs from it, so a new
    control rule needs no new argument threaded through RoomController.tick."""

    # device, quantity -> (value, monotonic time it was measured), or None
    readings: Callable[[str, str], Optional[tuple[float, float]]]
    # someone is in the room, as the zones are told (None: not known, or not to be acted on)
    occupied: Optional[bool]
    # motion input -> monotonic time it last saw motion (None: never, or not a motion input)
    last_motion: Callable[[str], Optional[float]]
    # BLE presence group -> someone is there (None: not known now)
    presence: Mapping[str, Optional[bool]]
    # the input events of this tick's poll (a wall switch pressed, a door opened)
    input_events: Sequence[Event]


class Control(Protocol):
    """A control rule (a zone's thermostat, a light group, a ventilation unit): once a tick it
    says what it wants for its relays, with the events of what it decided."""

    def step(self, room: RoomInputs) -> tuple[list[Want], list[Event]]: ...


# One item's Home Assistant components (key -> component) from its settings and the node's topics.
Entities = Callable[[Any, Topics], dict[str, dict[str, Any]]]
# One item's retained state body (without "ts"), from the room controller running it.
State = Callable[["RoomController", str], dict[str, Any]]
# A command to this kind (the path below cmd/<kind>, the body, the reason to give): the item's
# name, the events of what it did and the answer's result; agent.mqtt.command_args.CommandError
# refuses it.
Command = Callable[
    ["RoomController", list[str], dict[str, Any], str], tuple[str, list[Event], dict[str, Any]]
]


@dataclass(frozen=True)
class Published:
    """What central systems see of one kind of control, declared by its module and listed once
    in agent.control.room.PUBLISHED: central/ and commands/ iterate over these, so a new rule
    needs no code there. Its retained state is on <base>/<kind>/<name> (also cmd/state/<kind>/
    <name>), its commands arrive on cmd/<kind>/<name>/..."""

    kind: str  # the topic level: "zone", "lights", "ventilation", "input"
    section: str  # the ControlConfig field holding one settings record per item
    entities: Entities
    state: State
    command: Optional[Command] = None

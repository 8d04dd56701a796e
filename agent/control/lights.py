"""One light group: on by occupancy, off after vacancy, held off by daylight, and a wall switch.

Everything is decided here on the node, so the wall switch and the occupancy rules work with
the network gone. The runtime calls `update()` about once a second with the latest motion,
presence and illuminance, and the input events of the last poll; the Wants it returns give the
group's wanted state for every relay on every call (a level, not an edge), so a relay that lost
its state is put right on the next tick. Relay switching is reported by the relay layer, with
the Want's reason; Events from here are changes of mode (manual override, back to automatic).

Daylight only holds the lights off when occupancy would switch them on: once on, they stay on
until vacancy, because the sensor sees the lamps as well as the sky. For the same reason the
daylight judgement is made only from readings taken while the group was off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from agent.common.events import Event
from agent.config.lights import LightConfig
from agent.control.types import Clock, Published, RoomInputs, Want
from agent.mqtt.command_args import CommandError, command_verb, optional_minutes
from agent.mqtt.contract import Topics
from agent.mqtt.ha_components import ON_TEMPLATE, command_topic, on_off

if TYPE_CHECKING:
    from agent.control.room import RoomController

LUX_MAX_AGE = 300.0  # s: an illuminance reading older than this says nothing about daylight


@dataclass(frozen=True)
class _Override:
    on: bool
    until: float  # monotonic
    by: str  # "wall switch hall" / "command" / "scene meeting"


class LightControl:
    def __init__(self, config: LightConfig, clock: Clock) -> None:
        self.config, self.clock = config, clock
        self.on = False  # what this group last wanted; assumed off at start
        self.override: Optional[_Override] = None
        self._off_since = -math.inf  # monotonic: readings from before it saw the lamps
        self._bright: Optional[bool] = None  # daylight judgement, with hysteresis
        self._bright_at = -math.inf  # monotonic of the reading behind it
        self._lux = 0.0  # that reading

    def step(self, room: RoomInputs) -> tuple[list[Want], list[Event]]:
        """The Control interface: the group's occupancy inputs (motion inputs and presence
        groups), its daylight sensor and its wall switch's events."""
        c = self.config
        times = [t for t in map(room.last_motion, c.occupancy) if t is not None]
        present = [room.presence[n] for n in c.occupancy if room.presence.get(n) is not None]
        lux = room.readings(c.daylight_sensor, "illuminance") if c.daylight_sensor else None
        return self.update(
            motion_at=max(times) if times else None,
            occupied=any(present) if present else None,
            lux=lux[0] if lux else None,
            lux_at=lux[1] if lux else None,
            inputs=[e for e in room.input_events if e.subject == c.switch],
        )

    def update(
        self,
        motion_at: Optional[float] = None,
        occupied: Optional[bool] = None,
        lux: Optional[float] = None,
        lux_at: Optional[float] = None,
        inputs: Sequence[Event] = (),
    ) -> tuple[list[Want], list[Event]]:
        """motion_at: monotonic time motion was last seen on any occupancy input (None: none);
        occupied: presence from another source (e.g. BLE), None when there is none;
        lux, lux_at: the latest illuminance and its monotonic time (None: taken now);
        inputs: the input events of the last poll; those of config.switch are acted on."""
        now = self.clock.monotonic()
        events: list[Event] = []
        for event in inputs:
            events.extend(self._switch_event(event))
        if self.override is not None and now >= self.override.until:
            events.append(self._event("automatic", f"manual override by {self.override.by} ended"))
            self.override = None
        if lux is not None:
            self._judge_daylight(lux, now if lux_at is None else lux_at)
        on, reason = self._decide(now, motion_at, occupied)
        if self.on and not on:
            self._off_since = now
        self.on = on
        return [Want(relay, on, reason) for relay in self.config.relays], events

    def command(
        self, on: bool, minutes: Optional[float] = None, reason: str = "command"
    ) -> list[Event]:
        """Manual on/off for `minutes` (default override_minutes), then back to automatic.
        The Wants follow on the next update()."""
        if minutes is None:
            minutes = self.config.override_minutes
        if not (math.isfinite(minutes) and minutes > 0):
            raise ValueError(f"minutes: must be a positive number, got {minutes}")
        return [self._start_override(on, minutes, reason)]

    def resume_automatic(self, reason: str = "command") -> list[Event]:
        """Ends a manual override now."""
        if self.override is None:
            return []
        self.override = None
        return [self._event("automatic", f"manual override cancelled by {reason}")]

    def _switch_event(self, event: Event) -> list[Event]:
        # A button toggles on press; a maintained switch toggles on every flip, so it never
        # has to be flipped twice after the automatic rules changed the lights under it.
        if event.kind != "input" or event.subject != self.config.switch:
            return []
        if event.state not in ("pressed", "on", "off"):
            return []
        current = self.override.on if self.override is not None else self.on
        by = f"wall {'button' if event.state == 'pressed' else 'switch'} {event.subject}"
        return [self._start_override(not current, self.config.override_minutes, by)]

    def _start_override(self, on: bool, minutes: float, by: str) -> Event:
        self.override = _Override(on, self.clock.monotonic() + minutes * 60, by)
        state = "manual_on" if on else "manual_off"
        return self._event(state, f"{by}: lights {_onoff(on)} for {minutes:g} min")

    def _judge_daylight(self, lux: float, taken_at: float) -> None:
        if taken_at < self._off_since or self.on:
            return  # the sensor was lit by the lamps themselves
        if taken_at < self._bright_at:
            return  # older than what the judgement already rests on
        low = self.config.daylight_lux - self.config.daylight_hysteresis
        was_bright = self._bright and taken_at - self._bright_at <= LUX_MAX_AGE
        if lux > self.config.daylight_lux:
            self._bright = True
        elif lux < low or not was_bright:
            # Without a fresh earlier judgement there is no band to stay in: at or below the
            # threshold is dark enough.
            self._bright = False
        self._bright_at, self._lux = taken_at, lux

    def _decide(
        self, now: float, motion_at: Optional[float], occupied: Optional[bool]
    ) -> tuple[bool, str]:
        name = f"lights {self.config.name}"
        if self.override is not None:
            left = (self.override.until - now) / 60
            return self.override.on, (
                f"{name}: manual {_onoff(self.override.on)} by {self.override.by} "
                f"({left:.0f} min left)"
            )
        vacancy = self.config.vacancy_minutes * 60
        if motion_at is not None and now - motion_at < vacancy:
            why = f"motion {_ago(now - motion_at)} (off after {self.config.vacancy_minutes:g} min)"
        elif occupied:
            why = "presence detected"
        else:
            seen = "none seen" if motion_at is None else f"last {_ago(now - motion_at)}"
            extra = "" if occupied is None else ", no presence"
            return False, f"{name}: vacant (motion {seen}{extra})"
        if self.on:
            return True, f"{name}: occupied, {why}"
        held, daylight = self._daylight(now)
        if held:
            return False, f"{name}: occupied ({why}), but held off by daylight: {daylight}"
        return True, f"{name}: occupied, {why}{daylight}"

    def _daylight(self, now: float) -> tuple[bool, str]:
        """Whether daylight holds the lights off, and what to say about it."""
        sensor = self.config.daylight_sensor or "the illuminance sensor"
        low = self.config.daylight_lux - self.config.daylight_hysteresis
        if self._bright is None:
            return False, ""
        age = now - self._bright_at
        if age > LUX_MAX_AGE:
            return False, f"; daylight reading from {sensor} {_ago(age)}, ignored"
        if self._bright:
            return True, (
                f"{self._lux:.0f} lx from {sensor} (holds off above "
                f"{self.config.daylight_lux:g} lx, until below {low:g} lx)"
            )
        return False, f"; daylight {self._lux:.0f} lx from {sensor}"

    def _event(self, state: str, reason: str) -> Event:
        return Event("mode", f"lights:{self.config.name}", state, reason, self.clock.time())


def _onoff(on: bool) -> str:
    return "on" if on else "off"


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


# What central systems see of a light group (agent.control.types.Published) ----------------------


def _state(room: RoomController, name: str) -> dict[str, Any]:
    """`on`: the group's relays (they all follow the group: the first speaks for them);
    `mode`: manual while an override (command, wall switch, scene) holds, else auto."""
    light = room.lights[name]
    override = light.override
    manual = override is not None and room.clock.monotonic() < override.until
    return {"on": room.relays.state(light.config.relays[0]), "mode": "manual" if manual else "auto"}


def _entities(group: LightConfig, topics: Topics) -> dict[str, dict[str, Any]]:
    """On or off for the group's override_minutes, then automatic again: the effect "auto"
    hands the group back to its rules at once ("manual" holds what it does now). HA sends ON
    before the effect (on_command_type first), so "auto" has the last word."""
    base = topics.base
    state = topics.control("lights", group.name)
    light = on_off("light", group.name, state, command_topic(base, "lights", group.name))
    light.update({
        "stat_val_tpl": ON_TEMPLATE,
        "on_cmd_type": "first",
        "fx_cmd_t": command_topic(base, "lights", group.name, "effect"),
        "fx_list": ["auto", "manual"],
        "fx_stat_t": state,
        "fx_val_tpl": "{{ value_json['mode'] }}",
    })  # fmt: skip
    return {f"lights_{group.name}": light}


def _command(
    room: RoomController, path: list[str], body: dict[str, Any], reason: str
) -> tuple[str, list[Event], dict[str, Any]]:
    """cmd/lights/<group>: ON, OFF, AUTO (optional minutes); .../effect auto or manual."""
    if not 1 <= len(path) <= 2 or not path[0]:
        raise CommandError("unknown_target", "expected cmd/lights/<group>")
    name = path[0]
    light = room.lights.get(name)
    if light is None:
        raise CommandError("unknown_target", f"no lights {name!r}")
    if len(path) == 2 and path[1] != "effect":
        raise CommandError("unknown_target", f"cmd/lights/{name}: no sub-topic {path[1]!r}")
    verb = command_verb(body)
    minutes = optional_minutes(body)
    if verb == "manual":  # Home Assistant's effect list: hold what the lights do now
        verb = "on" if room.relays.state(light.config.relays[0]) else "off"
    if verb in ("on", "off"):
        events = light.command(verb == "on", minutes, reason)
    elif verb == "auto":
        events = light.resume_automatic(reason)
    else:
        raise CommandError("unknown_command", f"lights take ON, OFF, AUTO; not {verb!r}")
    return name, events, {"lights": name, "mode": "auto" if verb == "auto" else "manual"}


PUBLISHED = Published("lights", "lights", _entities, _state, _command)

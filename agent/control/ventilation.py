"""Demand-controlled ventilation: CO₂ (and optionally VOC) with hysteresis, one or two stages.

The runtime calls `update()` about once a second with the latest readings and when they were
taken (monotonic). The Wants give every relay's wanted state on every call (a level), with the
switch-offs first, so a relay layer applying them in order never powers both windings of a
two-speed fan at once: stage 1 is the low relay alone, stage 2 the high relay alone.

A sensor that has gone quiet is not trusted: its demand becomes the configured failsafe, by
default "on", because running the fan for nothing costs a little energy while not running it
in a full room costs the air. Events report sensors going stale and recovering, and boosts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

from agent.common.events import Event
from agent.config.ventilation import VentilationConfig
from agent.control.types import Clock, Published, RoomInputs, Want
from agent.mqtt.command_args import CommandError, command_verb, number, optional_minutes
from agent.mqtt.contract import Topics
from agent.mqtt.ha_components import ON_TEMPLATE, command_topic

if TYPE_CHECKING:
    from agent.control.room import RoomController

Reading = tuple[float, float]  # (value, monotonic time it was taken)


class VentilationControl:
    def __init__(self, config: VentilationConfig, clock: Clock) -> None:
        self.config, self.clock = config, clock
        self.stage = 0  # 0 off, 1, 2 (what was last wanted)
        self._co2_stage = 0  # the CO₂ rule's own state, with hysteresis
        self._voc_on = False
        self._started_at = clock.monotonic()  # a sensor gets stale_after to give a first reading
        self._running_since = -math.inf
        self._stale: dict[str, bool] = {}
        self.boost_until: Optional[float] = None
        self.hold: Optional[tuple[int, float]] = None  # (stage, monotonic until): by hand

    def step(self, room: RoomInputs) -> tuple[list[Want], list[Event]]:
        """The Control interface: the unit's CO2 sensor, and its VOC sensor if it has one."""
        c = self.config
        voc = room.readings(c.voc_sensor, "voc_index") if c.voc_sensor else None
        return self.update(room.readings(c.co2_sensor, "co2"), voc)

    def update(
        self, co2: Optional[Reading] = None, voc: Optional[Reading] = None
    ) -> tuple[list[Want], list[Event]]:
        """co2, voc: the latest (value, monotonic) of each sensor, or None if none yet."""
        now = self.clock.monotonic()
        events: list[Event] = []
        if self.boost_until is not None and now >= self.boost_until:
            self.boost_until = None
            events.append(self._event("automatic", "boost ended"))
        demands = [self._co2_demand(co2, now, events)]
        if self.config.voc_sensor is not None:
            demands.append(self._voc_demand(voc, now, events))
        stage, why = max(demands, key=lambda d: d[0])
        top = len(self.config.stages)
        if self.hold is not None and now >= self.hold[1]:
            self.hold = None
            events.append(self._event("automatic", "manual setting ended"))
        if self.boost_until is not None:
            left = (self.boost_until - now) / 60
            stage, why = top, f"boost ({left:.0f} min left; {why})"
        elif self.hold is not None:
            left = (self.hold[1] - now) / 60
            stage, why = self.hold[0], f"set by hand ({left:.0f} min left; {why})"
        elif stage == 0 and self.stage > 0 and now - self._running_since < self._min_run:
            left = (self._running_since + self._min_run - now) / 60
            stage = 1
            why = f"minimum run of {self.config.min_run_minutes:g} min ({left:.1f} min left; {why})"
        if stage > 0 and self.stage == 0:
            self._running_since = now
        self.stage = stage
        reason = f"ventilation {self.config.name}: stage {stage}: {why}"
        return self._wants(stage, reason), events

    def boost(self, minutes: Optional[float] = None, reason: str = "command") -> list[Event]:
        """Top stage for `minutes` (default boost_minutes), then back to automatic."""
        if minutes is None:
            minutes = self.config.boost_minutes
        if not (math.isfinite(minutes) and minutes > 0):
            raise ValueError(f"minutes: must be a positive number, got {minutes}")
        self.boost_until, self.hold = self.clock.monotonic() + minutes * 60, None
        return [self._event("boost", f"{reason}: boost for {minutes:g} min")]

    def cancel_boost(self, reason: str = "command") -> list[Event]:
        if self.boost_until is None:
            return []
        self.boost_until = None
        return [self._event("automatic", f"boost cancelled by {reason}")]

    def set_stage(
        self, stage: int, minutes: Optional[float] = None, reason: str = "command"
    ) -> list[Event]:
        """Holds a stage (0 is off) for `minutes` (default boost_minutes), ending any boost;
        then back to automatic. Minimum run does not keep a fan on that was switched off by
        hand; the relay layer's minimum times still apply."""
        top = len(self.config.stages)
        if isinstance(stage, bool) or not 0 <= stage <= top:
            raise ValueError(f"stage: must be 0..{top}, got {stage!r}")
        if minutes is None:
            minutes = self.config.boost_minutes
        if not (math.isfinite(minutes) and minutes > 0):
            raise ValueError(f"minutes: must be a positive number, got {minutes}")
        self.boost_until = None
        self.hold = (stage, self.clock.monotonic() + minutes * 60)
        return [self._event(f"stage_{stage}", f"{reason}: stage {stage} for {minutes:g} min")]

    def resume_automatic(self, reason: str = "command") -> list[Event]:
        """Ends a boost or a stage set by hand now."""
        if self.boost_until is None and self.hold is None:
            return []
        self.boost_until = self.hold = None
        return [self._event("automatic", f"back to automatic by {reason}")]

    def mode(self) -> str:
        """auto, boost or manual: what decides the stage now."""
        now = self.clock.monotonic()
        if self.boost_until is not None and now < self.boost_until:
            return "boost"
        if self.hold is not None and now < self.hold[1]:
            return "manual"
        return "auto"

    @property
    def _min_run(self) -> float:
        return self.config.min_run_minutes * 60

    def _co2_demand(
        self, reading: Optional[Reading], now: float, events: list[Event]
    ) -> tuple[int, str]:
        c = self.config
        stale = self._check_stale("CO₂", c.co2_sensor, reading, now, events)
        if stale is not None:
            self._co2_stage = 0  # fresh readings are judged afresh, not from before the gap
            return stale
        if reading is None:
            return 0, f"no CO₂ reading from {c.co2_sensor} yet"
        value, s = reading[0], self._co2_stage
        high, high_off = c.co2_high, c.co2_high_off
        if (
            high is not None
            and high_off is not None
            and (value > high or (s == 2 and value >= high_off))
        ):
            s = 2
            why = f"above {high:g}" if value > high else f"not yet below {high_off:g}"
        elif value > c.co2_on:
            s, why = 1, f"above {c.co2_on:g}"
        elif s >= 1 and value >= c.co2_off:
            s, why = 1, f"not yet below {c.co2_off:g}"
        else:
            s = 0
            why = f"at most {c.co2_on:g}" if self._co2_stage == 0 else f"below {c.co2_off:g}"
        self._co2_stage = s
        return s, f"CO₂ {value:.0f} ppm {why} ({c.co2_sensor})"

    def _voc_demand(
        self, reading: Optional[Reading], now: float, events: list[Event]
    ) -> tuple[int, str]:
        c = self.config
        assert c.voc_sensor is not None
        stale = self._check_stale("VOC", c.voc_sensor, reading, now, events)
        if stale is not None:
            self._voc_on = False
            return stale
        if reading is None:
            return 0, f"no VOC reading from {c.voc_sensor} yet"
        value, was = reading[0], self._voc_on
        if value > c.voc_on:
            self._voc_on, why = True, f"above {c.voc_on:g}"
        elif was and value >= c.voc_off:
            why = f"not yet below {c.voc_off:g}"
        else:
            self._voc_on = False
            why = f"at most {c.voc_on:g}" if not was else f"below {c.voc_off:g}"
        return int(self._voc_on), f"VOC index {value:.0f} {why} ({c.voc_sensor})"

    def _check_stale(
        self,
        what: str,
        sensor: str,
        reading: Optional[Reading],
        now: float,
        events: list[Event],
    ) -> Optional[tuple[int, str]]:
        """The failsafe demand if the sensor's reading is too old, else None."""
        taken = self._started_at if reading is None else reading[1]
        age = now - taken
        stale = age > self.config.stale_after
        if stale != self._stale.get(sensor, False):
            self._stale[sensor] = stale
            if stale:
                last = (
                    f"no reading in {age:.0f} s"
                    if reading is None
                    else f"last reading {age:.0f} s ago"
                )
                events.append(
                    self._event(
                        "stale",
                        f"{what} sensor {sensor}: {last} (stale after "
                        f"{self.config.stale_after:g} s); failsafe: fan {self.config.failsafe}",
                        kind="alarm",
                    )
                )
            else:
                events.append(
                    self._event("resolved", f"{what} sensor {sensor} reads again", kind="alarm")
                )
        if not stale:
            return None
        demand = 1 if self.config.failsafe == "on" else 0
        return demand, f"{what} sensor {sensor} stale, failsafe {self.config.failsafe}"

    def _wants(self, stage: int, reason: str) -> list[Want]:
        stages = self.config.stages
        wanted = [i + 1 == stage for i in range(len(stages))]
        wants = [Want(relay, on, reason) for relay, on in zip(stages, wanted)]
        return sorted(wants, key=lambda w: w.on)  # switch-offs first

    def _event(self, state: str, reason: str, kind: str = "mode") -> Event:
        return Event(
            kind,
            f"ventilation:{self.config.name}",
            state,
            f"ventilation {self.config.name}: {reason}",
            self.clock.time(),
        )


# What central systems see of a ventilation unit (agent.control.types.Published) -----------------


def _state(room: RoomController, name: str) -> dict[str, Any]:
    """`stage`: what the relays do now (0 off, 1, 2); `mode`: auto, boost or manual."""
    vent = room.ventilation[name]
    stages = vent.config.stages
    stage = next((i + 1 for i, r in enumerate(stages) if room.relays.state(r)), 0)
    return {"on": stage > 0, "stage": stage, "stages": len(stages), "mode": vent.mode()}


def _entities(vent: VentilationConfig, topics: Topics) -> dict[str, dict[str, Any]]:
    """Home Assistant's fan: on/off, one speed per stage, presets auto and boost (boost for
    the unit's boost_minutes; a JSON command gives another duration)."""
    base = topics.base
    state = topics.control("ventilation", vent.name)
    command = command_topic(base, "ventilation", vent.name)
    fan: dict[str, Any] = {
        "p": "fan",
        "name": vent.name,
        "stat_t": state,
        "stat_val_tpl": ON_TEMPLATE,
        "cmd_t": command,
        "pl_on": "ON",
        "pl_off": "OFF",
    }
    if len(vent.stages) > 1:  # HA refuses a speed range of one (speed_range_max > min)
        fan.update({
            "pct_stat_t": state,
            "pct_val_tpl": "{{ value_json['stage'] }}",
            "pct_cmd_t": f"{command}/stage",
            "spd_rng_min": 1,
            "spd_rng_max": len(vent.stages),
        })  # fmt: skip
    return {
        f"ventilation_{vent.name}": {
            **fan,
            "pr_mode_stat_t": state,
            "pr_mode_val_tpl": "{{ value_json['mode'] if value_json['mode'] != 'manual' "
            "else 'None' }}",
            "pr_mode_cmd_t": f"{command}/preset",
            "pr_modes": ["auto", "boost"],
        }
    }


def _command(
    room: RoomController, path: list[str], body: dict[str, Any], reason: str
) -> tuple[str, list[Event], dict[str, Any]]:
    """cmd/ventilation/<name>: ON, OFF, AUTO, BOOST (optional minutes) or
    {"command": "stage", "stage": n}; .../stage takes the stage alone (Home Assistant's
    speed), .../preset auto or boost."""
    if not path or path[0] not in room.ventilation:
        raise CommandError("unknown_target", "expected cmd/ventilation/<name>"
                           + (f"; no ventilation {path[0]!r}" if path else ""))  # fmt: skip
    name, vent = path[0], room.ventilation[path[0]]
    what = path[1] if len(path) == 2 else None
    if len(path) > 2 or what not in (None, "stage", "preset"):
        raise CommandError(
            "unknown_target", f"cmd/ventilation/{name}: sub-topics are stage and preset"
        )
    top = len(vent.config.stages)
    minutes = optional_minutes(body)
    verb = "stage" if what == "stage" else command_verb(body)
    try:
        if verb == "stage":
            key = "stage" if "stage" in body else "value" if "value" in body else "command"
            stage = number(body, key, 0, top)
            if not stage.is_integer():
                raise CommandError("bad_argument", f"{key}: a whole stage 0..{top}, got {stage:g}")
            events = vent.set_stage(int(stage), minutes, reason)
        elif verb in ("on", "off"):
            events = vent.set_stage(1 if verb == "on" else 0, minutes, reason)
        elif verb == "boost":
            events = vent.boost(minutes, reason)
        elif verb in ("auto", "none"):  # HA sends none for no preset
            events = vent.resume_automatic(reason)
        else:
            raise CommandError("unknown_command", "ventilation takes ON, OFF, AUTO, BOOST, "
                               f"stage; not {verb!r}")  # fmt: skip
    except ValueError as e:
        raise CommandError("bad_argument", str(e)) from None
    return name, events, {"ventilation": name, "mode": vent.mode()}


PUBLISHED = Published("ventilation", "ventilation", _entities, _state, _command)

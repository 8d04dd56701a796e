"""One zone's thermostat: staged heating and cooling with hysteresis, modes, a failsafe.

The thermostat only wishes: every update returns a Want for each of its stage relays, and the
relay layer enforces minimum on/off times and interlocks. Heating comes on below setpoint −
deadband/2 and goes off above setpoint + deadband/2; each further stage sits stage_offset lower.
Cooling works the same way around setpoint + cool_offset, going up. cool_offset must exceed the
deadband, so the bands never overlap and heating and cooling never chase each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from agent.common.events import Event
from agent.config.schedule import WeeklySchedule
from agent.config.zones import ZoneConfig
from agent.control.types import Clock, Published, RoomInputs, Want
from agent.mqtt.command_args import CommandError, number, optional_minutes, word
from agent.mqtt.contract import Topics
from agent.mqtt.ha_components import command_topic, value_template
from drivers.quantities import QUANTITIES

if TYPE_CHECKING:
    from agent.control.room import RoomController

MODES = ("auto", "off", "comfort", "eco", "boost", "manual", "frost")
SCHEDULE_MODES = frozenset({"off", "frost", "eco", "comfort", "boost"})


@dataclass(frozen=True)
class _Target:
    mode: str  # what is regulated: off, frost, eco, comfort, boost, manual
    setpoint: Optional[float]  # heating setpoint; None when off
    why: str  # how this mode came about


class Thermostat:
    """One zone. The runtime calls update() about once a second with the latest reading."""

    def __init__(
        self, config: ZoneConfig, schedule: Optional[WeeklySchedule], clock: Clock
    ) -> None:
        if schedule is not None and not schedule.modes <= SCHEDULE_MODES:
            unknown = ", ".join(sorted(schedule.modes - SCHEDULE_MODES))
            raise ValueError(
                f"schedule: mode {unknown} cannot be scheduled "
                f"(schedulable: {', '.join(sorted(SCHEDULE_MODES))})"
            )
        self.config, self.schedule, self.clock = config, schedule, clock
        now = clock.monotonic()
        self._started = now
        self._mode, self._mode_reason = "auto", "the default"
        self._until: Optional[float] = None  # monotonic end of a mode held for a time
        self._held_minutes = 0.0
        self._manual: Optional[float] = None
        self._heat = [False] * len(config.heat_stages)
        self._cool = [False] * len(config.cool_stages)
        self._reading: Optional[tuple[float, float]] = None  # (°C, monotonic when taken)
        self._fault: Optional[str] = None  # "stale" or "implausible" while in failsafe
        self._failsafe_since = now
        self._vacant_since: Optional[float] = None
        self._base: Optional[str] = None  # the mode before occupancy setback, and since when
        self._base_since = now
        self._reported: Optional[tuple[str, Optional[float]]] = None
        # Which stages may run (Home Assistant's heat, cool or heat_cool): heat never cools.
        self.hvac = hvac_modes(config)[-1]

    # --- commands ---------------------------------------------------------------------------

    def set_mode(self, mode: str, reason: str, minutes: Optional[float] = None) -> list[Event]:
        """Selects a mode; with minutes (always for boost) it is held that long, then auto."""
        if mode not in MODES:
            raise ValueError(f"mode: unknown mode {mode!r} (modes: {', '.join(MODES)})")
        if mode == "manual":
            raise ValueError("mode: manual needs a setpoint; use set_manual()")
        if mode == "auto" and minutes is not None:
            raise ValueError("minutes: auto follows the schedule and is not held for a time")
        if mode == "boost" and minutes is None:
            minutes = self.config.boost_minutes
        return self._select(mode, reason, minutes, None)

    def set_manual(
        self, setpoint: float, minutes: Optional[float] = None, reason: str = "set by hand"
    ) -> list[Event]:
        """Holds a hand-set setpoint for minutes (default manual_minutes), then auto."""
        c = self.config
        if not (math.isfinite(setpoint) and c.plausible_min <= setpoint <= c.plausible_max):
            raise ValueError(
                f"setpoint: {setpoint} °C is outside {c.plausible_min:g}..{c.plausible_max:g} °C"
            )
        held = c.manual_minutes if minutes is None else minutes
        return self._select("manual", reason, held, float(setpoint))

    def _select(
        self, mode: str, reason: str, minutes: Optional[float], manual: Optional[float]
    ) -> list[Event]:
        if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
            raise ValueError(f"minutes: must be more than 0, got {minutes}")
        now, wall = self.clock.monotonic(), self.clock.time()
        self._mode, self._mode_reason, self._manual = mode, reason, manual
        self._until = None if minutes is None else now + minutes * 60
        self._held_minutes = minutes or 0.0
        target = self._target(now, wall, commit=True)
        self._reported = (target.mode, target.setpoint)
        text = f"zone {self.config.name}: {_describe(target)}"
        if mode == "auto":
            text = f"zone {self.config.name}: auto selected ({reason}): {_describe(target)}"
        elif minutes is not None:
            text += f" for {minutes:g} min"
        return [Event("mode", self.config.name, target.mode, text, wall)]

    def set_hvac(self, hvac: str, reason: str) -> list[Event]:
        """Restricts the zone to heating or cooling, or allows both (what its relays can do);
        the mode and setpoint stay as they are."""
        allowed = hvac_modes(self.config)
        if hvac not in allowed:
            raise ValueError(f"mode: zone {self.config.name} can do {', '.join(allowed)}; "
                             f"not {hvac!r}")  # fmt: skip
        self.hvac = hvac
        text = f"zone {self.config.name}: {hvac.replace('_', ' and ')} only ({reason})"
        if hvac == "heat_cool":
            text = f"zone {self.config.name}: heats and cools ({reason})"
        return [Event("mode", self.config.name, f"hvac_{hvac}", text, self.clock.time())]

    # --- queries ----------------------------------------------------------------------------

    def current_mode(self) -> str:
        """The selected mode: auto, off, comfort, eco, boost, manual or frost."""
        return self._selected(self.clock.monotonic())

    def effective_mode(self) -> str:
        """The mode being regulated: the schedule's under auto, eco under occupancy setback."""
        return self._target(self.clock.monotonic(), self.clock.time(), commit=False).mode

    def effective_setpoint(self) -> Optional[float]:
        """The heating setpoint in force (cooling: + cool_offset); None when off."""
        return self._target(self.clock.monotonic(), self.clock.time(), commit=False).setpoint

    # --- the loop ---------------------------------------------------------------------------

    def step(self, room: RoomInputs) -> tuple[list[Want], list[Event]]:
        """The Control interface: the zone's sensor's temperature and the room's occupancy."""
        return self.update(room.readings(self.config.sensor, "temperature"), room.occupied)

    def update(
        self, temperature: Optional[tuple[float, float]], occupied: Optional[bool] = None
    ) -> tuple[list[Want], list[Event]]:
        """temperature: the latest (°C, monotonic time taken) from the sensor, or None if
        there is nothing new; occupied: None when no occupancy sensor knows."""
        now, wall = self.clock.monotonic(), self.clock.time()
        note = ""
        if self._until is not None and now >= self._until:
            note = f" ({self._mode} for {self._held_minutes:g} min ended: back to the schedule)"
            self._mode, self._mode_reason, self._until, self._manual = "auto", "", None, None
        if occupied is False:
            if self._vacant_since is None:
                self._vacant_since = now
        else:  # occupied, or unknown: unknown is no evidence of an empty room
            self._vacant_since = None
        if temperature is not None and (
            self._reading is None or temperature[1] >= self._reading[1]
        ):
            self._reading = (float(temperature[0]), float(temperature[1]))

        events: list[Event] = []
        name = self.config.name
        target = self._target(now, wall, commit=True)
        if (target.mode, target.setpoint) != self._reported:
            self._reported = (target.mode, target.setpoint)
            text = f"zone {name}: {_describe(target)}{note}"
            events.append(Event("mode", name, target.mode, text, wall))

        fault, detail = self._check_reading(now)
        if fault in ("stale", "implausible") and fault != self._fault:
            if self._fault is None:
                self._failsafe_since = now
                # Start afresh on recovery: the old hysteresis state describes another room.
                self._heat = [False] * len(self._heat)
                self._cool = [False] * len(self._cool)
            self._fault = fault
            text = f"zone {name}: {detail}; failsafe {self.config.failsafe}"
            events.append(Event("alarm", name, fault, text, wall))
        elif fault is None and self._fault is not None:
            lasted = now - self._failsafe_since
            text = f"zone {name}: {detail}; back to normal after {lasted:.0f} s of failsafe"
            self._fault = None
            events.append(Event("alarm", name, "resolved", text, wall))
        return self._wants(target, fault, detail, now), events

    def _check_reading(self, now: float) -> tuple[Optional[str], str]:
        """(fault, what about the reading): fault None when it can be regulated on, "waiting"
        before the first reading, "stale" or "implausible" for the failsafe."""
        c, reading = self.config, self._reading
        if reading is None:
            age = now - self._started
            if age > c.stale_after:
                return "stale", f"no reading from sensor {c.sensor} in {age:.0f} s since start"
            return "waiting", f"waiting for the first reading from sensor {c.sensor}"
        value, taken = reading
        age = now - taken
        if age > c.stale_after:
            return "stale", (
                f"sensor {c.sensor}'s last temperature is {age:.0f} s old "
                f"(stale after {c.stale_after:g} s)"
            )
        if not (math.isfinite(value) and c.plausible_min <= value <= c.plausible_max):
            return "implausible", (
                f"sensor {c.sensor} reads {value:.1f} °C, outside the plausible "
                f"{c.plausible_min:g}..{c.plausible_max:g} °C"
            )
        return None, f"sensor {c.sensor} reads {value:.2f} °C"

    def _wants(self, target: _Target, fault: Optional[str], detail: str, now: float) -> list[Want]:
        c, zone = self.config, f"zone {self.config.name}"
        relays = (*c.heat_stages, *c.cool_stages)
        if target.setpoint is None:
            self._heat = [False] * len(self._heat)
            self._cool = [False] * len(self._cool)
            return [Want(r, False, f"{zone}: off ({target.why})") for r in relays]
        if fault == "waiting":
            return [Want(r, False, f"{zone}: {detail}") for r in relays]
        if fault is not None:
            if c.failsafe == "off":
                return [Want(r, False, f"{zone}: failsafe off, {detail}") for r in relays]
            # No temperature, so nothing to regulate: heat 1 runs a fixed share of each period,
            # enough to keep pipes from freezing without cooking an occupied room.
            period = c.failsafe_period_minutes * 60
            run = c.failsafe_duty * period
            on = (now - self._failsafe_since) % period < run
            duty = f"runs {run / 60:g} of every {period / 60:g} min"
            why = f"{zone}: failsafe frost, {detail}: heat 1 {'on' if on else 'off'} ({duty})"
            first = Want(c.heat_stages[0], on, why)
            rest = f"{zone}: failsafe frost runs heat 1 only, {detail}"
            return [first, *(Want(r, False, rest) for r in relays[1:])]

        assert self._reading is not None
        temp, sp, half = self._reading[0], target.setpoint, c.deadband / 2
        wants = []
        for k, relay in enumerate(c.heat_stages):
            if self.hvac == "cool":
                self._heat[k] = False
                wants.append(Want(relay, False, f"{zone}: set to cool only"))
                continue
            centre = sp - k * c.stage_offset
            base = f"{target.mode} {sp:.1f}" + (f" − {k * c.stage_offset:g}" if k else "")
            self._heat[k], why = _band(f"heat {k + 1}", temp, self._heat[k], centre, half, base)
            wants.append(Want(relay, self._heat[k], f"{zone}: {why} (sensor {c.sensor})"))
        for k, relay in enumerate(c.cool_stages):
            if self.hvac == "heat":
                self._cool[k] = False
                wants.append(Want(relay, False, f"{zone}: set to heat only"))
                continue
            if target.mode == "frost":  # frost protection only ever heats
                self._cool[k] = False
                wants.append(Want(relay, False, f"{zone}: frost protection does not cool"))
                continue
            offset = c.eco_cool_offset if target.mode == "eco" else c.cool_offset
            centre = sp + offset + k * c.stage_offset
            base = f"{target.mode} {sp:.1f} + {offset:g}"
            base += f" + {k * c.stage_offset:g}" if k else ""
            self._cool[k], why = _band(f"cool {k + 1}", temp, self._cool[k], centre, half, base)
            wants.append(Want(relay, self._cool[k], f"{zone}: {why} (sensor {c.sensor})"))
        return wants

    # --- which mode -------------------------------------------------------------------------

    def _selected(self, now: float) -> str:
        if self._until is not None and now >= self._until:
            return "auto"  # expired; update() will say so
        return self._mode

    def _target(self, now: float, wall: float, commit: bool) -> _Target:
        """What to regulate now. commit: remember when the scheduled mode last changed, which
        the occupancy setback counts from (vacancy only counts during comfort)."""
        c, mode = self.config, self._selected(now)
        if mode == "auto":
            if self.schedule is None:
                base, why = "comfort", "auto, no schedule"
            else:
                rule = self.schedule.rule_at(wall)
                base, why = rule.mode, f"auto, schedule rule {rule.text!r}"
        elif mode == "manual":
            assert self._manual is not None
            return _Target("manual", self._manual, f"selected: {self._mode_reason}")
        else:
            base, why = mode, f"selected: {self._mode_reason}"
        if commit and base != self._base:
            self._base, self._base_since = base, now
        since = self._base_since if base == self._base else now
        if base == "off":
            return _Target("off", None, why)
        if base == "comfort" and self._vacant_since is not None:
            vacant = now - max(self._vacant_since, since)
            if vacant >= c.vacancy_setback_minutes * 60:
                why = f"{why}, but vacant for {vacant / 60:.0f} min: set back"
                return _Target("eco", c.eco, why)
        return _Target(base, c.setpoint(base), why)


def hvac_modes(config: ZoneConfig) -> tuple[str, ...]:
    """Home Assistant's hvac modes (besides off) that the zone's relays can do."""
    if config.heat_stages and config.cool_stages:
        return ("heat", "cool", "heat_cool")
    return ("heat",) if config.heat_stages else ("cool",)


def _band(
    stage: str, temp: float, was_on: bool, centre: float, half: float, base: str
) -> tuple[bool, str]:
    """One stage's hysteresis around centre ± half. A heat stage comes on below the band and
    goes off above it; a cool stage the other way round. Inside the band it stays as it was."""
    heats = stage.startswith("heat")
    low, high = centre - half, centre + half
    turns_on, holds = (temp < low, temp <= high) if heats else (temp > high, temp >= low)
    on = turns_on or (was_on and holds)
    state, t = "on" if on else "off", f"{temp:.2f} °C"
    low_text, high_text = f"{low:.2f} ({base} − {half:g})", f"{high:.2f} ({base} + {half:g})"
    if temp < low:
        return on, f"{t} < {low_text}: {stage} {state}"
    if temp > high:
        return on, f"{t} > {high_text}: {stage} {state}"
    until = f"above {high_text}" if heats == on else f"below {low_text}"
    return on, f"{t}: {stage} {state} until {until}"


def _describe(target: _Target) -> str:
    if target.setpoint is None:
        return f"off ({target.why})"
    return f"{target.mode} {target.setpoint:.1f} °C ({target.why})"


# What central systems see of a zone (agent.control.types.Published) -----------------------------

HA_PRESETS = ("comfort", "eco", "boost", "frost")  # the fixed-setpoint modes, HA's presets
HA_MODES = ("off", "heat", "cool", "heat_cool", "auto")  # what cmd/zone/<zone>/mode takes
PRESETS = (*HA_PRESETS, "auto")  # what cmd/zone/<zone>/preset takes


def _state(room: RoomController, name: str) -> dict[str, Any]:
    zone = room.zones[name]
    mode = zone.current_mode()
    return {
        "mode": mode,
        "hvac": "off" if mode == "off" else zone.hvac,
        "setpoint": zone.effective_setpoint(),
        "action": room.zone_action(name),
        # At the sensor's published precision: the raw compensated float changes every reading,
        # and each change is a retained publish.
        "temperature": _rounded(room.zone_temperature(name), QUANTITIES["temperature"].decimals),
    }


def _rounded(value: Optional[float], decimals: int) -> Optional[float]:
    return None if value is None else round(value, decimals)


def _entities(zone: ZoneConfig, topics: Topics) -> dict[str, dict[str, Any]]:
    """Home Assistant's climate: exactly what the zone's relays can do; heat never cools
    (Thermostat.set_hvac)."""
    base = topics.base
    state = topics.control("zone", zone.name)
    presets = ", ".join(f"'{p}'" for p in HA_PRESETS)
    climate = {
        "p": "climate",
        "name": zone.name,
        "modes": ["off", *hvac_modes(zone)],
        "mode_stat_t": state,
        "mode_stat_tpl": "{{ value_json['hvac'] }}",
        "mode_cmd_t": command_topic(base, "zone", zone.name, "mode"),
        "pr_modes": list(HA_PRESETS),
        "pr_mode_stat_t": state,
        "pr_mode_val_tpl": "{{ value_json['mode'] if value_json['mode'] in "
        f"[{presets}] else 'none' }}}}",
        "pr_mode_cmd_t": command_topic(base, "zone", zone.name, "preset"),
        # HA offers and sends "none" for no preset; the zone's word for it is auto (schedule).
        "pr_mode_cmd_tpl": "{{ 'auto' if value == 'none' else value }}",
        "temp_stat_t": state,
        "temp_stat_tpl": "{{ value_json['setpoint'] }}",
        "temp_cmd_t": command_topic(base, "zone", zone.name, "setpoint"),
        "curr_temp_t": topics.state(zone.sensor),
        "curr_temp_tpl": value_template("values", "temperature"),
        "act_t": state,
        "act_tpl": "{{ value_json['action'] }}",
        # HA's own defaults (7..35 °C), widened to the frost setpoint, within what
        # Thermostat.set_manual accepts.
        "min_temp": max(zone.plausible_min, min(7.0, zone.frost)),
        "max_temp": min(zone.plausible_max, 35.0),
        "temp_step": 0.5,
        "precision": 0.1,
        "temp_unit": "C",
    }
    return {f"zone_{zone.name}": climate}


def _command(
    room: RoomController, path: list[str], body: dict[str, Any], reason: str
) -> tuple[str, list[Event], dict[str, Any]]:
    """cmd/zone/<zone>/setpoint, mode or preset."""
    if not path or path[0] not in room.zones:
        raise CommandError("unknown_target", "expected cmd/zone/<zone>/{setpoint,mode,preset}"
                           + (f"; no zone {path[0]!r}" if path else ""))  # fmt: skip
    if len(path) != 2 or not path[1]:
        raise CommandError("unknown_target", f"cmd/zone/{path[0]}: missing the sub-topic: "
                           "cmd/zone/<zone>/setpoint, mode or preset")  # fmt: skip
    zone, what = room.zones[path[0]], path[1]
    minutes = optional_minutes(body)
    key = "value" if "value" in body else "command"
    try:
        if what == "setpoint":
            c = zone.config
            events = zone.set_manual(number(body, key, c.plausible_min, c.plausible_max),
                                     minutes, reason)  # fmt: skip
        elif what == "mode":
            mode = word(body, "mode" if "mode" in body else key, HA_MODES)
            events = _zone_mode(zone, mode, reason, minutes)
        elif what == "preset":
            preset = word(body, "preset" if "preset" in body else key, PRESETS)
            events = zone.set_mode(preset, reason, minutes)
        else:
            raise CommandError(
                "unknown_command", f"zone takes setpoint, mode, preset; not {what!r}"
            )
    except ValueError as e:
        raise CommandError("bad_argument", str(e)) from None
    return path[0], events, {"zone": path[0], "mode": zone.current_mode(), "hvac": zone.hvac,
                             "setpoint": zone.effective_setpoint()}  # fmt: skip


def _zone_mode(zone: Thermostat, mode: str, reason: str, minutes: Optional[float]) -> list[Event]:
    """off switches the zone off; heat, cool and heat_cool say which of its stages may run
    (a zone that was off follows its schedule again); auto is everything it can do."""
    if mode == "off":
        return zone.set_mode("off", reason, minutes)
    hvac = hvac_modes(zone.config)[-1] if mode == "auto" else mode
    if hvac not in hvac_modes(zone.config):
        can = ", ".join(("off", *hvac_modes(zone.config)))
        raise CommandError(
            "bad_argument", f"mode: zone {zone.config.name} can do {can}; not {mode!r}"
        )
    events = zone.set_hvac(hvac, reason)
    if zone.current_mode() == "off" or mode == "auto":
        events += zone.set_mode("auto", reason, minutes)
    return events


PUBLISHED = Published("zone", "zones", _entities, _state, _command)

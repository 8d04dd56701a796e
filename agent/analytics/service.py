"""The agent's side of fault detection and optimum start (docs/analytics.md).

- Faults: a FaultMonitor fed from what the node already knows (its relays' states, contact
  inputs, zones, each sensor's new readings, and the power of a metered circuit behind exactly
  one relay); each fault detected or cleared is an event through the durable buffer, and the
  faults in force are retained on `<base>/faults` (Home Assistant: a `problem` binary sensor).
- Optimum start ([room.optimum_start]): per zone with heating stages, an OptimumStart learned by
  a Recorder from the zone's output and the room's indoor and outdoor temperatures, asked by a
  PreheatPlanner when the zone must go to comfort before each session. Every start (or early
  stop) is an event with its reason. What is learned is kept in `analytics.json` in the state
  directory, so it survives restarts and pushed configs; a corrupt entry is discarded with a log
  line (and the fixed lead used until learned again).

`analytics.json` also carries a short status for `roomagent doctor`, written only when
something changes (a lesson, a decision, a fault), never every look: SD cards wear.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent.analytics.faults import FaultMonitor
from agent.analytics.optimum_start import Decision, OptimumStart, Recorder
from agent.analytics.preheat import PreheatPlanner, WarmupOutput
from agent.common.events import Event
from agent.common.state_store import StateStore
from agent.config.analytics import FaultConfig, OptimumStartConfig
from agent.control.types import Clock

if TYPE_CHECKING:
    from agent.config.schema import Config
    from agent.node.ports import NodeParts

log = logging.getLogger(__name__)
STATE_FILE = "analytics.json"
LEARN_EVERY = 60.0  # s between the Recorder's looks (its lessons are minutes to hours long)
TICK = 5.0  # s between the fault monitor's looks


@dataclass
class ZoneLearning:
    learner: OptimumStart
    planner: PreheatPlanner
    recorder: Recorder
    output: WarmupOutput = field(default_factory=WarmupOutput)
    mode: Optional[str] = None  # the mode this planner last set
    written: Optional[float] = None  # the pending start last written for doctor


class Analytics:
    def __init__(
        self,
        faults: Optional[FaultConfig],
        learning: Optional[OptimumStartConfig],
        relays: dict[str, str],
        zones: dict[str, tuple[tuple[str, ...], float]],
        state_dir: Path,
        tz: Any = None,
    ) -> None:
        """`relays`: name -> kind; `zones`: name -> (heat stages, cool offset)."""
        self.monitor = FaultMonitor(faults, relays) if faults is not None else None
        self.store = StateStore(state_dir / STATE_FILE)
        self.zones: dict[str, ZoneLearning] = {}
        self._cool_offsets = {name: offset for name, (_, offset) in zones.items()}
        self._stages = {name: stages for name, (stages, _) in zones.items()}
        if learning is not None:
            for name, (stages, _) in zones.items():
                if not stages:
                    continue
                saved = self.store.get(f"optimum_start.{name}.heat")
                learner = OptimumStart(name, learning, "heat", saved=saved, tz=tz)
                planner = PreheatPlanner(learner, early_stop=learning.early_stop)
                self.zones[name] = ZoneLearning(learner, planner, Recorder(learner))
        self._learned_at: Optional[float] = None
        self._wall = 0.0  # wall time of the latest plan()
        self._fed: dict[str, float] = {}  # device -> when its last reading fed the monitor

    # --- faults ---------------------------------------------------------------------------------

    def observe(
        self,
        mono: float,
        relays: dict[str, bool],
        contacts: dict[str, bool],
        zones: dict[str, tuple[Optional[float], Optional[float], tuple[str, ...], tuple[str, ...]]],
        readings: dict[str, tuple[dict[str, float], float]],
        power: dict[str, tuple[float, float]],
    ) -> None:
        """One look at the node. `contacts`: name -> open; `zones`: name -> (temperature,
        heating setpoint, heat stages, cool stages); `readings`: device -> (values, when read);
        `power`: relay -> (watts, when read) of the circuit behind it."""
        m = self.monitor
        if m is None:
            return
        for name, on in relays.items():
            m.relay(name, on, mono)
        for name, is_open in contacts.items():
            m.contact(name, is_open, mono)
        for name, (temp, setpoint, heat, cool) in zones.items():
            if temp is None or setpoint is None:
                continue
            learning = self.zones.get(name)
            warming = learning is not None and learning.planner.warming(self._wall)
            if heat and all(relays.get(r) for r in heat):
                m.zone(name, not warming, temp, setpoint, "heat")
            elif cool and all(relays.get(r) for r in cool):
                m.zone(name, True, temp, setpoint + self._cool_offsets.get(name, 0.0), "cool")
            else:
                m.zone(name, False, temp, setpoint, "heat")
        for device, (values, when) in readings.items():
            if self._fed.get(device) == when:
                continue  # the same reading again is not a repeat of the sensor's
            self._fed[device] = when
            for quantity, value in values.items():
                m.reading(device, quantity, value, when)
        for relay, (watts, when) in power.items():
            m.power(relay, watts, when)

    def faults(self, mono: float, wall: float) -> tuple[list[Event], Optional[dict[str, Any]]]:
        """The faults detected or cleared at this look, and the retained `<base>/faults` body
        when it changed (else None)."""
        if self.monitor is None:
            return [], None
        events = self.monitor.tick(mono, wall)
        if not events:
            return [], None
        body = self.faults_body(wall)
        self.store.set("faults", body)
        self.store.flush()
        return events, body

    def faults_body(self, wall: float) -> dict[str, Any]:
        from agent.mqtt.contract import iso_utc

        active = self.monitor.active() if self.monitor is not None else {}
        return {
            "ts": iso_utc(wall),
            "problem": bool(active),
            "active": [
                {"fault": key.split(":", 1)[0], "subject": key.split(":", 1)[1], "reason": why}
                for key, why in sorted(active.items())
            ],
        }

    # --- optimum start --------------------------------------------------------------------------

    def plan(
        self,
        now: float,
        current: Optional[tuple[float, float]],
        upcoming: Optional[float],
        zones: dict[str, tuple[float, Optional[float], list[bool]]],
        outdoor: Optional[float],
    ) -> list[tuple[str, str, Optional[Decision]]]:
        """Each learning zone's look: `zones` maps name -> (comfort setpoint, temperature,
        heat stages on). Returns (zone, mode, decision) where the zone's mode must change."""
        self._wall = now
        out: list[tuple[str, str, Optional[Decision]]] = []
        learn = self._learned_at is None or now - self._learned_at >= LEARN_EVERY
        changed = False
        for name, z in self.zones.items():
            if name not in zones:
                continue
            setpoint, temp, stages = zones[name]
            look = z.planner.look(now, current, upcoming, setpoint, temp, outdoor,
                                  z.recorder.duty(now))  # fmt: skip
            mode = "comfort" if look.comfort else "eco"
            output = z.output(stages, look.comfort)
            if (learn and temp is not None and outdoor is not None
                    and z.recorder.observe(now, temp, outdoor, output)):  # fmt: skip
                self.store.set(f"optimum_start.{name}.heat", z.learner.state())
                changed = True
            pending = look.pending.start_at if look.pending is not None else None
            if (pending is None) != (z.written is None) or (
                pending is not None and z.written is not None and abs(pending - z.written) >= 600
            ):  # the next decision moved by 10 minutes or more: doctor's status is rewritten
                z.written = pending
                changed = True
            if mode != z.mode or look.decision is not None:
                z.mode = mode
                out.append((name, mode, look.decision))
                changed = changed or look.decision is not None
        if learn:
            self._learned_at = now
        if changed:
            self.store.set("optimum_start_status", self.status())
            self.store.flush()
        return out

    def status(self) -> dict[str, Any]:
        """For doctor: per zone, the warm-ups learned, the drift learned, the latest decision."""
        out: dict[str, Any] = {}
        for name, z in self.zones.items():
            fit = z.learner.fit()
            last = z.planner.last
            out[name] = {
                "warmups": len(z.learner.episodes),
                "needed": z.learner.config.min_episodes,
                "rate_k_h": None if fit is None else round(fit.a, 2),
                "drift_tau_h": None if z.learner.tau_h is None else round(z.learner.tau_h, 1),
                "last_decision": None if last is None else last.reason,
                "next_decision": None if z.planner.pending is None else z.planner.pending.reason,
            }
        return out

    def close(self) -> None:
        self.store.flush()


def build(config: Config) -> Optional[Analytics]:
    """The node's Analytics from its config, or None when it has nothing to watch."""
    control = config.control
    learning = config.room.optimum_start if config.room is not None else None
    if config.faults is None and learning is None:
        return None
    if not (control.relays or control.inputs or config.room is not None):
        return None
    from zoneinfo import ZoneInfo

    zones = {z.name: (tuple(z.heat_stages), z.cool_offset) for z in control.zones}
    relays = {r.name: r.kind for r in control.relays}
    state_dir = config.node.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    return Analytics(config.faults, learning, relays, zones, state_dir,
                     ZoneInfo(control.timezone))  # fmt: skip


def snapshot(parts: Callable[[], NodeParts], clock: Clock) -> Callable[[], None]:
    """A look at the node for Analytics.observe (one place that knows where things are)."""

    def look() -> None:
        node = parts()  # one look at the parts of the moment
        analytics: Optional[Analytics] = node.analytics
        room = node.room
        if analytics is None:
            return
        mono = clock.monotonic()
        relays = room.relays.states() if room is not None else {}
        contacts: dict[str, bool] = {}
        zones: dict[str, Any] = {}
        if room is not None:
            for i in node.config.control.inputs:
                if i.kind == "contact":
                    contacts[i.name] = room.inputs.state(i.name) == "open"
            for name, zone in room.zones.items():
                zones[name] = (room.zone_temperature(name), zone.effective_setpoint(),
                               zone.config.heat_stages, zone.config.cool_stages)  # fmt: skip
        readings = {r.config.name: (dict(r.last_values), r.last_good) for r in node.runners
                    if r.last_values}  # fmt: skip
        power: dict[str, tuple[float, float]] = {}
        for r in node.runners:
            circuit = tuple(r.config.options.get("circuit_relays", ()))
            # Only a circuit behind one relay says what that relay does; shared circuits are
            # checked as a whole by the meter's own guard (agent/sensing/modbus/energy.py).
            if len(circuit) == 1 and "power" in r.last_values:
                power[circuit[0]] = (r.last_values["power"], r.last_good)
        analytics.observe(mono, relays, contacts, zones, readings, power)

    return look


async def run(
    parts: Callable[[], NodeParts], clock: Clock, emit: Callable[[Event], None],
    retain: Callable[[str, bytes], None], base_topic: str,
) -> None:  # fmt: skip
    """The fault monitor's loop: events through the durable buffer, `<base>/faults` retained
    (at start too, so Home Assistant's problem sensor is known to be off)."""
    from agent.mqtt.contract import json_payload

    look = snapshot(parts, clock)
    published: Optional[Analytics] = None
    while True:
        try:
            analytics: Optional[Analytics] = parts().analytics
            if analytics is not None and analytics.monitor is not None:
                look()
                now = clock.time()
                events, body = analytics.faults(clock.monotonic(), now)
                for event in events:
                    emit(event)
                if body is None and published is not analytics:
                    body = analytics.faults_body(now)
                if body is not None:
                    published = analytics
                    retain(faults_topic(base_topic), json_payload(body))
        except Exception:
            log.exception("fault detection failed this round; carrying on")
        await asyncio.sleep(TICK)


def faults_topic(base: str) -> str:
    return f"{base}/faults"


def discovery_components(config: Any, base: str) -> dict[str, dict[str, Any]]:
    """Home Assistant: one `problem` binary sensor for the node's faults, the list and reasons
    as its attributes."""
    if config.faults is None or not (config.control.relays or config.control.inputs
                                     or config.room is not None):  # fmt: skip
        return {}
    topic = faults_topic(base)
    return {"faults": {"p": "binary_sensor", "name": "fault", "dev_cla": "problem",
                       "stat_t": topic, "val_tpl": "{{ 'ON' if value_json['problem'] else 'OFF' }}",
                       "json_attr_t": topic, "json_attr_tpl": "{{ {'active': value_json['active']}"
                       " | tojson }}", "ent_cat": "diagnostic"}}  # fmt: skip

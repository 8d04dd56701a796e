"""One room's control loop: inputs and readings in, relay requests and events out.

The runtime calls tick() about once a second. Each control (thermostat zones, lights,
ventilation) says what it wants for its relays with a reason; the relay bank enforces the
safety rules (interlocks, minimum on/off times, chatter guard) and switches. Nothing here needs
the network, so a room stays controlled while the broker is away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional

from agent.common.events import Event
from agent.common.state_store import StateStore
from agent.config.control import ControlConfig
from agent.control import inputs, lights, thermostat, ventilation
from agent.control.inputs import InputBank
from agent.control.lights import LightControl
from agent.control.relays import RelayBank
from agent.control.scenes import SceneManager
from agent.control.thermostat import Thermostat
from agent.control.types import Clock, Control, Published, RoomInputs, Want
from agent.control.ventilation import VentilationControl

# device name, quantity -> (value, monotonic time it was measured), or None
ReadingSource = Callable[[str, str], Optional[tuple[float, float]]]
# BLE presence group -> someone is there (None: not known now, e.g. the BLE scan is down)
PresenceSource = Callable[[], Mapping[str, Optional[bool]]]

# What central systems see of the room's controls and inputs, one line per kind, in the order
# of their Home Assistant components (the discovery payload keeps it byte for byte).
PUBLISHED: tuple[Published, ...] = (
    lights.PUBLISHED,
    ventilation.PUBLISHED,
    inputs.PUBLISHED,
    thermostat.PUBLISHED,
)

# A room counts as occupied while any motion input saw motion this recently: PIRs re-trigger
# every few seconds while people move, and sit quietly through a long speech.
OCCUPIED_FOR = 15 * 60.0
# A relay whose request was deferred or refused is asked again after this long.
REASK_AFTER = 60.0


class RoomController:
    relays: RelayBank
    inputs: InputBank

    def __init__(
        self,
        config: ControlConfig,
        pin_factory: Any,
        clock: Clock,
        store: StateStore,
        readings: ReadingSource,
        presence: Optional[PresenceSource] = None,
        previous: Optional[RoomController] = None,
    ) -> None:
        """`previous`: the controller of a config being replaced (a reload). What the new config
        keeps unchanged carries on as it was: relays on the same pins keep their state and
        timers, unchanged zones keep their mode and overrides, unchanged inputs their history."""
        self.config, self.clock, self.readings = config, clock, readings
        self.presence = presence
        old = previous.config if previous is not None else None
        if previous is not None and old is not None and old.inputs == config.inputs:
            self.inputs = previous.inputs
            new_inputs = False
        else:
            if previous is not None:
                previous.inputs.close()  # its pins may be the new inputs' pins
            try:
                self.inputs = InputBank(
                    config.inputs, pin_factory, clock, strict=previous is not None
                )
            except Exception:
                if previous is not None and old is not None:
                    previous.inputs = InputBank(old.inputs, pin_factory, clock)
                raise
            new_inputs = True
        try:
            # Claims new pins before it touches the previous bank (see RelayBank).
            self.relays = RelayBank(
                config.relays, pin_factory, clock, store, previous.relays if previous else None
            )
        except Exception:
            if new_inputs:
                self.inputs.close()
                if previous is not None and old is not None:
                    previous.inputs = InputBank(old.inputs, pin_factory, clock)
            raise

        def same(kind: str, name: str, item: Any) -> Any:
            """The previous controller's object for an unchanged item, else None."""
            objects = getattr(previous, kind, {}) if previous is not None else {}
            earlier = objects.get(name)
            return earlier if earlier is not None and earlier.config == item else None

        self.zones = {
            z.name: (
                same("zones", z.name, z)
                if old is not None and old.schedules.get(z.name) == config.schedules.get(z.name)
                else None
            )
            or Thermostat(z, config.schedules.get(z.name), clock)
            for z in config.zones
        }
        self.lights = {
            c.name: same("lights", c.name, c) or LightControl(c, clock) for c in config.lights
        }
        self.ventilation = {
            c.name: same("ventilation", c.name, c) or VentilationControl(c, clock)
            for c in config.ventilation
        }
        self.scenes = {s.name: s for s in config.scenes}
        self.scene_manager = SceneManager(self.lights, self.zones, self.ventilation, clock)
        self._motion_inputs = [i.name for i in config.inputs if i.kind == "motion"]
        self._asked: dict[str, tuple[bool, float]] = {}  # relay -> (on, when last asked)
        self.startup_events = list(self.relays.startup_events)
        # What the zones are told of presence; a session calendar (agent/room/service.py) hides
        # an empty room during a session's preheat, which must not set the zone back.
        self.zone_presence: Callable[[Optional[bool]], Optional[bool]] = lambda seen: seen

    def occupied(self) -> Optional[bool]:
        """From the motion inputs and the BLE presence groups, either being enough: None when
        the room has neither (or only presence groups that do not know right now)."""
        known = [v for v in self._presence().values() if v is not None]
        if not self._motion_inputs:
            return any(known) if known else None
        now = self.clock.monotonic()
        seen = [self.inputs.last_motion(name) for name in self._motion_inputs]
        return any(t is not None and now - t < OCCUPIED_FOR for t in seen) or any(known)

    def _presence(self) -> Mapping[str, Optional[bool]]:
        return self.presence() if self.presence is not None else {}

    def controls(self) -> list[Control]:
        """Every control rule, in the order they speak each tick."""
        return [*self.zones.values(), *self.lights.values(), *self.ventilation.values()]

    def tick(self) -> list[Event]:
        events = self.inputs.poll()
        room = RoomInputs(
            readings=self.readings,
            occupied=self.zone_presence(self.occupied()),
            last_motion=self._last_motion,
            presence=self._presence(),
            input_events=[e for e in events if e.kind == "input"],
        )
        wants: list[Want] = []
        for control in self.controls():
            w, e = control.step(room)
            wants += w
            events += e
        for want in wants:
            events += self._ask(want)
        events += self.relays.tick()
        return events

    def _last_motion(self, name: str) -> Optional[float]:
        return self.inputs.last_motion(name) if name in self._motion_inputs else None

    def _ask(self, want: Want) -> list[Event]:
        """Passes a control's wish to the relay bank when it is new, or not yet met after a
        while (deferred by a minimum time, refused by the chatter guard)."""
        now = self.clock.monotonic()
        asked = self._asked.get(want.relay)
        met = self.relays.state(want.relay) == want.on
        if asked is not None and asked[0] == want.on and (met or now - asked[1] < REASK_AFTER):
            return []
        if asked is None and met:
            self._asked[want.relay] = (want.on, now)
            return []
        self._asked[want.relay] = (want.on, now)
        return self.relays.request(want.relay, want.on, want.reason)

    def zone_action(self, name: str) -> str:
        """Home Assistant's hvac_action: heating, cooling, idle or off."""
        zone = self.zones[name]
        if zone.current_mode() == "off":
            return "off"
        if any(self.relays.state(r) for r in zone.config.heat_stages):
            return "heating"
        if any(self.relays.state(r) for r in zone.config.cool_stages):
            return "cooling"
        return "idle"

    def zone_temperature(self, name: str) -> Optional[float]:
        reading = self.readings(self.zones[name].config.sensor, "temperature")
        return reading[0] if reading else None

    def apply_scene(self, name: str, source: str = "command") -> list[Event]:
        return self.scene_manager.apply(self.scenes[name], source)

    def energy_kwh(self) -> Mapping[str, float]:
        return {r.name: self.relays.energy_wh(r.name) / 1000.0 for r in self.config.relays}

    def safe_state(self, reason: str) -> list[Event]:
        self._asked.clear()
        return self.relays.safe_state(reason)

    def close(self) -> None:
        self.inputs.close()
        self.relays.close()

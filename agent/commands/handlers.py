"""What each command does: the bridge from agent/commands/processor.py to the room, the devices and
the node. Every handler validates everything before it changes anything.

A handler sees the node through CommandPorts and the NodeParts current when its command
arrived (agent.node.ports): a reconfiguration during a command (cmd/config applies one from
inside its own handler) swaps the node's parts, not the ones this command is working on."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent.central.ha_discovery import lights_topic, ventilation_topic, zone_topic
from agent.central.state import STATE_KINDS, topic_of
from agent.commands.processor import (
    MAX_PULSE,
    CommandError,
    Handler,
    number,
    optional_minutes,
    word,
)
from agent.control.thermostat import hvac_modes
from drivers import DRIVERS

if TYPE_CHECKING:
    from agent.common.events import Event
    from agent.control.room import RoomController
    from agent.control.thermostat import Thermostat
    from agent.node.ports import CommandPorts, NodeParts

HA_MODES = ("off", "heat", "cool", "heat_cool", "auto")
PRESETS = ("comfort", "eco", "boost", "frost", "auto")


def _one(path: list[str], what: str) -> str:
    if len(path) != 1 or not path[0]:
        raise CommandError("unknown_target", f"expected cmd/{what}/<name>")
    return path[0]


def _verb(body: dict[str, Any]) -> str:
    value = body.get("command")
    if value is None:
        raise CommandError("bad_argument", "command: missing (the payload was empty or had none)")
    if not isinstance(value, str):
        raise CommandError("bad_argument", "command: must be a string")
    return value.lower()


NAMES = ("relay", "zone", "scene", "lights", "device", "ping", "stats", "reannounce", "config",
         "ventilation", "state", "sessions")  # fmt: skip


class Handlers:
    def __init__(self, ports: CommandPorts, parts: NodeParts) -> None:
        self.ports, self.parts = ports, parts
        self.owners = parts.config.control.relay_owners()

    def sessions(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        """cmd/sessions {"sessions": [{start, end, title, expected}, ...]}
        (agent/room/sessions.py)."""
        from agent.config.sessions import CalendarError

        push = self.ports.sessions_command
        if path or push is None:
            raise CommandError("unavailable", "this node has no [room] to keep a calendar for")
        try:
            result: dict[str, Any] = push(body)
        except CalendarError as e:
            raise CommandError("bad_argument", str(e)) from None
        return result

    def _room(self) -> RoomController:
        if self.parts.room is None:
            raise CommandError("unavailable", "this node has no room control configured")
        return self.parts.room

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            self.ports.emit(event)

    @staticmethod
    def _reason(body: dict[str, Any]) -> str:
        ident = body.get("id")
        return f"command {ident}" if isinstance(ident, str) else "command"

    def relay(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        room = self._room()
        name = _one(path, "relay")
        if name not in room.relays.states():
            raise CommandError("unknown_target", f"no relay {name!r}")
        if name in self.owners:
            raise CommandError("controlled", f"relay {name!r} is run by {self.owners[name]}")
        verb = _verb(body)
        pulse: Optional[float] = None
        if verb in ("on", "off"):
            on = verb == "on"
        elif verb == "toggle":
            on = not room.relays.state(name)
        elif verb == "set":
            value = body.get("on")
            if not isinstance(value, bool):
                raise CommandError("bad_argument", "on: must be true or false")
            on = value
        elif verb == "pulse":
            pulse = number(body, "seconds", 0.1, MAX_PULSE)
            on = True
        else:
            raise CommandError(
                "unknown_command", f"relay takes ON, OFF, TOGGLE, set, pulse; not {verb!r}"
            )
        reason = self._reason(body) + (f": pulse {pulse:g} s" if pulse else "")
        events = room.relays.request(name, on, reason, pulse)
        self._emit(events)
        self.ports.refresh_state(self.ports.topics.relay(name))  # changed or not, refused or not
        mine = [e for e in events if e.subject == name]
        refused = [e for e in mine if e.state == "refused"]
        if refused:
            raise CommandError("refused", refused[0].reason)
        deferred = [e for e in mine if e.state == "deferred"]
        result: dict[str, Any] = {"relay": name, "on": room.relays.state(name)}
        if deferred:
            result.update(state="deferred", reason=deferred[0].reason)
        return result

    def zone(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        room = self._room()
        if not path or path[0] not in room.zones:
            raise CommandError("unknown_target", "expected cmd/zone/<zone>/{setpoint,mode,preset}"
                               + (f"; no zone {path[0]!r}" if path else ""))  # fmt: skip
        if len(path) != 2 or not path[1]:
            raise CommandError("unknown_target", f"cmd/zone/{path[0]}: missing the sub-topic: "
                               "cmd/zone/<zone>/setpoint, mode or preset")  # fmt: skip
        zone, what = room.zones[path[0]], path[1]
        reason = self._reason(body)
        minutes = optional_minutes(body)
        key = "value" if "value" in body else "command"
        try:
            if what == "setpoint":
                c = zone.config
                events = zone.set_manual(number(body, key, c.plausible_min, c.plausible_max),
                                         minutes, reason)  # fmt: skip
            elif what == "mode":
                mode = word(body, "mode" if "mode" in body else key, HA_MODES)
                events = self._zone_mode(zone, mode, reason, minutes)
            elif what == "preset":
                preset = word(body, "preset" if "preset" in body else key, PRESETS)
                events = zone.set_mode(preset, reason, minutes)
            else:
                raise CommandError(
                    "unknown_command", f"zone takes setpoint, mode, preset; not {what!r}"
                )
        except ValueError as e:
            raise CommandError("bad_argument", str(e)) from None
        self._emit(events)
        self.ports.refresh_state(zone_topic(self.ports.topics.base, path[0]))
        return {"zone": path[0], "mode": zone.current_mode(), "hvac": zone.hvac,
                "setpoint": zone.effective_setpoint()}  # fmt: skip

    @staticmethod
    def _zone_mode(
        zone: Thermostat, mode: str, reason: str, minutes: Optional[float]
    ) -> list[Event]:
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

    def scene(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        room = self._room()
        name = _one(path, "scene")
        if name not in room.scenes:
            raise CommandError("unknown_target", f"no scene {name!r}")
        if _verb(body) not in ("apply", "on"):
            raise CommandError("unknown_command", "scene takes apply (or ON)")
        try:
            events = room.apply_scene(name, self._reason(body))
        except ValueError as e:
            raise CommandError("bad_argument", str(e)) from None
        self._emit(events)
        return {"scene": name}

    def lights(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        room = self._room()
        if not 1 <= len(path) <= 2 or not path[0]:
            raise CommandError("unknown_target", "expected cmd/lights/<group>")
        name = path[0]
        light = room.lights.get(name)
        if light is None:
            raise CommandError("unknown_target", f"no lights {name!r}")
        if len(path) == 2 and path[1] != "effect":
            raise CommandError("unknown_target", f"cmd/lights/{name}: no sub-topic {path[1]!r}")
        verb = _verb(body)
        minutes = optional_minutes(body)
        if verb == "manual":  # Home Assistant's effect list: hold what the lights do now
            verb = "on" if room.relays.state(light.config.relays[0]) else "off"
        if verb in ("on", "off"):
            events = light.command(verb == "on", minutes, self._reason(body))
        elif verb == "auto":
            events = light.resume_automatic(self._reason(body))
        else:
            raise CommandError("unknown_command", f"lights take ON, OFF, AUTO; not {verb!r}")
        self._emit(events)
        self.ports.refresh_state(lights_topic(self.ports.topics.base, name))
        return {"lights": name, "mode": "auto" if verb == "auto" else "manual"}

    def ventilation(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        """cmd/ventilation/<name>: ON, OFF, AUTO, BOOST (optional minutes) or
        {"command": "stage", "stage": n}; .../stage takes the stage alone (Home Assistant's
        speed), .../preset auto or boost."""
        room = self._room()
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
        reason = self._reason(body)
        verb = "stage" if what == "stage" else _verb(body)
        try:
            if verb == "stage":
                key = "stage" if "stage" in body else "value" if "value" in body else "command"
                stage = number(body, key, 0, top)
                if not stage.is_integer():
                    raise CommandError(
                        "bad_argument", f"{key}: a whole stage 0..{top}, got {stage:g}"
                    )
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
        self._emit(events)
        self.ports.refresh_state(ventilation_topic(self.ports.topics.base, name))
        return {"ventilation": name, "mode": vent.mode()}

    def state(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        """cmd/state/<kind>/<name> (cmd/state/energy): the entity's retained state in the
        answer, and published again on its topic."""
        kind = path[0] if path else ""
        topic = topic_of(self.ports.topics, kind, path[1] if len(path) == 2 else None)
        if topic is None or len(path) > 2:
            raise CommandError("unknown_target", "expected cmd/state/<kind>/<name> (kinds: "
                               f"{', '.join(STATE_KINDS)}) or cmd/state/energy")  # fmt: skip
        self.ports.refresh_state(topic)
        payload = self.ports.retained_state(topic)
        if payload is None:
            what = f"{kind} {path[1]!r}" if len(path) == 2 else kind
            raise CommandError("unknown_target", f"no {what} on this node")
        if kind == "device":
            self.ports.republish(topic, payload)
        return {"topic": topic, "state": json.loads(payload)}

    def device(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        runners = {r.config.name: r for r in self.parts.runners}
        if len(path) != 2 or path[0] not in runners or path[1] != "interval":
            raise CommandError("unknown_target", "expected cmd/device/<device>/interval")
        runner = runners[path[0]]
        value = number(body, "value" if "value" in body else "command", 1, 86400)
        try:
            DRIVERS[runner.config.driver].validate_interval(value, runner.config.options)
        except ValueError as e:
            raise CommandError("bad_argument", str(e)) from None
        runner.config = dataclasses.replace(runner.config, interval=value)
        return {"device": path[0], "interval": value,
                "reason": "until the next restart; change the config to keep it"}  # fmt: skip

    def ping(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        if path:
            raise CommandError("unknown_target", "ping takes no sub-topic")
        return {"pong": True}

    def stats(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        if path:
            raise CommandError("unknown_target", "stats takes no sub-topic")
        return dict(self.ports.health())

    def reannounce(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        if path:
            raise CommandError("unknown_target", "reannounce takes no sub-topic")
        self.ports.announce()
        return {"reannounced": True}

    def config(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        if path:
            raise CommandError("unknown_target", "config takes no sub-topic")
        return self.ports.config_command(body)


def table(ports: CommandPorts, parts: Callable[[], NodeParts]) -> dict[str, Handler]:
    """The command table: each command is handled by Handlers bound to the parts of the node
    at the moment it arrived. The table itself never changes, so nothing rebinds it under a
    running handler."""

    def family(name: str) -> Handler:
        def handle(path: list[str], body: dict[str, Any]) -> dict[str, Any]:
            handler: Handler = getattr(Handlers(ports, parts()), name)
            return handler(path, body)

        return handle

    return {name: family(name) for name in NAMES}

"""What each command does: the bridge from agent/commands.py to the room, the devices and the
agent. Every handler validates everything before it changes anything."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent.commands import (
    MAX_PULSE,
    CommandError,
    Handler,
    number,
    optional_minutes,
    word,
)
from drivers import DRIVERS

if TYPE_CHECKING:
    from agent.control.room import RoomController
    from agent.control.types import Event
    from agent.runtime import Agent

HA_MODES = ("off", "heat", "cool", "heat_cool", "auto")
PRESETS = ("comfort", "eco", "boost", "frost", "auto")


def _one(path: list[str], what: str) -> str:
    if len(path) != 1 or not path[0]:
        raise CommandError("unknown_target", f"expected cmd/{what}/<name>")
    return path[0]


def _verb(body: dict[str, Any]) -> str:
    value = body.get("command")
    if not isinstance(value, str):
        raise CommandError("bad_argument", "command: must be a string")
    return value.lower()


class Handlers:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.owners = agent.config.control.relay_owners()

    def table(self) -> dict[str, Handler]:
        return {
            "relay": self.relay,
            "zone": self.zone,
            "scene": self.scene,
            "lights": self.lights,
            "device": self.device,
            "ping": self.ping,
            "stats": self.stats,
            "reannounce": self.reannounce,
            "config": self.config,
            "sessions": self.sessions,
        }

    def sessions(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        """cmd/sessions {"sessions": [{start, end, title, expected}, ...]} (agent/sessions.py)."""
        from agent.sessions import CalendarError

        if path or self.agent.room_service is None:
            raise CommandError("unavailable", "this node has no [room] to keep a calendar for")
        try:
            result: dict[str, Any] = self.agent.room_service.push(body)
        except CalendarError as e:
            raise CommandError("bad_argument", str(e)) from None
        return result

    def _room(self) -> RoomController:
        if self.agent.room is None:
            raise CommandError("unavailable", "this node has no room control configured")
        return self.agent.room

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            self.agent.emit(event)

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
        if len(path) != 2 or path[0] not in room.zones:
            raise CommandError("unknown_target", "expected cmd/zone/<zone>/{setpoint,mode,preset}"
                               + (f"; no zone {path[0]!r}" if path else ""))  # fmt: skip
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
                events = zone.set_mode("off" if mode == "off" else "auto", reason, minutes)
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
        return {"zone": path[0], "mode": zone.current_mode(), "setpoint": zone.effective_setpoint()}

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
        name = _one(path, "lights")
        light = room.lights.get(name)
        if light is None:
            raise CommandError("unknown_target", f"no lights {name!r}")
        verb = _verb(body)
        minutes = optional_minutes(body)
        if verb in ("on", "off"):
            events = light.command(verb == "on", minutes, self._reason(body))
        elif verb == "auto":
            events = light.resume_automatic(self._reason(body))
        else:
            raise CommandError("unknown_command", f"lights take ON, OFF, AUTO; not {verb!r}")
        self._emit(events)
        return {"lights": name}

    def device(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        runners = {r.config.name: r for r in self.agent.runners}
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
        return dict(self.agent.health())

    def reannounce(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        if path:
            raise CommandError("unknown_target", "reannounce takes no sub-topic")
        self.agent.announce()
        return {"reannounced": True}

    def config(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        if path:
            raise CommandError("unknown_target", "config takes no sub-topic")
        manager = self.agent.config_manager
        if manager is None:
            raise CommandError("unavailable", "the agent is still starting")
        return manager.from_command(body)


def bind(agent: Agent) -> Callable[[], dict[str, Handler]]:
    return Handlers(agent).table

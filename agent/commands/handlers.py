"""What each command does: the bridge from agent/commands/processor.py to the room, the devices and
the node. Every handler validates everything before it changes anything.

A handler sees the node through CommandPorts and the NodeParts current when its command
arrived (agent.node.ports): a reconfiguration during a command (cmd/config applies one from
inside its own handler) swaps the node's parts, not the ones this command is working on."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent.central.state import STATE_KINDS, topic_of
from agent.commands.processor import MAX_PULSE, Handler
from agent.control.room import PUBLISHED
from agent.control.types import Published
from agent.mqtt.command_args import CommandError, command_verb, number
from drivers import DRIVERS

if TYPE_CHECKING:
    from agent.common.events import Event
    from agent.control.room import RoomController
    from agent.node.ports import CommandPorts, NodeParts


def _one(path: list[str], what: str) -> str:
    if len(path) != 1 or not path[0]:
        raise CommandError("unknown_target", f"expected cmd/{what}/<name>")
    return path[0]


# The node's own command families; each control that takes commands adds its kind
# (agent.control.room.PUBLISHED: cmd/zone, cmd/lights, cmd/ventilation).
NAMES = ("relay", "scene", "device", "ping", "stats", "reannounce", "config", "state", "sessions")
CONTROLS = {p.kind: p for p in PUBLISHED if p.command is not None}


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
        verb = command_verb(body)
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

    def control(
        self, published: Published, path: list[str], body: dict[str, Any]
    ) -> dict[str, Any]:
        """cmd/<kind>/<name>/...: the control's own command (agent.control.types.Published),
        then its retained state published again, changed or not."""
        assert published.command is not None
        room = self._room()
        name, events, result = published.command(room, path, body, self._reason(body))
        self._emit(events)
        self.ports.refresh_state(self.ports.topics.control(published.kind, name))
        return result

    def scene(self, path: list[str], body: dict[str, Any]) -> dict[str, Any]:
        room = self._room()
        name = _one(path, "scene")
        if name not in room.scenes:
            raise CommandError("unknown_target", f"no scene {name!r}")
        if command_verb(body) not in ("apply", "on"):
            raise CommandError("unknown_command", "scene takes apply (or ON)")
        try:
            events = room.apply_scene(name, self._reason(body))
        except ValueError as e:
            raise CommandError("bad_argument", str(e)) from None
        self._emit(events)
        return {"scene": name}

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

    def control(published: Published) -> Handler:
        def handle(path: list[str], body: dict[str, Any]) -> dict[str, Any]:
            return Handlers(ports, parts()).control(published, path, body)

        return handle

    return {**{name: family(name) for name in NAMES},
            **{kind: control(published) for kind, published in CONTROLS.items()}}  # fmt: skip

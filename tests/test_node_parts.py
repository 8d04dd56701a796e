"""A reconfiguration swaps the node's parts whole (agent.node.ports.NodeParts): a command in
flight finishes against the parts it started with, and the next command sees the new ones
without anything rebinding the command table. Real command table, real reconfigurer, real
room control on gpiozero's MockFactory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

from gpiozero.pins.mock import MockFactory

from agent.app.reconfigure import Reconfigurer
from agent.commands.handlers import table
from agent.commands.processor import CommandProcessor
from agent.common.events import Event
from agent.common.state_store import StateStore
from agent.config import schema as config_mod
from agent.config.schema import Config
from agent.control.room import RoomController
from agent.mqtt.contract import Topics
from agent.node.ports import CommandPorts, NodeParts, ReconfigurePorts
from agent.sensing.bus_choice import Hardware
from tests.clocks import FakeClock

NODE = '[node]\nid = "r"\nstate_dir = "state"\n'
FAN = '[[relays]]\nname = "fan"\npin = 22\nkind = "ventilation"\n'
VENT = '[[relays]]\nname = "vent"\npin = 24\nkind = "ventilation"\n'


class Node:
    """The parts holder and the ports a running node would give, built from plain functions."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.clock = FakeClock()
        self.pins = MockFactory()
        self.store = StateStore(tmp_path / "control.json")
        self.events: list[Event] = []
        self.on_emit: Optional[Any] = None  # something that happens while a handler runs
        first = self.load("first.toml", FAN)
        self.parts = NodeParts(first, room=self.make_room(first, None))
        self.reconfigurer = Reconfigurer(self.reconfigure_ports())
        self.commands = CommandProcessor(
            table(self.command_ports(), lambda: self.parts), self.clock.time, lambda: True
        )

    def load(self, name: str, control: str) -> Config:
        path = self.tmp_path / name
        path.write_text(NODE + control)
        return config_mod.load(path)

    def make_room(self, config: Config, previous: Optional[RoomController]) -> RoomController:
        return RoomController(config.control, self.pins, self.clock, self.store,
                              lambda d, q: None, previous=previous)  # fmt: skip

    def emit(self, event: Event) -> None:
        self.events.append(event)
        if self.on_emit is not None:
            happen, self.on_emit = self.on_emit, None
            happen()

    def swap(self, parts: NodeParts) -> None:
        self.parts = parts

    def command_ports(self) -> CommandPorts:
        def unused(*_: Any) -> Any:
            raise AssertionError("not part of this test")

        return CommandPorts(
            topics=Topics("site/r"), emit=self.emit, refresh_state=lambda topic: None,
            retained_state=unused, republish=unused, health=unused, announce=unused,
            config_command=unused, sessions_command=None,
        )  # fmt: skip

    def reconfigure_ports(self) -> ReconfigurePorts:
        def nothing(*_: Any) -> None:
            return None

        return ReconfigurePorts(
            parts=lambda: self.parts, swap=self.swap,
            hardware=Hardware([], True, ()), subscriptions=lambda c: ("site/r/cmd/#",),
            check_link=nothing, set_buffer_limits=nothing, make_runner=nothing,
            start_runner=nothing, stop_runner=nothing, forget_state=nothing,
            make_ble=nothing, start_ble=nothing, stop_ble=nothing, make_room=self.make_room,
            start_control=nothing, stop_control=nothing, make_analytics=nothing,
            emit=self.emit, relink=nothing, announce=nothing,
        )  # fmt: skip

    def command(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.commands.process(path.split("/"), json.dumps(body).encode())
        return {"ok": response.ok, "code": response.code, "reason": response.reason,
                **response.result}  # fmt: skip


def test_a_command_in_flight_finishes_on_the_parts_it_started_with(tmp_path: Path) -> None:
    node = Node(tmp_path)
    before = node.parts
    config = before.config
    renamed = dataclasses.replace(config, node=dataclasses.replace(config.node, name="Room 2"))
    # The relay handler emits its events, then reads the relay's state for its answer: a
    # reconfiguration (of the node's name: the room control is kept) lands in between.
    node.on_emit = lambda: node.reconfigurer.apply(renamed, "renamed.toml")
    answer = node.command("relay/fan", {"command": "ON", "id": "a1"})
    assert node.parts is not before and node.parts.config is renamed  # it did land, whole
    assert node.parts.room is before.room  # [control] unchanged: the same relays, not rebuilt
    assert answer == {"ok": True, "code": "ok", "reason": "done", "relay": "fan", "on": True}


def test_the_next_command_sees_the_new_parts_without_rebinding(tmp_path: Path) -> None:
    node = Node(tmp_path)
    handlers = node.commands.handlers
    node.reconfigurer.apply(node.load("second.toml", VENT), "second.toml")
    assert node.commands.handlers is handlers  # the same table
    assert node.command("relay/fan", {"command": "ON"})["code"] == "unknown_target"
    vent = node.command("relay/vent", {"command": "ON"})
    assert vent["ok"] and vent["on"] is True
    assert node.parts.room is not None and node.parts.room.relays.state("vent")


def test_a_refused_reconfiguration_leaves_the_parts_as_they_were(tmp_path: Path) -> None:
    node = Node(tmp_path)
    before = node.parts
    config = node.parts.config
    other = dataclasses.replace(config, node=dataclasses.replace(config.node, id="elsewhere"))
    try:
        node.reconfigurer.apply(other, "other.toml")
    except config_mod.ConfigError as e:
        assert e.key == "node.id"
    else:
        raise AssertionError("a new node id must be refused")
    assert node.parts is before

"""Applying a new config to a running agent, without a restart.

A restart would release the GPIO lines (the relays would drop to whatever the board's pulls
make of them) and lose what the rooms' controls were doing, so a new config is applied in
place: devices whose config is unchanged keep polling, relays on the same pins keep their
state and timers, unchanged zones keep their modes and overrides, the buffer and its
sequence numbers are untouched, and the MQTT connection is only replaced when the broker
settings change. What cannot change in place (the node's identity, topics and state
directory) is refused with the reason before anything is touched.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Optional

from agent.config.schema import Config, ConfigError
from agent.node.ports import NodeParts, ReconfigurePorts
from agent.sensing.runner import link_compensation

if TYPE_CHECKING:
    from agent.control.room import RoomController
    from agent.sensing.runner import DeviceRunner

log = logging.getLogger("roomagent.config")

# (section, field, config key): fixed for the life of the process.
FIXED = (
    ("node", "id", "node.id"),
    ("node", "base_topic", "node.base_topic"),
    ("node", "state_dir", "node.state_dir"),
    ("node", "simulate", "node.simulate"),
    ("buffer", "path", "buffer.path"),
    ("buffer", "durability", "buffer.durability"),  # the stage is opened, or not, at the start
    ("buffer", "stage_dir", "buffer.stage_dir"),
)
# Every Config field is compared (so a new section cannot be missed, tests/test_remote_config.py
# holds it): each is either applied live, by Reconfigurer.apply, or refused by check_fixed.
RESTART_ONLY = ("modbus",)
LIVE = ("node", "broker", "buffer", "devices", "ble", "control", "remote", "registration",
        "faults", "energy", "room", "sessions")  # fmt: skip
SECTIONS = tuple(f.name for f in dataclasses.fields(Config) if f.name != "source")


def check_fixed(old: Config, new: Config, origin: str) -> None:
    """Refuses, naming the key, a config that changes what only a restart can change."""
    for section, name, key in FIXED:
        before = getattr(getattr(old, section), name)
        after = getattr(getattr(new, section), name)
        if before != after:
            raise ConfigError(
                origin, key,
                f"cannot change while the agent runs ({before} -> {after}): edit the local "
                "file and restart the service",
            )  # fmt: skip
    if old.modbus != new.modbus:  # the lines' ports and simulated servers are opened once
        raise ConfigError(origin, "modbus", "[[modbus]] lines cannot change while the agent "
                          "runs: edit the local file and restart the service")  # fmt: skip


def changed_sections(old: Config, new: Config) -> tuple[str, ...]:
    return tuple(s for s in SECTIONS if getattr(old, s) != getattr(new, s))


class Reconfigurer:
    """Applies validated configs to one node, on its event loop: it builds the new NodeParts
    beside the running ones and swaps them in with one assignment, so a command or a control
    tick sees either the old parts or the new, never half of each."""

    def __init__(self, ports: ReconfigurePorts) -> None:
        self.ports = ports

    def apply(self, new: Config, origin: str) -> tuple[str, ...]:
        """Everything but the broker connection happens before this returns; a changed broker
        is swapped in by a task (the answer to a config command still goes out on the old
        connection). `origin` names the config in errors. Returns the sections that changed."""
        ports = self.ports
        parts = ports.parts()
        old = parts.config
        check_fixed(old, new, origin)
        changed = changed_sections(old, new)
        if not changed:
            return changed
        relink = (
            new.broker != old.broker
            or new.buffer.max_inflight != old.buffer.max_inflight
            or ports.subscriptions(new) != ports.subscriptions(old)
        )
        if new.broker != old.broker:
            try:
                ports.check_link(new)
            except (OSError, ValueError) as e:
                raise ConfigError(origin, "broker", f"cannot use these settings: {e}") from e
        # Room control first: claiming a new relay's pin is the one step that can fail (a line
        # held by another program), and then nothing else has changed yet.
        room = self._control(parts, new) if new.control != old.control else parts.room
        runners = parts.runners
        started: list[DeviceRunner] = []
        if new.devices != old.devices:
            runners, started = self._devices(parts, new)
        ble = self._ble(parts, new) if new.ble != old.ble else parts.ble
        if new.buffer != old.buffer:
            ports.set_buffer_limits(new)
        analytics = parts.analytics
        if (new.faults, new.control, new.room) != (old.faults, old.control, old.room):
            if analytics is not None:
                analytics.close()
            analytics = ports.make_analytics(new)  # learned state comes back from its file
        # [energy] is read from the running config where used (the meters' guard, reports).
        ports.swap(NodeParts(new, runners, room, ble, analytics))
        if (new.room, new.sessions, new.control.timezone) != (
            old.room, old.sessions, old.control.timezone
        ):  # fmt: skip
            ports.rebuild_room(new)  # the comfort monitor and the session calendar
        for runner in started:
            ports.start_runner(runner)
        if new.ble != old.ble:
            ports.start_ble()
        if room is None:
            ports.stop_control()
        else:
            ports.start_control()
        if relink:
            ports.relink()
        else:
            ports.announce()  # info, discovery (removing what left) and every state
        return changed

    def _devices(
        self, parts: NodeParts, new: Config
    ) -> tuple[tuple[DeviceRunner, ...], list[DeviceRunner]]:
        """The runners for the new [[devices]]: unchanged ones kept polling, the others
        stopped; returns them and those still to start (after the swap)."""
        ports = self.ports
        wanted = {d.name: d for d in new.devices}
        keep = [r for r in parts.runners if wanted.get(r.config.name) == r.config]
        for runner in parts.runners:
            if runner not in keep:
                ports.stop_runner(runner)
                if runner.config.name not in wanted:
                    ports.forget_state(runner.config.name)
        ports.hardware.add_devices(new.devices)
        kept = {r.config.name: r for r in keep}
        runners = [kept.get(d.name) or ports.make_runner(d) for d in new.devices]
        link_compensation(runners)
        return tuple(runners), [r for r in runners if r.config.name not in kept]

    def _ble(self, parts: NodeParts, new: Config) -> Any:
        """A new scan for the new [ble] (BLE devices hold no pins: nothing to keep); the room
        control reads and counts presence through the service of the parts it runs with."""
        ports = self.ports
        ports.stop_ble()
        old_names = {d.name for d in parts.config.ble.devices}
        for name in old_names - {d.name for d in new.ble.devices}:
            ports.forget_state(name)
        return ports.make_ble(new)

    def _control(self, parts: NodeParts, new: Config) -> Optional[RoomController]:
        ports = self.ports
        if not new.control.active:
            if parts.room is not None:
                for event in parts.room.safe_state("reconfigured: room control removed"):
                    ports.emit(event)
                parts.room.close()
            return None
        return ports.make_room(new, parts.room)

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

import logging
from typing import TYPE_CHECKING

from agent.config import Config, ConfigError
from agent.devices import link_compensation

if TYPE_CHECKING:
    from agent.runtime import Agent

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
SECTIONS = ("node", "broker", "buffer", "devices", "ble", "control", "remote", "registration")


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
    """Applies validated configs to one Agent, on its event loop."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def apply(self, new: Config, origin: str) -> tuple[str, ...]:
        """Everything but the broker connection happens before this returns; a changed broker
        is swapped in by a task (the answer to a config command still goes out on the old
        connection). `origin` names the config in errors. Returns the sections that changed."""
        agent, old = self.agent, self.agent.config
        check_fixed(old, new, origin)
        changed = changed_sections(old, new)
        if not changed:
            return changed
        relink = (
            new.broker != old.broker
            or new.buffer.max_inflight != old.buffer.max_inflight
            or agent.subscriptions(new) != agent.subscriptions(old)
        )
        if new.broker != old.broker:
            try:
                agent.check_link(new)
            except (OSError, ValueError) as e:
                raise ConfigError(origin, "broker", f"cannot use these settings: {e}") from e
        # Room control first: claiming a new relay's pin is the one step that can fail (a line
        # held by another program), and then nothing else has changed yet.
        if new.control != old.control:
            self._control(new)
        if new.devices != old.devices:
            self._devices(new)
        if new.ble != old.ble:
            self._ble(new)
        if new.buffer != old.buffer and agent.outbox is not None:
            b = new.buffer
            agent.submit_db(agent.outbox.set_limits, b.max_rows, b.max_bytes, b.durability)
        agent.config = new
        agent.rebind_commands()
        if relink:
            agent.spawn(agent.replace_link())
        elif agent.link is not None and agent.link.connected:
            agent.announce()  # info, discovery (removing what left) and every state
        return changed

    def _devices(self, new: Config) -> None:
        agent = self.agent
        wanted = {d.name: d for d in new.devices}
        keep = [r for r in agent.runners if wanted.get(r.config.name) == r.config]
        for runner in agent.runners:
            if runner not in keep:
                agent.stop_runner(runner)
                if runner.config.name not in wanted:
                    agent.forget_state(runner.config.name)
        agent.hardware.add_devices(new.devices)
        kept = {r.config.name: r for r in keep}
        agent.runners = [kept.get(d.name) or agent.make_runner(d) for d in new.devices]
        link_compensation(agent.runners)
        for runner in agent.runners:
            if runner.config.name not in kept:
                agent.start_runner(runner)

    def _ble(self, new: Config) -> None:
        """A new scan for the new [ble] (BLE devices hold no pins: nothing to keep); the room
        control built next reads and counts presence through the new service."""
        agent = self.agent
        agent.stop_ble()
        old_names = {d.name for d in agent.config.ble.devices}
        for name in old_names - {d.name for d in new.ble.devices}:
            agent.forget_state(name)
        agent.ble = agent.make_ble(new)
        agent.start_ble()

    def _control(self, new: Config) -> None:
        agent = self.agent
        if not new.control.active:
            if agent.room is not None:
                for event in agent.room.safe_state("reconfigured: room control removed"):
                    agent.emit(event)
                agent.room.close()
                agent.room = None
            agent.stop_control()
            return
        agent.room = agent.make_room(new, previous=agent.room)
        agent.start_control()

"""The node's parts and the narrow seams between them and the modules that act on them.

`NodeParts` is what one config builds (its devices' runners, the room's control, the BLE
service, the analytics): one immutable object, replaced whole by a reconfiguration
(agent.app.reconfigure), so that whoever took it at the start of a job (a command handler, a
control tick) finishes that job against parts that belong together, never against a room of
the new config and runners of the old.

Each *Ports dataclass is exactly what one module needs of the running node, as callables
assembled by agent.app.runtime: command handlers, the config manager, the reconfigurer and the
room service never see the Agent, so none of them imports agent.app.runtime and a test can build
any of them from plain functions.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from agent.common.clock import SystemClock
    from agent.common.events import Event
    from agent.config.schema import Config, DeviceConfig
    from agent.control.room import RoomController
    from agent.mqtt.contract import Topics
    from agent.sensing.bus_choice import Hardware
    from agent.sensing.runner import DeviceRunner


@dataclass(frozen=True)
class NodeParts:
    """What the running config built. Never changed in place: a reconfiguration makes a new
    one and the node swaps it in with one assignment."""

    config: Config
    runners: tuple[DeviceRunner, ...] = ()
    room: Optional[RoomController] = None
    ble: Any = None  # agent.sensing.ble.service.BleService, when the config has BLE devices
    analytics: Any = None  # agent.analytics.service.Analytics: faults, optimum start

    def reading(self, device: str, quantity: str) -> Optional[tuple[float, float]]:
        """A device's latest value of `quantity` and when it was read (monotonic), from its
        runner or, for a BLE device, the BLE service."""
        runner = next((r for r in self.runners if r.config.name == device), None)
        if runner is None and self.ble is not None:
            found: Optional[tuple[float, float]] = self.ble.reading(device, quantity)
            return found
        if runner is None or quantity not in runner.last_values:
            return None
        return runner.last_values[quantity], runner.last_good


@dataclass(frozen=True)
class CommandPorts:
    """What the command handlers (agent.commands.handlers) use of the node."""

    topics: Topics
    emit: Callable[[Event], None]
    refresh_state: Callable[[str], None]  # publish one entity's retained state again
    retained_state: Callable[[str], Optional[bytes]]
    republish: Callable[[str, bytes], None]  # retained, when connected
    health: Callable[[], dict[str, Any]]
    announce: Callable[[], None]
    config_command: Callable[[dict[str, Any]], dict[str, Any]]  # cmd/config
    sessions_command: Optional[Callable[[dict[str, Any]], dict[str, Any]]]  # cmd/sessions


@dataclass(frozen=True)
class ConfigPorts:
    """What the config manager (agent.app.config_updates) uses of the node."""

    config: Callable[[], Config]  # the running one
    apply: Callable[[Config, str], tuple[str, ...]]  # agent.app.reconfigure.Reconfigurer.apply
    config_event: Callable[[str, str], None]  # (applied/unchanged/refused, reason)


@dataclass(frozen=True)
class ReconfigurePorts:
    """What the reconfigurer (agent.app.reconfigure) uses of the node: it builds new parts from
    these and hands them to `swap` once."""

    parts: Callable[[], NodeParts]
    swap: Callable[[NodeParts], None]
    hardware: Hardware
    subscriptions: Callable[[Config], tuple[str, ...]]
    check_link: Callable[[Config], None]  # raises OSError/ValueError for unusable settings
    set_buffer_limits: Callable[[Config], None]
    make_runner: Callable[[DeviceConfig], DeviceRunner]
    start_runner: Callable[[DeviceRunner], None]
    stop_runner: Callable[[DeviceRunner], None]
    forget_state: Callable[[str], None]
    make_ble: Callable[[Config], Any]
    start_ble: Callable[[], None]
    stop_ble: Callable[[], None]
    make_room: Callable[[Config, Optional[RoomController]], RoomController]
    start_control: Callable[[], None]
    stop_control: Callable[[], None]
    make_analytics: Callable[[Config], Any]
    emit: Callable[[Event], None]
    relink: Callable[[], None]  # a task that moves to the new broker settings
    announce: Callable[[], None]  # when connected: info, discovery and every state again
    # [room]/[[sessions]] changed: the room service follows the swapped-in config
    rebuild_room: Callable[[Config], None] = lambda config: None


@dataclass(frozen=True)
class RoomPorts:
    """What the room service (agent.room.service) uses of the node."""

    parts: Callable[[], NodeParts]
    clock: SystemClock
    base_topic: str
    emit: Callable[[Event], None]
    retain: Callable[[str, bytes], None]
    # Commits one message (made from its seq) to the durable buffer, raising if it could not.
    append: Callable[[str, Callable[[int], bytes]], Awaitable[None]]
    energy_totals: Callable[[], Optional[dict[str, float]]]  # the meters' kWh, if any

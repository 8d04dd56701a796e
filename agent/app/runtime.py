"""The agent: devices -> outbox (durable) -> forwarder -> MQTT, on one asyncio event loop.

This module is the node's assembly and lifecycle: it builds the parts of a config
(agent.node.ports.NodeParts), gives each module the narrow ports it uses, and starts and stops
everything in order. A little over 500 lines because the start and the shutdown are each one
ordered story (what must exist before what; relays to their safe state before anything that
can hang) that reads best whole; every part with a purpose of its own lives in its own module
(node_link, retained, node_beats, node_health, buffer_writer, room_build).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, TypeVar

from agent import __version__
from agent.app import beats as node_beats
from agent.app.config_updates import ConfigManager
from agent.app.connection import NodeLink
from agent.app.health import energy_report, health_body, status_line
from agent.app.reconfigure import Reconfigurer
from agent.app.room_build import build_room, run_control
from agent.app.systemd import Notifier
from agent.central.retained import RetainedStates, info_payload, publish_discovery
from agent.commands.handlers import table
from agent.commands.processor import CommandProcessor
from agent.common.clock import SystemClock, boot_id
from agent.common.events import Event
from agent.common.state_store import StateStore
from agent.config.schema import Config, DeviceConfig
from agent.control.room import RoomController
from agent.mqtt.command_args import CommandError
from agent.mqtt.contract import (
    Topics,
    device_state_payload,
    iso_utc,
    json_payload,
    telemetry_payload,
)
from agent.mqtt.link import MqttLink
from agent.node.ports import CommandPorts, ConfigPorts, NodeParts, ReconfigurePorts, RoomPorts
from agent.pipeline.buffer_writer import BufferWriter
from agent.pipeline.forwarder import Forwarder
from agent.pipeline.staged_outbox import Buffer, open_buffer
from agent.sensing.bus_choice import Hardware
from agent.sensing.buses import Buses
from agent.sensing.operation import bus_sleep
from agent.sensing.reporting_hook import Reports
from agent.sensing.runner import DeviceRunner, Sample, close_drivers, link_compensation
from drivers import DRIVERS

log = logging.getLogger("roomagent")
T = TypeVar("T")


class Agent:
    def __init__(
        self,
        config: Config,
        *,
        simulate: Optional[bool] = None,
        clock: Optional[SystemClock] = None,
        hardware: Optional[Hardware] = None,
        notifier: Optional[Notifier] = None,
        origin: str = "file",
        prepare: Callable[[Config], Config] = lambda c: c,
    ) -> None:
        """`origin`: where `config` came from ("file", or the central side: see
        agent.config.sources.effective); `prepare`: applied to every config loaded later (the
        command line's overrides)."""
        self.parts = NodeParts(config)  # replaced whole by a reconfiguration, never edited
        self.origin, self.prepare = origin, prepare
        self.simulate = config.node.simulate if simulate is None else simulate
        self.clock = clock or SystemClock(config.node.clock)
        self.topics = Topics(config.node.base_topic)
        self.hardware = hardware or Hardware(config.devices, self.simulate, config.modbus)
        self.started = time.monotonic()
        # One writer thread owns the database; one scheduler per bus runs its transactions.
        self.writer = BufferWriter()
        self._db_thread = self.writer.thread
        self.buses = Buses()  # I2C buses and Modbus lines (agent.sensing.buses)
        self.energy_guard: Any = None  # agent.sensing.modbus.energy.EnergyGuard, with a meter
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.retained = RetainedStates(self.topics, self.clock.time, lambda: self.link)
        self._states = self.retained.devices  # each device's latest state, by name
        self.mqtt = NodeLink(self.topics, lambda: self.parts.config, self.clock.time,
                             self._threadsafe, self.announce, lambda: self.forwarder)  # fmt: skip
        self.forwarder: Optional[Forwarder] = None
        self.notifier = notifier or Notifier()
        self.room_service: Any = None  # agent.room.service.RoomService, with a [room] section
        self.boot = boot_id()
        self.config_manager: Optional[ConfigManager] = None
        self.reconfigurer = Reconfigurer(self._reconfigure_ports())
        self._runner_tasks: dict[DeviceRunner, asyncio.Future[None]] = {}
        self._control_task: Optional[asyncio.Future[None]] = None
        self._ble_task: Optional[asyncio.Future[None]] = None
        self._control_store: Optional[StateStore] = None
        self._spawned: set[asyncio.Future[Any]] = set()
        self._reports = Reports()

    # The running parts (agent.node.ports.NodeParts), read-only: a reconfiguration swaps them.
    @property
    def config(self) -> Config:
        return self.parts.config

    @property
    def runners(self) -> tuple[DeviceRunner, ...]:
        return self.parts.runners

    @property
    def room(self) -> Optional[RoomController]:
        return self.parts.room

    @property
    def ble(self) -> Any:
        return self.parts.ble

    @property
    def analytics(self) -> Any:
        return self.parts.analytics

    @property
    def link(self) -> Optional[MqttLink]:
        return self.mqtt.link

    @property
    def commands(self) -> Any:  # agent.commands.processor.CommandProcessor, once running
        return self.mqtt.commands

    def _swap(self, parts: NodeParts) -> None:
        self.parts = parts

    # The narrow seams (agent.node.ports): what each part may do with the node.

    def _command_ports(self) -> CommandPorts:
        def config_command(body: dict[str, Any]) -> dict[str, Any]:
            if self.config_manager is None:
                raise CommandError("unavailable", "the agent is still starting")
            return self.config_manager.from_command(body)

        def sessions_command(body: dict[str, Any]) -> dict[str, Any]:
            service = self.room_service  # the one of the moment: a pushed [room] replaces it
            if service is None:
                raise CommandError("unavailable", "this node has no [room] to keep a calendar for")
            return dict(service.push(body))

        return CommandPorts(
            topics=self.topics, emit=self.emit, refresh_state=self.refresh_state,
            retained_state=self.retained.get, republish=self.retained.publish,
            health=self.health, announce=self.announce, config_command=config_command,
            sessions_command=sessions_command,
        )  # fmt: skip

    def _reconfigure_ports(self) -> ReconfigurePorts:
        from agent.analytics import service as analytics

        def set_buffer_limits(new: Config) -> None:
            if self.outbox is not None:
                b = new.buffer
                self.submit_db(self.outbox.set_limits, b.max_rows, b.max_bytes, b.durability)

        def announce() -> None:
            if self.link is not None and self.link.connected:
                self.announce()

        def rebuild_room(new: Config) -> None:
            from agent.room.live import follow
            from agent.room.service import RoomService

            def make() -> RoomService:
                return RoomService(self._room_ports(), self.hardware if self.simulate else None)

            self.room_service = follow(self.room_service, new, make,
                                       lambda service: self.spawn(service.run()))  # fmt: skip

        return ReconfigurePorts(
            parts=lambda: self.parts, swap=self._swap, hardware=self.hardware,
            subscriptions=self.mqtt.subscriptions, check_link=self.check_link,
            set_buffer_limits=set_buffer_limits, make_runner=self.make_runner,
            start_runner=self.start_runner, stop_runner=self.stop_runner,
            forget_state=self.forget_state, make_ble=self.make_ble, start_ble=self.start_ble,
            stop_ble=self.stop_ble, make_room=self.make_room, start_control=self.start_control,
            stop_control=self.stop_control,
            make_analytics=analytics.build, emit=self.emit,
            relink=lambda: self.spawn(self.mqtt.replace()), announce=announce,
            rebuild_room=rebuild_room,
        )  # fmt: skip

    def _room_ports(self) -> RoomPorts:
        async def append(topic: str, make: Callable[[int], bytes]) -> None:
            assert self.outbox is not None and self.forwarder is not None
            await self.run_db(self.outbox.append, topic, make, None)
            self.forwarder.notify()

        def energy_totals() -> Optional[dict[str, float]]:
            guard = self.energy_guard
            return None if guard is None else dict(guard.totals())

        return RoomPorts(
            parts=lambda: self.parts, clock=self.clock, base_topic=self.topics.base,
            emit=self.emit, retain=self.retained.retain, append=append, energy_totals=energy_totals,
        )  # fmt: skip

    @property
    def outbox(self) -> Optional[Buffer]:
        return self.writer.outbox

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.writer.run(fn, *args)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        b = self.config.buffer
        self.writer.outbox = outbox = await self.run_db(
            functools.partial(
                open_buffer,
                b.path,
                max_rows=b.max_rows,
                max_bytes=b.max_bytes,
                durability=b.durability,
                stage_dir=b.stage_dir,
                sync_interval=b.sync_interval,
            )
        )
        stats = outbox.stats()
        log.info("buffer %s: %d readings waiting, next seq %d", b.path, stats.rows, stats.next_seq)
        self.mqtt.link = link = self.mqtt.new_link(self.config)
        self.forwarder = Forwarder(outbox, link, self.run_db, b.max_inflight)
        self.writer.wake = self.forwarder.notify
        # Built one part at a time at the start, before any command or tick can look at them.
        runners = [self.make_runner(d) for d in self.config.devices]
        link_compensation(runners)
        self.parts = dataclasses.replace(self.parts, runners=tuple(runners))
        self.parts = dataclasses.replace(self.parts, ble=self.make_ble(self.config))
        if self.config.control.active:
            self.parts = dataclasses.replace(self.parts, room=self.make_room(self.config))
            self._publish_control_states()  # retained from the first second, not the first change
        if self.config.room is not None:
            from agent.room.service import RoomService

            self.room_service = RoomService(
                self._room_ports(), self.hardware if self.simulate else None
            )
        handlers = table(self._command_ports(), lambda: self.parts)  # after the room service
        self.mqtt.commands = CommandProcessor(handlers, self.clock.time, self.clock.synced)
        self.forwarder.hold = self.config.node.hold_unsynced > 0 and not self.clock.synced()
        tasks = [asyncio.ensure_future(self.forwarder.run()), asyncio.ensure_future(self._health())]
        tasks.append(asyncio.ensure_future(node_beats.watch_clock(
            self.clock, self.forwarder, outbox, self.run_db, self.boot,
            self.config.node.hold_unsynced)))  # fmt: skip
        tasks.append(asyncio.ensure_future(node_beats.tick_buffer(outbox, self.run_db)))
        if self.room_service is not None:
            tasks.append(asyncio.ensure_future(self.room_service.run()))
        from agent.analytics import service as analytics

        self.parts = dataclasses.replace(self.parts, analytics=analytics.build(self.config))
        faults = analytics.run(
            lambda: self.parts, self.clock, self.emit, self.retained.retain, self.topics.base
        )
        tasks.append(asyncio.ensure_future(faults))
        self.start_control()
        for runner in self.runners:
            self.start_runner(runner)
        self.start_ble()
        link.start()
        self.config_manager = ConfigManager(
            ConfigPorts(lambda: self.parts.config, self.reconfigurer.apply, self.config_event),
            self.origin,
            self.prepare,
        )
        self.config_manager.start()
        await node_beats.first_round(self.runners, stop)
        for runner in self.runners:  # answering, no value yet (a warm-up): available, not unknown
            if runner.available and runner.config.name not in self.retained.devices:
                empty = device_state_payload(self.clock.time(), True, {})
                self._set_state(runner.config.name, empty)
        self.notifier.notify(READY="1", STATUS=self.status_line())
        tasks.append(asyncio.ensure_future(
            node_beats.supervise(self.notifier, self.run_db, self.status_line)))  # fmt: skip
        log.info(
            "roomagent %s running node %s with %d devices%s",
            __version__,
            self.config.node.id,
            len(self.runners),
            " (simulated)" if self.simulate else "",
        )
        try:
            await stop.wait()
        finally:
            await self._shutdown(tasks)

    def make_runner(self, d: DeviceConfig) -> DeviceRunner:
        meter = isinstance(d.bus, str)  # a Modbus line: one bus, its requests serialised
        on_sample = self._meter_samples(d) if meter else self._on_sample  # before the line opens
        # bus_sleep: every wait the driver makes hands the bus to the other devices on it.
        driver = DRIVERS[d.driver](
            self.hardware.bus_or_placeholder(d.bus), d.address, sleep=bus_sleep, **d.options
        )
        return DeviceRunner(
            d, driver, self.buses.of(d), self.clock, on_sample, self._on_availability
        )

    def _meter_samples(self, d: DeviceConfig) -> Callable[[Sample], Any]:
        from agent.sensing.modbus.energy import EnergyGuard, guarded

        if self.energy_guard is None:
            self.energy_guard = EnergyGuard(
                self.config.node.state_dir / "meters.json", self.clock.time, self.emit,
                grid_g_per_kwh=lambda: self.config.energy.grid_factor,
                monotonic=self.clock.monotonic,
                relay_states=lambda: self.room.relays.states() if self.room is not None else {},
            )  # fmt: skip
            self.hardware.meter_seed = self.energy_guard.last_import
        return guarded(self._on_sample, self.energy_guard, d)

    def start_runner(self, runner: DeviceRunner) -> None:
        self._runner_tasks[runner] = asyncio.ensure_future(runner.run())

    def stop_runner(self, runner: DeviceRunner) -> None:
        """Stops polling a device the config dropped or changed; its driver is closed through
        its bus's scheduler, so never during another transaction on that bus."""
        runner.stopped = True
        task = self._runner_tasks.pop(runner, None)
        if task is not None:
            task.cancel()
        if not runner.hung:
            runner.executor.submit(runner.driver.close, f"{runner.config.name}.close")

    def forget_state(self, entity: str) -> None:
        """Clears the retained state of a device that left the config."""
        self.retained.forget_device(entity)

    def make_room(
        self, config: Config, previous: Optional[RoomController] = None
    ) -> RoomController:
        if self._control_store is None:
            self._control_store = StateStore(self.config.node.state_dir / "control.json")

        return build_room(config, previous, hardware=self.hardware, clock=self.clock,
                          store=self._control_store, parts=lambda: self.parts,
                          emit=self.emit)  # fmt: skip

    def make_ble(self, config: Config) -> Any:
        if not config.ble.active:
            return None
        from agent.sensing.ble.service import make_service  # bleak only when the config uses BLE

        return make_service(
            config.ble, self.clock, config.node.state_dir, self._on_sample,
            self._on_availability, simulate=self.simulate, room=self.hardware.room,
            on_new_quantities=self._rediscover,
        )  # fmt: skip

    def start_ble(self) -> None:
        if self.ble is not None:
            self._ble_task = asyncio.ensure_future(self.ble.run())

    def stop_ble(self) -> None:
        """Ends the scan (a new [ble] config starts a new one); readings taken stay buffered."""
        if self.ble is not None:
            self.ble.stopped = True
        if self._ble_task is not None:
            self._ble_task.cancel()
            self._ble_task = None

    def start_control(self) -> None:
        if self.room is not None and self._control_task is None:
            self._control_task = asyncio.ensure_future(self._control())

    def stop_control(self) -> None:
        if self._control_task is not None:
            self._control_task.cancel()
            self._control_task = None

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        task.add_done_callback(_log_failure)

    def check_link(self, config: Config) -> None:
        """Builds (and drops) a link for `config`, so that broker settings that cannot work
        (an unreadable password file, a key that does not match its certificate) refuse the
        config instead of failing after it was applied."""
        self.mqtt.new_link(config)

    def submit_db(self, fn: Callable[..., Any], *args: Any) -> None:
        """Runs fn on the buffer's thread without waiting for it (config changes)."""
        self.writer.submit(fn, *args)

    def config_event(self, state: str, reason: str) -> None:
        """A config applied or refused, on the events topic: the central side's record."""
        self.emit(Event("config", "node", state, reason, self.clock.time()))

    async def _control(self) -> None:
        def simulate(config: Config) -> None:  # --simulate: the inputs' simulated signals
            self.hardware.simulate_inputs(config.control.inputs)

        await run_control(lambda: self.parts, simulate_inputs=simulate if self.simulate else None,
                          emit=self.emit, publish_states=self._publish_control_states,
                          publish_energy=self._publish_energy)  # fmt: skip

    def emit(self, event: Event) -> None:
        """Events go through the durable buffer (they are the record of why things switched);
        a relay's latest state is also retained on its own topic."""
        assert self.outbox is not None
        body = {"ts": iso_utc(event.timestamp), "kind": event.kind, "subject": event.subject,
                "state": event.state, "reason": event.reason}  # fmt: skip
        self.writer.append(self.topics.events, body)
        self.retained.relay_event(event, body)

    def _publish_discovery(self) -> None:
        assert self.link is not None
        publish_discovery(self.link, self.config,
                          self.ble.quantities if self.ble is not None else None)  # fmt: skip

    def _rediscover(self) -> None:
        """A BLE device sent a quantity it had not before: Home Assistant is told."""
        if self.config.node.discovery and self.link is not None and self.link.connected:
            self._publish_discovery()

    def _publish_control_states(self, force: Optional[str] = None) -> None:
        self.retained.publish_room(self.room, self.config.energy.kg_per_kwh, force)

    def refresh_state(self, topic: str) -> None:
        """Publishes one entity's retained state again, changed or not (after a command)."""
        self._publish_control_states(force=topic)

    def _publish_energy(self) -> None:
        assert self.room is not None
        guard = self.energy_guard
        self.writer.append(self.topics.energy, energy_report(
            self.clock.time(), self.room, self.config.energy.kg_per_kwh,
            guard.totals() if guard is not None else None, self.config.energy.grid_factor,
        ))  # fmt: skip

    def status_line(self) -> str:
        """One line for `systemctl status`: connected, backlog, devices."""
        return status_line(self.link, self.outbox, self.runners, self.ble)

    def _threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(fn, *args)

    async def _on_sample(self, sample: Sample) -> None:
        assert self.outbox is not None and self.forwarder is not None
        report = self._reports.add(sample, self.config.devices)
        if report is not None:  # None: sampled, not reported (agent.pipeline.reporting)
            reported, aggregate = report
            make = functools.partial(_telemetry, reported, aggregate)
            unsynced_at = None if reported.clock_synced else (self.boot, reported.monotonic)
            await self.writer.store(self.topics.telemetry(sample.device), make, unsynced_at)
        self._set_state(sample.device, device_state_payload(
            sample.timestamp, True, sample.values,
            sample_interval=sample.sample_interval, cadence=sample.cadence,
        ))  # fmt: skip

    async def _on_availability(self, device: str, available: bool, error: Optional[str]) -> None:
        if not available:
            log.error("%s is unavailable: %s", device, error)
            self._set_state(device, device_state_payload(self.clock.time(), False, {}, error))
        else:
            log.info("%s is available", device)

    def _set_state(self, entity: str, payload: bytes) -> None:
        """Retained latest state; not buffered, because only the newest value matters."""
        self.retained.set_device(entity, payload)

    def announce(self) -> None:
        """Everything a central system needs after (re)connecting: info, discovery, every
        retained state."""
        assert self.link is not None and self.forwarder is not None
        info = info_payload(self.config, self.simulate)
        self.link.publish(self.topics.info, info, qos=1, retain=True)
        if self.config.node.discovery:
            self._publish_discovery()
        self._publish_control_states()
        self.retained.publish_all()
        self._publish_health()
        self.forwarder.notify()

    def health(self) -> dict[str, Any]:
        assert self.outbox is not None and self.forwarder is not None and self.link is not None
        manager = self.config_manager
        return health_body(
            self.clock.time(), time.monotonic() - self.started, self.clock.synced(), self.link,
            self.outbox, self.forwarder, self.runners,
            manager.health() if manager is not None else None, self.ble,
        )  # fmt: skip

    def _publish_health(self) -> None:
        self._set_state("agent", json_payload(self.health()))

    async def _health(self) -> None:
        while True:
            await asyncio.sleep(self.config.node.health_interval)
            self._publish_health()

    async def _shutdown(self, tasks: Sequence[asyncio.Future[Any]]) -> None:
        log.info("stopping")
        self.notifier.notify(STOPPING="1", STATUS="stopping")
        if self.config_manager is not None:
            await self.config_manager.stop()
        for stoppable in [self.forwarder, *self.runners, self.ble]:
            if stoppable is not None:
                stoppable.stopped = True
        tasks = [*tasks, *self._runner_tasks.values(), *self._spawned]
        if self._control_task is not None:
            tasks.append(self._control_task)
        if self._ble_task is not None:
            tasks.append(self._ble_task)
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=5)
        for task in pending:  # a read stuck in a driver: leave its thread, do not wait for it
            log.warning("task %s did not stop in time", task)
        log.debug("tasks stopped")
        if self.room_service is not None:
            self.room_service.close()
        if self.analytics is not None:
            self.analytics.close()
        if self.room is not None:
            # Every relay to its safe state before anything else: the rest may fail or hang.
            for event in self.room.safe_state("agent stopping"):
                self.emit(event)
            self.room.close()
        await self.writer.settle(timeout=2)
        if self.forwarder is not None and self.link is not None and self.link.connected:
            await self.forwarder.drain(timeout=2.0)
        if self.link is not None:
            log.debug("forwarder drained; closing the MQTT link")
            await asyncio.get_running_loop().run_in_executor(None, self.link.stop)
            log.debug("MQTT link closed")
        await close_drivers(self.runners, timeout=3)
        if self.energy_guard is not None:
            self.energy_guard.close()
        if self.outbox is not None:
            await self.run_db(self.outbox.close)
        self._db_thread.shutdown(wait=True)
        self.buses.shutdown()
        self.hardware.close()
        log.info("stopped")


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())


def _telemetry(sample: Sample, aggregate: Optional[Mapping[str, Any]], seq: int) -> bytes:
    return telemetry_payload(sample.timestamp, seq, sample.clock_synced, sample.values, aggregate)

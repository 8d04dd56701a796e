"""The agent: devices -> outbox (durable) -> forwarder -> MQTT, on one asyncio event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, TypeVar

from agent import __version__, central_state, discovery
from agent.clock import SystemClock, boot_id
from agent.command_handlers import bind
from agent.commands import CommandProcessor
from agent.config import Config, DeviceConfig
from agent.config_manager import ConfigManager
from agent.contract import (
    CONTRACT_VERSION,
    Topics,
    corrected_telemetry,
    device_state_payload,
    iso_utc,
    json_payload,
    telemetry_payload,
)
from agent.control.room import RoomController
from agent.control.types import Event
from agent.devices import DeviceRunner, Sample, link_compensation, slow_devices
from agent.forwarder import Forwarder
from agent.hardware import Hardware
from agent.mqtt_link import MqttLink
from agent.outbox import OutboxError
from agent.reporting_hook import Reports
from agent.sensing.buses import Buses
from agent.sensing.operation import bus_sleep
from agent.seq_floor import write_durably
from agent.staged_outbox import Buffer, open_buffer
from agent.state_store import StateStore
from agent.systemd import Notifier
from drivers import DRIVERS, QUANTITIES

log = logging.getLogger("roomagent")
CLOCK_CHECK_SECONDS = 2.0
CONTROL_SECONDS = 1.0
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
        agent.config_sources.effective); `prepare`: applied to every config loaded later (the
        command line's overrides)."""
        self.config = config
        self.origin, self.prepare = origin, prepare
        self.simulate = config.node.simulate if simulate is None else simulate
        self.clock = clock or SystemClock(config.node.clock)
        self.topics = Topics(config.node.base_topic)
        self.hardware = hardware or Hardware(config.devices, self.simulate, config.modbus)
        self.started = time.monotonic()
        # One writer thread owns the database; one scheduler per bus runs its transactions.
        self._db_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self.buses = Buses()  # I2C buses and Modbus lines (agent.sensing.buses)
        self.energy_guard: Any = None  # agent.modbus.energy.EnergyGuard, with a meter
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._states: dict[str, bytes] = {}
        self._relay_states: dict[str, bytes] = {}
        self._control_states: dict[str, bytes] = {}  # retained input and zone states by topic
        self._state_bodies: dict[str, dict[str, Any]] = {}  # the same, without their "ts"
        self._appending: set[asyncio.Future[None]] = set()  # events on their way to the buffer
        self.outbox: Optional[Buffer] = None
        self.link: Optional[MqttLink] = None
        self.forwarder: Optional[Forwarder] = None
        self.runners: list[DeviceRunner] = []
        self.notifier = notifier or Notifier()
        self.room: Optional[RoomController] = None
        self.room_service: Any = None  # agent.room_service.RoomService, with a [room] section
        self.analytics: Any = None  # agent.analytics.service.Analytics: faults, optimum start
        self.ble: Any = None  # agent.ble.service.BleService, when the config has BLE devices
        self.boot = boot_id()
        self.config_manager: Optional[ConfigManager] = None
        self._runner_tasks: dict[DeviceRunner, asyncio.Future[None]] = {}
        self._control_task: Optional[asyncio.Future[None]] = None
        self._ble_task: Optional[asyncio.Future[None]] = None
        self._control_store: Optional[StateStore] = None
        self._spawned: set[asyncio.Future[Any]] = set()
        self._link_lock: Optional[asyncio.Lock] = None  # made on the loop (Python 3.9)
        self._reports = Reports()

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._db_thread, functools.partial(fn, *args))

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        b = self.config.buffer
        self.outbox = await self.run_db(
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
        stats = self.outbox.stats()
        log.info("buffer %s: %d readings waiting, next seq %d", b.path, stats.rows, stats.next_seq)
        self.link = self._new_link(self.config)
        self.commands = CommandProcessor(bind(self)(), self.clock.time, self.clock.synced)
        self.forwarder = Forwarder(self.outbox, self.link, self.run_db, b.max_inflight)
        self.runners = [self.make_runner(d) for d in self.config.devices]
        link_compensation(self.runners)
        self.ble = self.make_ble(self.config)
        if self.config.control.active:
            self.room = self.make_room(self.config)
            self._publish_control_states()  # retained from the first second, not the first change
        if self.config.room is not None:
            from agent.room_service import RoomService

            self.room_service = RoomService(self)
        self.forwarder.hold = self.config.node.hold_unsynced > 0 and not self.clock.synced()
        tasks = [asyncio.ensure_future(self.forwarder.run()), asyncio.ensure_future(self._health())]
        tasks.append(asyncio.ensure_future(self._watch_clock()))
        tasks.append(asyncio.ensure_future(self._tick_buffer()))
        if self.room_service is not None:
            tasks.append(asyncio.ensure_future(self.room_service.run()))
        from agent.analytics import service as analytics

        self.analytics = analytics.build(self)
        tasks.append(asyncio.ensure_future(analytics.run(self)))
        self.start_control()
        for runner in self.runners:
            self.start_runner(runner)
        self.start_ble()
        self.link.start()
        self.config_manager = ConfigManager(self, self.origin, self.prepare)
        self.config_manager.start()
        await self._first_round(stop)
        for runner in self.runners:  # answering, no value yet (a warm-up): available, not unknown
            if runner.available and runner.config.name not in self._states:
                empty = device_state_payload(self.clock.time(), True, {})
                self._set_state(runner.config.name, empty)
        self.notifier.notify(READY="1", STATUS=self.status_line())
        tasks.append(asyncio.ensure_future(self._supervise()))
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
        from agent.modbus.energy import EnergyGuard, guarded

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
        if self._states.pop(entity, None) is not None and self.link is not None:
            self.link.publish(self.topics.state(entity), b"", qos=1, retain=True)

    def make_room(
        self, config: Config, previous: Optional[RoomController] = None
    ) -> RoomController:
        if self._control_store is None:
            self._control_store = StateStore(self.config.node.state_dir / "control.json")

        def reading(device: str, quantity: str) -> Optional[tuple[float, float]]:
            runner = next((r for r in self.runners if r.config.name == device), None)
            if runner is None and self.ble is not None:
                return self.ble.reading(device, quantity)
            if runner is None or quantity not in runner.last_values:
                return None
            return runner.last_values[quantity], runner.last_good

        def presence() -> Mapping[str, Optional[bool]]:  # the BLE service of the moment
            return self.ble.occupied() if self.ble is not None else {}

        if config.control.relays or config.control.inputs:
            choice = self.hardware.pin_choice()
            (log.warning if choice.error else log.info)("GPIO pins: %s", choice.describe())
        room = RoomController(
            config.control,
            self.hardware.pin_factory(),
            self.clock,
            self._control_store,
            reading,
            presence=presence,
            previous=previous,
        )
        for event in room.startup_events:
            self.emit(event)
        if self.hardware.room is not None:  # simulated meters draw what the relays switch
            rated = {r.name: r.rated_power_w for r in config.control.relays}
            self.hardware.room.relay_load = lambda: sum(
                w for name, w in rated.items() if room.relays.state(name)
            )
        return room

    def make_ble(self, config: Config) -> Any:
        if not config.ble.active:
            return None
        from agent.ble.service import make_service  # bleak only when the config uses BLE

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
        self._new_link(config)

    def submit_db(self, fn: Callable[..., Any], *args: Any) -> None:
        """Runs fn on the buffer's thread without waiting for it (config changes)."""
        self._db_thread.submit(fn, *args)

    def rebind_commands(self) -> None:
        self.commands.handlers = bind(self)()

    def config_event(self, state: str, reason: str) -> None:
        """A config applied or refused, on the events topic: the central side's record."""
        self.emit(Event("config", "node", state, reason, self.clock.time()))

    async def _control(self) -> None:
        """The room's control loop, once a second; it never stops on an error of its own."""
        beats = 0
        while self.room is not None:
            try:
                if self.simulate:
                    self.hardware.simulate_inputs(self.config.control.inputs)
                events = self.room.tick()
                for event in events:
                    self.emit(event)
                self._publish_control_states()
                beats += 1
                if beats % max(1, int(self.config.node.health_interval)) == 0:
                    self._publish_energy()
            except Exception:
                log.exception("room control failed this second; carrying on")
            await asyncio.sleep(CONTROL_SECONDS)

    def emit(self, event: Event) -> None:
        """Events go through the durable buffer (they are the record of why things switched);
        a relay's latest state is also retained on its own topic."""
        assert self.outbox is not None
        body = {"ts": iso_utc(event.timestamp), "kind": event.kind, "subject": event.subject,
                "state": event.state, "reason": event.reason}  # fmt: skip
        self._buffer(self.topics.events, body)
        if event.kind == "relay" and event.state in ("on", "off"):
            retained = {"ts": body["ts"], "on": event.state == "on", "reason": event.reason}
            self._relay_states[event.subject] = json_payload(retained)
            if self.link is not None and self.link.connected:
                topic = self.topics.relay(event.subject)
                self.link.publish(topic, self._relay_states[event.subject], qos=1, retain=True)

    def _publish_discovery(self) -> None:
        """Publishes the Home Assistant device; components that left the config since the last
        time are removed first (remembered in discovery.last beside the buffer)."""
        assert self.link is not None
        topic, payload = discovery.discovery_payload(
            self.config, __version__, prefix=self.config.node.discovery_prefix,
            ble_quantities=self.ble.quantities if self.ble is not None else None,
        )  # fmt: skip
        last = self.config.node.state_dir / "discovery.last"
        previous = None
        with contextlib.suppress(OSError):
            previous = last.read_bytes()
            removal = discovery.removal_payload(previous, payload)
            if removal is not None:
                self.link.publish(topic, removal, qos=1, retain=True)
        self.link.publish(topic, payload, qos=1, retain=True)
        if previous == payload:
            return  # unchanged: a reconnect costs the SD card nothing
        try:
            write_durably(last, payload)
        except OSError as e:
            log.warning("cannot remember the discovery payload: %s", e)

    def _rediscover(self) -> None:
        """A BLE device sent a quantity it had not before: Home Assistant is told."""
        if self.config.node.discovery and self.link is not None and self.link.connected:
            self._publish_discovery()

    def _publish_control_states(self, force: Optional[str] = None) -> None:
        """Retained state of every relay, input, zone, light group, ventilation unit and the
        energy counters (agent.central_state): each one from the first second, then whenever
        it changes; `force` publishes that topic even unchanged (a command's answer)."""
        if self.room is None:
            return
        now = iso_utc(self.clock.time())
        for relay, on in self.room.relays.states().items():
            cached = self._relay_states.get(relay)
            if cached is None or json.loads(cached).get("on") is not on:
                body = central_state.relay_body(on, "current state")
                self._relay_states[relay] = json_payload({"ts": now, **body})
                self._publish_retained(self.topics.relay(relay), self._relay_states[relay])
            elif force == self.topics.relay(relay):
                self._publish_retained(force, cached)
        states = central_state.room_states(self.room, self.topics, self.config.energy.kg_per_kwh)
        for topic, body in states.items():
            if self._state_bodies.get(topic) != body or topic == force:
                self._state_bodies[topic] = body
                self._retain(topic, json_payload({"ts": now, **body}))

    def refresh_state(self, topic: str) -> None:
        """Publishes one entity's retained state again, changed or not (after a command)."""
        self._publish_control_states(force=topic)

    def retained_state(self, topic: str) -> Optional[bytes]:
        """The latest retained state published on `topic`, if this node has one."""
        if topic.startswith(self.topics.relay("")):
            return self._relay_states.get(topic[len(self.topics.relay("")) :])
        if topic.startswith(self.topics.state("")):
            return self._states.get(topic[len(self.topics.state("")) :])
        return self._control_states.get(topic)

    def _retain(self, topic: str, payload: bytes) -> None:
        self._control_states[topic] = payload
        self._publish_retained(topic, payload)

    def _publish_retained(self, topic: str, payload: bytes) -> None:
        if self.link is not None and self.link.connected:
            self.link.publish(topic, payload, qos=1, retain=True)

    def _publish_energy(self) -> None:
        assert self.room is not None
        kwh = self.room.energy_kwh()
        total = sum(kwh.values())
        factor = self.config.energy.kg_per_kwh
        body = {
            "ts": iso_utc(self.clock.time()),
            "relays_kwh": {name: round(v, 4) for name, v in kwh.items()},
            "total_kwh": round(total, 4),
            "co2e_kg": round(total * factor, 4),
        }
        if self.energy_guard is not None:  # the room's meters: measured, beside the estimate
            metered = sum(self.energy_guard.totals().values())
            body["metered_kwh"] = round(metered, 4)
            body["metered_co2e_kg"] = round(metered * self.config.energy.grid_factor / 1000, 4)
        self._buffer(self.topics.energy, body)

    def _buffer(self, topic: str, body: dict[str, Any]) -> None:
        """Appends a JSON message (with its seq) to the outbox from the event loop."""

        def make(seq: int) -> bytes:
            return json_payload({**body, "seq": seq})

        task = asyncio.ensure_future(self._store(topic, make))
        self._appending.add(task)
        task.add_done_callback(self._appending.discard)

    async def _store(
        self,
        topic: str,
        make: Callable[[int], bytes],
        unsynced_at: Optional[tuple[str, float]] = None,
    ) -> None:
        """Commits one message to the outbox and wakes the forwarder. A full disk, even after
        dropping old readings, is counted by the outbox and logged here; nothing stops."""
        assert self.outbox is not None and self.forwarder is not None
        try:
            await self.run_db(self.outbox.append, topic, make, unsynced_at)
        except OutboxError as e:
            log.error("%s not stored: %s", topic, e)
        else:
            self.forwarder.notify()

    async def _first_round(self, stop: asyncio.Event) -> None:
        """Waits until every device has been opened and read once (or has failed or timed out),
        so READY=1 means what it says; a hung driver cannot hold it back past its timeout."""
        if not self.runners:
            return
        limit = max(2 * r.config.timeout for r in self.runners) + 1
        tried = asyncio.ensure_future(asyncio.gather(*(r.first_poll.wait() for r in self.runners)))
        stopping = asyncio.ensure_future(stop.wait())
        waiters: set[asyncio.Future[Any]] = {tried, stopping}
        try:
            await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
                # A cancelled gather ends with CancelledError as its exception; unread, asyncio
                # logs it at ERROR when the future is collected (a stop during the first round).
                waiter.add_done_callback(_retrieve)

    def status_line(self) -> str:
        """One line for `systemctl status`: connected, backlog, devices."""
        up = sum(1 for r in self.runners if r.available)
        link = (
            "connected" if self.link is not None and self.link.connected else "broker unreachable"
        )
        backlog = self.outbox.stats().rows if self.outbox is not None else 0
        ble = f"; {self.ble.status()}" if self.ble is not None else ""
        slow = slow_devices(self.runners)
        return f"{link}; backlog {backlog}; devices {up}/{len(self.runners)} up{ble}{slow}"

    async def _supervise(self) -> None:
        """Feeds systemd's watchdog only while the event loop runs this and the buffer's writer
        thread answers: a stuck loop or a writer stuck in I/O stops the pings, and systemd
        kills and restarts the agent. STATUS= is refreshed on the same beat."""
        interval = self.notifier.watchdog_interval
        period = min(interval, 10.0) if interval else 10.0
        while True:
            alive = True
            if interval:
                try:
                    await asyncio.wait_for(self.run_db(_nothing), timeout=interval)
                except asyncio.TimeoutError:
                    alive = False
                    log.error("buffer writer has not answered for %.0f s", interval)
            if alive:
                fields = {"STATUS": self.status_line()}
                if interval:
                    fields["WATCHDOG"] = "1"
                self.notifier.notify(**fields)
            await asyncio.sleep(period)

    def _threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(fn, *args)

    async def _on_sample(self, sample: Sample) -> None:
        assert self.outbox is not None and self.forwarder is not None
        report = self._reports.add(sample, self.config.devices)
        if report is not None:  # None: sampled, not reported (agent.reporting)
            reported, aggregate = report
            make = functools.partial(_telemetry, reported, aggregate)
            unsynced_at = None if reported.clock_synced else (self.boot, reported.monotonic)
            await self._store(self.topics.telemetry(sample.device), make, unsynced_at)
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
        self._states[entity] = payload
        if self.link is not None and self.link.connected:
            self.link.publish(self.topics.state(entity), payload, qos=1, retain=True)

    def subscriptions(self, config: Config) -> tuple[str, ...]:
        topics = [self.topics.commands]
        if config.node.discovery:
            topics.append(discovery.status_topic(config.node.discovery_prefix))
        return tuple(topics)

    def _new_link(self, config: Config) -> MqttLink:
        """A link whose callbacks are ignored once another link has replaced it (a broker
        change): a late PUBACK from the old broker must not delete a row by a stale id."""
        link: Optional[MqttLink] = None

        def current() -> bool:
            return link is not None and link is self.link

        def on_connect() -> None:
            if current():
                self._on_connect()

        def on_ack(mid: int, ok: bool) -> None:  # on paho's thread: see agent/forwarder.py
            if current() and self.forwarder is not None:
                self.forwarder.on_ack(mid, ok)

        link = MqttLink(
            config.broker,
            status_topic=self.topics.status,
            on_connect=lambda: self._threadsafe(on_connect),
            on_ack=on_ack,
            max_inflight=config.buffer.max_inflight,
            subscriptions=self.subscriptions(config),
            on_message=self._on_message,
        )
        return link

    async def replace_link(self) -> None:
        """Moves to new broker settings: the old connection says offline and closes, what was
        in flight on it goes again from the buffer (at least once, same seq), the new one
        connects and announces."""
        assert self.forwarder is not None and self.link is not None
        if self._link_lock is None:
            self._link_lock = asyncio.Lock()
        # One swap at a time, each from the config of its moment: a second change that comes
        # while the first is stopping its old link replaces the link the first one started.
        async with self._link_lock:
            old, new = self.link, self._new_link(self.config)
            self.link = new  # from here, the old link's callbacks are ignored
            await asyncio.get_running_loop().run_in_executor(None, old.stop)
            await self.forwarder.restart(new, self.config.buffer.max_inflight)
            new.start()
        log.info("connecting to the new broker settings: %s:%d", self.config.broker.host,
                 self.config.broker.port)  # fmt: skip

    def _on_message(self, message: Any) -> None:
        """A command arrived (paho's thread): checked for what can be checked here, then run on
        the event loop, where everything it touches lives."""
        node = self.config.node
        if node.discovery and message.topic == discovery.status_topic(node.discovery_prefix):
            if discovery.ha_status_is_online(bytes(message.payload)):
                log.info("Home Assistant is online: announcing again")
                self._threadsafe(self.announce)
            return
        prefix = self.topics.commands[:-1]  # "<base>/cmd/"
        if not message.topic.startswith(prefix):
            return
        path = message.topic[len(prefix) :].split("/")
        if path == ["response"]:
            return  # our own answers, when the broker cannot honour no_local (MQTT 3.1.1)
        if message.retain:
            # A retained command would switch things again at every reconnect: never obeyed.
            log.warning("ignored a retained command on %s", message.topic)
            return
        props = getattr(message, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        self._threadsafe(self._command, path, bytes(message.payload), response_topic, correlation)

    def _command(
        self,
        path: list[str],
        payload: bytes,
        response_topic: Optional[str],
        correlation: Optional[bytes],
    ) -> None:
        response = self.commands.process(path, payload)
        log.info("command %s: %s %s", "/".join(path), response.code, response.reason)
        if self.link is not None and self.link.connected:
            topic = response_topic or self.topics.command_response
            body = response.payload(iso_utc(self.clock.time()))
            self.link.publish(topic, body, qos=1, correlation=correlation)

    def _on_connect(self) -> None:
        self.announce()

    def announce(self) -> None:
        """Everything a central system needs after (re)connecting: info, discovery, every
        retained state."""
        assert self.link is not None and self.forwarder is not None
        self.link.publish(self.topics.info, self._info(), qos=1, retain=True)
        if self.config.node.discovery:
            self._publish_discovery()
        self._publish_control_states()
        for topic, payload in self._control_states.items():
            self.link.publish(topic, payload, qos=1, retain=True)
        for entity, payload in self._states.items():
            self.link.publish(self.topics.state(entity), payload, qos=1, retain=True)
        for relay, payload in self._relay_states.items():
            self.link.publish(self.topics.relay(relay), payload, qos=1, retain=True)
        self._publish_health()
        self.forwarder.notify()

    def _info(self) -> bytes:
        return json_payload(
            {
                "contract": CONTRACT_VERSION,
                "agent_version": __version__,
                "node": self.config.node.id,
                "name": self.config.node.name,
                "simulated": self.simulate,
                "devices": [
                    {
                        "name": d.name,
                        "driver": d.driver,
                        "units": {
                            q: QUANTITIES[q].unit.value for q in DRIVERS[d.driver].quantities
                        },
                    }
                    for d in self.config.devices
                ],
                **self._ble_info(),
            }
        )

    def _ble_info(self) -> dict[str, Any]:
        devices = self.config.ble.devices
        if not devices:
            return {}
        return {"ble_devices": [{"name": d.name, "address": d.address, "format": d.format}
                                for d in devices]}  # fmt: skip

    def health(self) -> dict[str, Any]:
        assert self.outbox is not None and self.forwarder is not None and self.link is not None
        stats = self.outbox.stats()
        return {
            "ts": iso_utc(self.clock.time()),
            "uptime_s": round(time.monotonic() - self.started),
            "connected": self.link.connected,
            "clock_synced": self.clock.synced(),
            "backlog": stats.rows,
            "backlog_bytes": stats.bytes,
            "dropped": stats.dropped,
            "buffer_recovered_from": stats.recovered_from,
            "rejected": self.forwarder.rejected,
            "delivered": self.forwarder.delivered,
            "devices_up": sum(1 for r in self.runners if r.available),
            "devices_down": sum(1 for r in self.runners if r.available is False),
            "config": self.config_manager.health() if self.config_manager else None,
            **({"ble": self.ble.health()} if self.ble is not None else {}),
        }

    def _publish_health(self) -> None:
        self._set_state("agent", json_payload(self.health()))

    async def _watch_clock(self) -> None:
        """Once NTP sets the clock, re-stamps the readings still waiting that were taken before
        (see Outbox.correct_clock) and lets them go; if it takes longer than hold_unsynced,
        lets them go marked clock_synced=false."""
        assert self.forwarder is not None and self.outbox is not None
        was_synced = self.clock.synced()
        if self.forwarder.hold:
            log.warning("clock not synchronised (no NTP yet): holding readings up to %g s",
                        self.config.node.hold_unsynced)  # fmt: skip
        deadline = self.clock.monotonic() + self.config.node.hold_unsynced
        while True:
            synced = self.clock.synced()
            if synced and not was_synced:
                offset = self.clock.time() - self.clock.monotonic()
                fixed = await self.run_db(
                    self.outbox.correct_clock, self.boot, offset, corrected_telemetry
                )
                log.info("clock synchronised: %d waiting readings re-stamped with their true time",
                         fixed)  # fmt: skip
            if self.forwarder.hold and (synced or self.clock.monotonic() >= deadline):
                if not synced:
                    log.warning("clock still not synchronised: sending readings marked "
                                "clock_synced=false")  # fmt: skip
                self.forwarder.hold = False
                self.forwarder.notify()
            was_synced = synced
            await asyncio.sleep(CLOCK_CHECK_SECONDS)

    async def _tick_buffer(self) -> None:
        """Once a second the buffer moves what is due from its RAM stage to the card."""
        while True:
            await asyncio.sleep(1.0)
            if self.outbox is not None:
                await self.run_db(self.outbox.tick)

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
        if self._appending:
            await asyncio.wait(set(self._appending), timeout=2)
        if self.forwarder is not None and self.link is not None and self.link.connected:
            await self.forwarder.drain(timeout=2.0)
        if self.link is not None:
            log.debug("forwarder drained; closing the MQTT link")
            await asyncio.get_running_loop().run_in_executor(None, self.link.stop)
            log.debug("MQTT link closed")
        # Each driver is closed through its bus's scheduler, between other transactions on
        # that bus: closing from here could interleave with one of them.
        closing = [
            asyncio.wrap_future(
                runner.executor.submit(runner.driver.close, f"{runner.config.name}.close")
            )
            for runner in self.runners
            if not runner.hung
        ]
        if closing:
            await asyncio.wait(closing, timeout=3)
            for future in closing:
                if future.done() and not future.cancelled() and future.exception():
                    log.debug("closing a driver: %s", future.exception())
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


def _nothing() -> None:
    """A job for the database thread that proves it is free to take jobs."""


def _telemetry(sample: Sample, aggregate: Optional[Mapping[str, Any]], seq: int) -> bytes:
    return telemetry_payload(sample.timestamp, seq, sample.clock_synced, sample.values, aggregate)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()

"""One TOML file per node, loaded into frozen dataclasses and validated before anything starts.

Every error names the file, the key path and what is wrong, e.g.
``demo.toml: devices[2].interval: must be ≥ 1 s, got 0``. Key paths count list items from 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Optional, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 in CI
    import tomli as tomllib

from agent.common.suggest import hint
from agent.config.analytics import SECTIONS as FAULT_SECTIONS
from agent.config.analytics import FaultConfig, parse_faults
from agent.config.ble import BleConfig, parse_ble
from agent.config.control import ControlConfig, parse_control
from agent.config.errors import Collector, ConfigError
from agent.config.link import (
    BrokerConfig,
    RegistrationConfig,
    RemoteConfig,
    parse_broker,
    parse_registration,
    parse_remote,
)
from agent.config.modbus import EnergyConfig, ModbusLineConfig, parse_energy, parse_modbus
from agent.config.report import AGGREGATES, ReportPolicy
from agent.config.room import SECTIONS as ROOM_SECTIONS
from agent.config.room import parse_room
from agent.config.sessions import Session
from agent.config.table import Table as _Table
from agent.config.table import at_least as _at_least
from agent.config.table import between as _between
from agent.config.table import name_check as _name
from agent.config.table import one_of as _one_of
from agent.config.table import topic_check as _topic
from agent.pi import header
from drivers import DRIVERS

CONTROL_SECTIONS = ("control", "relays", "inputs", "zones", "lights", "ventilation", "scenes")

RESERVED_DEVICE_NAMES = frozenset({"agent"})
DEFAULT_STATE_DIR = Path("/var/lib/roomagent")
# Where the installer puts the node's config; the installers' commands use it without --config.
DEFAULT_CONFIG = Path("/etc/roomagent/roomagent.toml")

# The staged outbox's spill interval (agent.pipeline.staged_outbox). 15 s: four spills a minute
# leave room under issue 19's budget of six card syncs a minute for the relay-state writes a
# room's control makes (min_off, restore) and the energy totals' one a minute. At 10 s the six
# spills alone used the whole budget, and the council chamber measured 7.3 a minute with the
# broker down (docs/buffer.md).
DEFAULT_SYNC_INTERVAL = 15.0


@dataclass(frozen=True)
class BufferConfig:
    path: Path = DEFAULT_STATE_DIR / "buffer.sqlite"
    max_rows: int = 1_000_000
    max_bytes: int = 256 * 1024 * 1024
    # "staged": a RAM stage, the card written only for what stays unacknowledged; "full":
    # fsync every commit; "normal": see docs/buffer.md
    durability: str = "staged"
    max_inflight: int = 64
    stage_dir: Optional[Path] = None  # None: systemd's RuntimeDirectory, else /dev/shm
    sync_interval: float = DEFAULT_SYNC_INTERVAL  # s: what a power cut can lose under "staged"


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    driver: str
    interval: float
    bus: Union[int, str] = 1  # an I2C bus number, or a Modbus meter's [[modbus]] line name
    address: Optional[int] = None
    timeout: float = 10.0
    # Consecutive failed readings before the device is published as unavailable.
    unavailable_after: int = 3
    # Another device whose readings correct this one's (e.g. an SGP40 takes temperature and
    # humidity from the room's climate sensor).
    compensate_from: Optional[str] = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Which samples become stored readings (agent.pipeline.reporting): every one, by default.
    report: ReportPolicy = field(default_factory=ReportPolicy)


@dataclass(frozen=True)
class NodeConfig:
    id: str
    name: str
    base_topic: str
    state_dir: Path
    simulate: bool = False
    board: Optional[str] = None  # "pi3", "pi4", "pi5", "zero2w"; None: any 40-pin Pi
    buses: tuple[str, ...] = ()  # buses beside I2C-1 that take header pins (agent.pi.header)
    clock: str = "auto"  # "auto": ask the kernel; "synced"/"unsynced": force (tests, odd systems)
    health_interval: float = 60.0
    # At boot without NTP yet, readings wait this long for the clock to be set, so that they
    # can be sent with their true time; after it they go out marked clock_synced=false.
    hold_unsynced: float = 120.0
    # Home Assistant MQTT discovery: published on connect and whenever HA says it is online.
    discovery: bool = True
    discovery_prefix: str = "homeassistant"


@dataclass(frozen=True)
class Config:
    source: Path
    node: NodeConfig
    broker: BrokerConfig
    buffer: BufferConfig
    devices: tuple[DeviceConfig, ...]
    control: ControlConfig = field(default_factory=ControlConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    ble: BleConfig = field(default_factory=BleConfig)
    registration: Optional[RegistrationConfig] = None
    modbus: tuple[ModbusLineConfig, ...] = ()
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    room: Any = None  # agent.config.room.RoomConfig: [room], for comfort/occupancy/sessions
    sessions: tuple[Session, ...] = ()  # [[sessions]]
    faults: Optional[FaultConfig] = field(default_factory=FaultConfig)  # None: switched off


def load(path: os.PathLike[str] | str) -> Config:
    """Reads and validates a node config; raises ConfigError (ConfigErrors when there are
    several problems: all of them, found in one pass)."""
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file") from None
    except OSError as e:
        raise ConfigError(file, "", f"cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(file, "", f"not UTF-8 text ({e.reason} at byte {e.start}); save it "
                          "as UTF-8") from None  # fmt: skip
    return loads(text, file, base_dir=path.resolve().parent)


def loads(text: str, file: str, base_dir: Path) -> Config:
    """Validates a config that did not come from a file (a command, a download); `file` names
    its origin in errors, and relative paths in it resolve against `base_dir`."""
    # Editors on Windows save a byte-order mark and CRLF line ends: both are harmless here.
    text = text.removeprefix("\ufeff")
    text = text.replace("\r\n", "\n")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "", f"not valid TOML: {e}") from None
    return parse(data, file, base_dir)


def parse(data: dict[str, Any], file: str, base_dir: Path) -> Config:
    """Validates loaded TOML. Independent parts are checked even when one fails, so every
    problem is reported at once (ConfigErrors); checks across parts run on the parts that
    parsed."""
    found = Collector(file)
    root = _Table(data, "", file)

    def resolve(p: str) -> Path:
        return (base_dir / os.path.expanduser(p)).resolve()

    def table(name: str) -> _Table:
        return found.run(lambda: root.table(name), _Table({}, name, file))

    node_t = table("node")
    node = found.run(lambda: _parse_node(node_t, resolve))
    node_id = node.id if node else "node"
    state_dir = node.state_dir if node else DEFAULT_STATE_DIR
    broker = found.run(lambda: parse_broker(table("broker"), node_id, resolve))
    buffer = found.run(lambda: _parse_buffer(table("buffer"), state_dir, resolve))
    registration = None
    if "registration" in data:
        registration = found.run(lambda: parse_registration(table("registration"), resolve))

    root.used.add("devices")
    raw_devices = data.get("devices", [])
    if not isinstance(raw_devices, list):
        found.add(root.error("devices", "must be an array of tables ([[devices]])"))
        raw_devices = []
    parsed = [(i, found.run(lambda d=d, i=i: _parse_device(d, i, file)))  # type: ignore[misc]
              for i, d in enumerate(raw_devices)]  # fmt: skip
    indexed = [(i, d) for i, d in parsed if d is not None]
    devices = tuple(d for _, d in indexed)
    found.add(*_check_unique(indexed, file))
    found.add(*_check_compensation(indexed, file))
    modbus = found.run(
        lambda: parse_modbus(data.get("modbus"), devices, lambda k, m: ConfigError(file, k, m)),
        (),
    )
    root.used.add("energy")
    energy = found.run(
        lambda: parse_energy(
            data.get("energy"), lambda k, m: ConfigError(file, k, m), data.get("control")
        ),
        EnergyConfig(),
    )
    root.used.add("ble")
    ble = found.run(
        lambda: parse_ble(data.get("ble"), lambda key, message: ConfigError(file, key, message)),
        BleConfig(),
    )
    found.add(*_check_ble_names(indexed, ble, file))
    # The header before anything that opens a pin: a relay on the I2C bus's SDA or a pin used
    # twice is a config error, not a gpiozero traceback at start.
    root.used.add("modbus")  # issue 20's [[modbus]] meters: its loader validates the table
    board = node.board if node else None
    pin_errors = [ConfigError(file, key, problem)
                  for key, problem in header.check(header.claims(data), board)]  # fmt: skip
    found.add(*pin_errors)
    root.used.update(CONTROL_SECTIONS)
    control = found.run(
        lambda: parse_control(
            data,
            lambda key, message: ConfigError(file, key, message),
            devices,
            presence=[p.name for p in ble.presence],
            ble_measures={d.name: d.quantities for d in ble.devices},
        ),
        ControlConfig(),
    )
    if pin_errors:  # the control checks' own pin messages would repeat the header's
        found.errors = [e for e in found.errors if e in pin_errors or not _pin_repeat(e)]
    remote = found.run(lambda: parse_remote(table("remote_config"), resolve), RemoteConfig())
    root.used.update(ROOM_SECTIONS)
    room, sessions = found.run(
        lambda: parse_room(
            data, lambda key, message: ConfigError(file, key, message), devices,
            [v.name for v in control.ventilation], control.timezone,
        ),
        (None, ()),
    )  # fmt: skip
    root.used.update(FAULT_SECTIONS)
    faults = found.run(
        lambda: parse_faults(data, lambda key, message: ConfigError(file, key, message)), None
    )
    found.run(root.finish)
    found.raise_if_any()
    return Config(Path(file), node, broker, buffer, devices, control, remote, ble,
                  registration, modbus, energy, room, sessions, faults)  # fmt: skip


def _pin_repeat(e: ConfigError) -> bool:
    """An error of relays.py/inputs.py about a pin the header check already reported."""
    return (
        e.key.split("[")[0] in ("relays", "inputs")
        and "pin" in e.key + e.message
        and ("GPIO" in e.message or "pin " in e.message)
    )


def _parse_node(t: _Table, resolve: Callable[[str], Path]) -> NodeConfig:
    node_id = t.get("id", str, check=_name)
    state_dir = resolve(t.get("state_dir", str, str(DEFAULT_STATE_DIR)))
    node = NodeConfig(
        id=node_id,
        name=t.get("name", str, node_id),
        base_topic=t.get("base_topic", str, f"roomagent/{node_id}", check=_topic),
        state_dir=state_dir,
        simulate=t.get("simulate", bool, NodeConfig.simulate),
        board=t.get("board", str, None, check=header.board_problem),
        buses=tuple(t.get("buses", list, [], check=_buses)),
        clock=t.get("clock", str, NodeConfig.clock, check=_one_of("auto", "synced", "unsynced")),
        health_interval=t.get(
            "health_interval", float, NodeConfig.health_interval, check=_at_least(5, "s")
        ),
        hold_unsynced=t.get(
            "hold_unsynced", float, NodeConfig.hold_unsynced, check=_between(0, 86400, "s")
        ),
        discovery=t.get("discovery", bool, NodeConfig.discovery),
        discovery_prefix=t.get("discovery_prefix", str, NodeConfig.discovery_prefix, check=_topic),
    )
    t.finish()
    return node


def _buses(v: Any) -> Optional[str]:
    for name in v:
        if name not in header.BUS_PINS or name == "i2c1":
            choices = [b for b in header.BUS_PINS if b != "i2c1"]
            near = hint(name, choices) if isinstance(name, str) else ""
            return f"unknown bus {name!r}{near} (buses: {', '.join(choices)})"
    return None


def _optional_path(text: str, resolve: Callable[[str], Path]) -> Optional[Path]:
    return resolve(text) if text else None


def _parse_buffer(t: _Table, state_dir: Path, resolve: Callable[[str], Path]) -> BufferConfig:
    buffer = BufferConfig(
        path=resolve(t.get("path", str, str(state_dir / "buffer.sqlite"))),
        max_rows=t.get("max_rows", int, BufferConfig.max_rows, check=_at_least(100, "rows")),
        max_bytes=t.get("max_bytes", int, BufferConfig.max_bytes, check=_at_least(65536, "bytes")),
        durability=t.get(
            "durability", str, BufferConfig.durability, check=_one_of("staged", "full", "normal")
        ),
        max_inflight=t.get("max_inflight", int, BufferConfig.max_inflight, check=_between(1, 1000)),
        stage_dir=_optional_path(t.get("stage_dir", str, ""), resolve),
        sync_interval=t.get(
            "sync_interval", float, BufferConfig.sync_interval, check=_between(1, 3600, "s")
        ),
    )
    t.finish()
    return buffer


def _parse_device(data: Any, index: int, file: str) -> DeviceConfig:
    t = _Table(data, f"devices[{index}]", file)
    driver = t.get("driver", str)
    if driver not in DRIVERS:
        raise t.error("driver", f"unknown driver {driver!r}{hint(driver, DRIVERS)} (known: "
                      f"{', '.join(sorted(DRIVERS))})")  # fmt: skip
    name = t.get("name", str, driver, check=_name)
    if name in RESERVED_DEVICE_NAMES:
        raise t.error("name", f"{name!r} is reserved for the agent's own state topic")
    meter = getattr(DRIVERS[driver], "transport", "i2c") == "modbus"
    # A Modbus meter's address is its unit id (1..247), its bus a [[modbus]] line's name.
    address = t.get("address", int, None, check=_between(1, 247) if meter else _between(0x03, 0x77))
    options_t = t.table("options")
    try:
        DRIVERS[driver].validate_options(options_t.data)
    except ValueError as e:
        raise ConfigError(file, options_t.path, str(e)) from None
    interval = t.get("interval", float, check=_at_least(1, "s"))
    try:
        DRIVERS[driver].validate_interval(interval, options_t.data)
    except ValueError as e:
        raise t.error("interval", str(e)) from None
    device = DeviceConfig(
        name=name,
        driver=driver,
        interval=interval,
        bus=t.get("bus", str) if meter else t.get("bus", int, DeviceConfig.bus, check=_at_least(0)),
        address=address,
        timeout=_timeout(t, driver, options_t.data),
        unavailable_after=t.get(
            "unavailable_after", int, DeviceConfig.unavailable_after, check=_between(1, 1000)
        ),
        compensate_from=t.get("compensate_from", str, None),
        options=MappingProxyType(dict(options_t.data)),
        report=_parse_report(t, driver),
    )
    if device.compensate_from is not None and not DRIVERS[driver].compensation:
        raise t.error("compensate_from", f"driver {driver!r} takes no compensation")
    t.finish()
    return device


def _parse_report(t: _Table, driver: str) -> ReportPolicy:
    """report_every, report_aggregate and [devices.report_deadband] (docs/config.md)."""
    every = t.get("report_every", int, 1, check=_between(1, 10000))
    aggregate = t.get("report_aggregate", str, "last", check=_one_of(*AGGREGATES))
    band_t = t.table("report_deadband")
    quantities = DRIVERS[driver].quantities
    deadband: dict[str, float] = {}
    for quantity in band_t.data:
        if quantity not in quantities:
            raise band_t.error(quantity, f"{driver} has no such quantity; it has "
                               f"{', '.join(quantities)}")  # fmt: skip
        deadband[quantity] = band_t.get(quantity, float, check=_at_least(0))
    return ReportPolicy(every, aggregate, MappingProxyType(deadband))


def _timeout(t: _Table, driver: str, options: Mapping[str, Any]) -> float:
    worst = DRIVERS[driver].worst_read_time(options)
    timeout = t.get("timeout", float, max(DeviceConfig.timeout, 1.5 * worst),
                    check=_between(0.1, 300, "s"))  # fmt: skip
    if timeout < worst:
        raise t.error(
            "timeout",
            f"must be ≥ {worst:g} s: a healthy {driver} with these options may take that long",
        )
    return timeout


def _check_compensation(
    devices: list[tuple[int, DeviceConfig]], file: str
) -> Iterator[ConfigError]:
    by_name = {d.name: d for _, d in devices}
    for i, d in devices:
        if d.compensate_from is None:
            continue
        key = f"devices[{i}].compensate_from"
        source = by_name.get(d.compensate_from)
        if source is None or source is d:
            others = [n for n in by_name if n != d.name]
            yield ConfigError(file, key, f"no other device named {d.compensate_from!r}"
                              f"{hint(d.compensate_from, others)} (devices: "
                              f"{', '.join(others) or 'none'})")  # fmt: skip
            continue
        # Half a compensation is worse than the chip's defaults (an SGP40 told the temperature
        # but not the humidity assumes 50 %RH), so the source must measure all of it.
        missing = [
            q for q in DRIVERS[d.driver].compensation if q not in DRIVERS[source.driver].quantities
        ]
        if missing:
            yield ConfigError(
                file,
                key,
                f"{source.name!r} ({source.driver}) does not measure {', '.join(missing)}, "
                f"which {d.driver} needs",
            )


def _check_ble_names(
    devices: list[tuple[int, DeviceConfig]], ble: BleConfig, file: str
) -> Iterator[ConfigError]:
    """BLE devices and presence groups publish on <base>/telemetry/<name> like I2C devices:
    one namespace for all of them."""
    taken = {d.name: f"devices[{i}]" for i, d in devices}
    keys = [f"ble.devices[{i}].name" for i in range(len(ble.devices))]
    keys += [f"ble.presence[{i}].name" for i in range(len(ble.presence))]
    for key, name in zip(keys, ble.names()):
        problem = _name(name)
        if problem:
            yield ConfigError(file, key, problem)
        elif name in RESERVED_DEVICE_NAMES:
            yield ConfigError(file, key, f"{name!r} is reserved for the agent's own state topic")
        elif name in taken:
            yield ConfigError(file, key, f"{name!r} is already used by {taken[name]}")
        taken[name] = key.rsplit(".", 1)[0]


def _check_unique(devices: list[tuple[int, DeviceConfig]], file: str) -> Iterator[ConfigError]:
    names: dict[str, int] = {}
    wires: dict[tuple[Any, int], int] = {}
    for i, d in devices:
        if d.name in names:
            yield ConfigError(
                file,
                f"devices[{i}].name",
                f"{d.name!r} is already used by devices[{names[d.name]}]",
            )
        names.setdefault(d.name, i)
        address = d.address if d.address is not None else DRIVERS[d.driver].default_address
        wire = (d.bus, address)
        if wire in wires:
            yield ConfigError(
                file,
                f"devices[{i}].address",
                f"bus {d.bus} address 0x{address:02x} is already used by devices[{wires[wire]}]",
            )
        wires.setdefault(wire, i)

"""The `[[modbus]]` tables: one per line, a serial port or a TCP endpoint (docs/config.md).

    [[modbus]]
    name = "rs485"
    serial = "/dev/ttyUSB0"   # baudrate, parity, stopbits default to the meters' factory settings
    [[modbus]]
    name = "gateway"
    tcp = "192.168.1.50:502"

A meter is an ordinary [[devices]] entry whose `bus` is the line's name and whose `address` is
its unit id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from agent.config.control import NAME_RE
from drivers import DRIVERS
from drivers.modbus_meter import MODBUS_SERIAL_DEFAULT, SerialSettings

log = logging.getLogger(__name__)

PARITIES = ("N", "E", "O")
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
KEYS = ("name", "serial", "baudrate", "parity", "stopbits", "tcp", "timeout")


@dataclass(frozen=True)
class ModbusLineConfig:
    name: str
    serial: Optional[str] = None  # device path of an RS-485 adapter or HAT
    baudrate: int = MODBUS_SERIAL_DEFAULT.baudrate
    parity: str = MODBUS_SERIAL_DEFAULT.parity
    stopbits: int = MODBUS_SERIAL_DEFAULT.stopbits
    host: Optional[str] = None  # a Modbus TCP gateway or meter
    port: int = 502
    timeout: float = 0.5  # s a meter has to answer one request

    @property
    def kind(self) -> str:
        return "serial" if self.serial is not None else "tcp"

    def where(self) -> str:
        if self.serial is not None:
            return f"{self.serial} {self.baudrate} {8}{self.parity}{self.stopbits}"
        return f"{self.host}:{self.port}"


Error = Callable[[str, str], Exception]


def parse_modbus(raw: Any, devices: Sequence[Any], error: Error) -> tuple[ModbusLineConfig, ...]:
    """Validates the lines and the meters on them; `error(key, message)` makes the exception."""
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise error("modbus", "must be an array of tables ([[modbus]])")
    meters = {i: d for i, d in enumerate(devices) if _is_meter(d.driver)}
    lines = []
    for i, table in enumerate(raw):
        on_line = [
            d for d in meters.values() if isinstance(table, dict) and d.bus == table.get("name")
        ]
        lines.append(_parse_line(table, f"modbus[{i}]", on_line, error))
    names = [line.name for line in lines]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise error(
                f"modbus[{i}].name", f"{name!r} is already used by modbus[{names.index(name)}]"
            )
    for i, d in meters.items():
        if d.bus not in names:
            known = ", ".join(repr(n) for n in names) or "none: add a [[modbus]] table"
            raise error(f"devices[{i}].bus", f"no [[modbus]] line named {d.bus!r} (lines: {known})")
    return tuple(lines)


def _is_meter(driver: str) -> bool:
    return getattr(DRIVERS[driver], "transport", "i2c") == "modbus"


def _parse_line(t: Any, path: str, meters: Sequence[Any], error: Error) -> ModbusLineConfig:
    if not isinstance(t, dict):
        raise error(path, "must be a table")
    unknown = sorted(set(t) - set(KEYS))
    if unknown:
        raise error(f"{path}.{unknown[0]}", f"unknown key (known keys here: {', '.join(KEYS)})")

    def get(key: str, kind: type, default: Any) -> Any:
        value = t.get(key, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise error(f"{path}.{key}", f"must be {kind.__name__}, got {value!r}")
        return value

    name = get("name", str, None)
    if name is None:
        raise error(f"{path}.name", "is required (devices name it as their `bus`)")
    if not NAME_RE.match(name):
        raise error(f"{path}.name", f"must be 1-64 letters, digits, '-' or '_', got {name!r}")
    serial, tcp = get("serial", str, None), get("tcp", str, None)
    if (serial is None) == (tcp is None):
        raise error(path, 'needs either serial = "/dev/ttyUSB0" or tcp = "host:port", not both')
    timeout = get("timeout", float, ModbusLineConfig.timeout)
    if not 0.05 <= timeout <= 10:
        raise error(f"{path}.timeout", f"must be 0.05..10 s, got {timeout:g}")
    if tcp is not None:
        for key in ("baudrate", "parity", "stopbits"):
            if key in t:
                raise error(f"{path}.{key}", "is for a serial line; a tcp line has none")
        host, port = _host_port(tcp, f"{path}.tcp", error)
        return ModbusLineConfig(name, host=host, port=port, timeout=timeout)
    if not serial.startswith("/"):
        raise error(f"{path}.serial", f'must be a device path like "/dev/ttyUSB0", got {serial!r}')
    default = _factory_default(meters, path, t, error)
    baudrate = get("baudrate", int, default.baudrate)
    if baudrate not in BAUDRATES:
        raise error(
            f"{path}.baudrate", f"must be one of {', '.join(map(str, BAUDRATES))}, got {baudrate}"
        )
    parity = get("parity", str, default.parity)
    if parity not in PARITIES:
        raise error(f"{path}.parity", f"must be 'N', 'E' or 'O', got {parity!r}")
    stopbits = get("stopbits", int, default.stopbits)
    if stopbits not in (1, 2):
        raise error(f"{path}.stopbits", f"must be 1 or 2, got {stopbits}")
    return ModbusLineConfig(
        name, serial=serial, baudrate=baudrate, parity=parity, stopbits=stopbits, timeout=timeout
    )


def _factory_default(
    meters: Sequence[Any], path: str, t: Mapping[str, Any], error: Error
) -> SerialSettings:
    """The settings the line's meters leave the factory with; when they differ, the line must
    say which it uses (the meters must then be set to it from their front panel)."""
    settings = {getattr(DRIVERS[d.driver], "factory_serial", MODBUS_SERIAL_DEFAULT) for d in meters}
    if len(settings) <= 1:
        return next(iter(settings), MODBUS_SERIAL_DEFAULT)
    if all(k in t for k in ("baudrate", "parity", "stopbits")):
        return MODBUS_SERIAL_DEFAULT  # unused: all three are given
    shown = "; ".join(sorted(f"{s.baudrate} {s.parity} {s.stopbits}" for s in settings))
    raise error(
        path,
        f"its meters leave the factory with different settings ({shown}): set "
        "baudrate, parity and stopbits, and the same on every meter",
    )


def _host_port(value: str, key: str, error: Error) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, "502"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise error(key, f'must be "host:port" (port 1..65535, default 502), got {value!r}')
    return host, int(port)


# g CO2e per kWh drawn from Italy's grid: see docs/energy.md for the source and year.
ITALY_GRID_G_PER_KWH = 250.0


@dataclass(frozen=True)
class EnergyConfig:
    """The `[energy]` table: what a kWh from the grid emits, for the meters' CO2e and the relays'
    `co2e_kg`. The one statement of the grid factor (`control.grid_emission_factor`, kg/kWh, is
    its deprecated spelling: parse_energy folds it in)."""

    grid_factor: float = ITALY_GRID_G_PER_KWH  # g CO2e/kWh

    @property
    def kg_per_kwh(self) -> float:
        return self.grid_factor / 1000


def parse_energy(raw: Any, error: Error, control: Any = None) -> EnergyConfig:
    """`control`: the raw `[control]` table, for its deprecated `grid_emission_factor` (kg/kWh;
    config_control.py checks its type)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise error("energy", "must be a table")
    unknown = sorted(set(raw) - {"grid_factor"})
    if unknown:
        raise error(f"energy.{unknown[0]}", "unknown key (known keys here: grid_factor)")
    factor = raw.get("grid_factor", EnergyConfig.grid_factor)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 2000:
        raise error("energy.grid_factor", f"must be 0..2000 g CO2e/kWh, got {factor!r}")
    legacy = control.get("grid_emission_factor") if isinstance(control, dict) else None
    if isinstance(legacy, bool) or not isinstance(legacy, (int, float)) or legacy < 0:
        return EnergyConfig(float(factor))  # absent, or refused by config_control.py
    grams = legacy * 1000
    if "grid_factor" in raw and not math.isclose(grams, factor, abs_tol=1e-9):
        raise error(
            "control.grid_emission_factor",
            f"{legacy:g} kg/kWh ({grams:g} g/kWh) disagrees with energy.grid_factor = "
            f"{factor:g} g/kWh, the same fact: remove control.grid_emission_factor",
        )
    if grams > 2000:
        raise error("control.grid_emission_factor", f"must be 0..2 kg CO2e/kWh, got {legacy!r}")
    log.warning(
        "control.grid_emission_factor is deprecated: write [energy] grid_factor = %g "
        "(g CO2e/kWh, = kg/kWh x 1000) instead", grams,
    )  # fmt: skip
    return EnergyConfig(float(grams))

"""The contract every peripheral driver follows.

A driver is given its bus (any object with smbus2.SMBus's methods) and an address; it never opens
hardware itself, so the same code runs against a Pi's /dev/i2c-1 or a simulated chip.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

from smbus2 import i2c_msg

from drivers.quantities import QUANTITIES

Sleep = Callable[[float], None]


class DriverError(Exception):
    """The chip is absent, the wrong chip answered, or it answered nonsense."""


class CRCError(DriverError):
    """A checksum sent by the chip did not match its data."""


@dataclass(frozen=True)
class Measurement:
    """Every quantity of one measurement, taken at one instant."""

    values: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"unknown quantities {sorted(unknown)}; add them to QUANTITIES")


def values_of(measurement: object) -> Mapping[str, float]:
    """read() may return a Measurement or a plain mapping (the contract allows both)."""
    values = getattr(measurement, "values", measurement)
    if not isinstance(values, Mapping):
        raise DriverError(f"driver returned {type(measurement).__name__}, not a measurement")
    return values


def _as(kind: type, value: Any) -> Any:
    """TOML writes 4 for 4.0: a whole number is a fine value for a float option."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# Every chip's driver by its config name. A driver class registers itself by naming itself
# (`name = "..."`); load_chips() imports every chip module of this package, so nothing else keeps
# a list of chips.
_CHIPS: dict[str, type[Driver]] = {}
_loaded: list[Mapping[str, type[Driver]]] = []


def load_chips() -> Mapping[str, type[Driver]]:
    """Every registered chip driver, by config name in alphabetical order (imports the chip
    modules the first time)."""
    if not _loaded:
        for module in pkgutil.iter_modules([os.path.dirname(__file__)]):
            if not module.ispkg:  # shared code (sensirion, modbus_map) registers nothing
                importlib.import_module(f"drivers.{module.name}")
        _loaded.append(dict(sorted(_CHIPS.items())))
    return _loaded[0]


class Driver:
    """Base of all drivers: open() probes and initialises, read() measures once, close().

    A chip's module carries what is known about the chip, as class attributes of its driver:
    config name, label, addresses, 5 V need, quantities, identification (identify()) and its
    simulated counterpart. Nothing else lists chips (docs/sensing.md, "Adding a chip")."""

    name: ClassVar[str]
    label: ClassVar[str]  # maker and part, as a wiring diagram names it: "Bosch BME280"
    # The kind of bus it is on: "i2c", or "modbus" for a meter on a [[modbus]] line (whose
    # simulated counterpart is a pymodbus server, drivers/sim/meter.py, not a chip on SimBus).
    transport: ClassVar[str] = "i2c"
    # Needs a 5 V supply beside its 3.3 V logic (a fan, a laser): wired to a 5 V pin.
    five_volt: ClassVar[bool] = False
    # An I2C chip's simulated chip, "module:Class" in drivers.sim, with the arguments that make
    # it this chip, and the device options that describe the board rather than the chip (an
    # INA's shunt resistor), which the simulated chip takes from the config as the real one's
    # behaviour follows from the part soldered next to it.
    simulated: ClassVar[str]
    simulated_arguments: ClassVar[Mapping[str, Any]] = {}
    board_options: ClassVar[tuple[str, ...]] = ()
    # When it does not acknowledge, ask the other chips that can sit at its address to identify
    # themselves, and name the one that answers (an SHT4x where an SHT3x was configured). Off
    # where identification is only a guess (the INA219 has no id register).
    names_other_chips: ClassVar[bool] = False
    default_address: ClassVar[int]
    # Every address the chip can be strapped to; the first is the default. Used by scan-i2c.
    addresses: ClassVar[tuple[int, ...]] = ()
    quantities: ClassVar[tuple[str, ...]]
    # Quantities this driver can take from a sibling device (config key `compensate_from`) to
    # correct its own reading, e.g. an SGP40 wants temperature and humidity.
    compensation: ClassVar[tuple[str, ...]] = ()
    # True when the chip's host-side algorithm needs samples at exactly its interval (the SGP40's
    # VOC index): its bus's scheduler serves it first, and its state says when it cannot.
    fixed_cadence: ClassVar[bool] = False
    # Option name -> (type, default). Validated by the config loader before a driver is built.
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a chip; shared bases (SensirionDriver) name none
            _CHIPS[cls.name] = cls

    def __init__(
        self,
        bus: Any,
        address: Optional[int] = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        self.bus = bus
        self.address = self.default_address if address is None else address
        self.sleep = sleep
        unknown = set(options) - set(self.options_schema)
        if unknown:
            raise ValueError(
                f"unknown option {sorted(unknown)[0]!r}; "
                f"{self.name} takes {sorted(self.options_schema) or 'no options'}"
            )
        self.options = {
            k: _as(kind, options.get(k, default))
            for k, (kind, default) in self.options_schema.items()
        }

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """Raises ValueError naming the first bad option, without touching any bus."""
        for key, value in options.items():
            expected = cls.options_schema.get(key, (object, None))[0]
            if key in cls.options_schema and not isinstance(_as(expected, value), expected):
                raise ValueError(f"option {key!r} must be {expected.__name__}, got {value!r}")
        cls(None, **options)

    @classmethod
    def measured(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        """The quantities a device with these options reports (a generic meter's come from
        its config); most drivers always report the same ones."""
        return cls.quantities

    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        """The longest a healthy open() or read() takes with these options, in seconds. The
        device's default timeout is 1.5 times it (at least 10 s); a shorter one is refused.
        The default suits chips that answer within a conversion of tens of milliseconds."""
        return 0.25

    @classmethod
    def validate_interval(cls, interval: float, options: Mapping[str, Any]) -> None:
        """Raises ValueError when the chip cannot be polled every `interval` seconds with these
        options (e.g. a sensor that only has new data every 5 s, or an algorithm that needs a
        fixed sampling interval). The config loader calls it; the default accepts any."""

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        """What scan-i2c shows for this chip at this address (e.g. its chip id or serial), or
        None when what answers is not this chip. Must leave a running chip as it found it.
        `sleep`: how to wait for an answer (a driver asking on its bus passes its own).

        The default cannot tell: chips without an id register are named by address alone.
        """
        return None

    def open(self) -> None:
        raise NotImplementedError

    def compensate(self, values: Mapping[str, float]) -> None:
        """Called by the runtime before each read() with the sibling's latest values: only the
        quantities named in `compensation`, and only those still fresh. An empty mapping means
        none is known, and the driver falls back to the chip's defaults."""

    def read(self) -> Measurement:
        raise NotImplementedError

    def close(self) -> None:
        """Leave the chip idle. Most chips need nothing; the bus belongs to the caller."""

    def no_answer(self, e: OSError) -> DriverError:
        """The error open() raises when this chip does not acknowledge: names the chip that
        answers at its address instead, when identification finds one, else what to check."""
        other = (
            who_answers(self.bus, self.address, besides=type(self), sleep=self.sleep)
            if self.names_other_chips
            else None
        )
        if other is not None:
            name, description = other
            return DriverError(
                f"{self.name} at 0x{self.address:02x}: {description} answers, not a "
                f"{self.label}: use driver {name!r}"
            )
        return DriverError(
            f"{self.name}: no chip answers at 0x{self.address:02x} ({e.strerror or e}); "
            "check wiring, power and the address"
        )

    # Raw transfers, for chips that speak commands rather than registers. Each call is one
    # complete bus transaction (start ... stop), so nothing is left half-finished.
    def send(self, data: bytes) -> None:
        self.bus.i2c_rdwr(i2c_msg.write(self.address, data))

    def receive(self, length: int) -> bytes:
        msg = i2c_msg.read(self.address, length)
        self.bus.i2c_rdwr(msg)
        return bytes(msg)

    def __enter__(self) -> Driver:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def who_answers(
    bus: Any, address: int, besides: type[Driver], sleep: Sleep = time.sleep
) -> Optional[tuple[str, str]]:
    """(driver name, what identify() says) of another chip that answers at this address, or
    None. Only chips that can sit at the address and can identify themselves are asked."""
    for name, cls in load_chips().items():
        if cls.transport != besides.transport or address not in cls.addresses:
            continue  # another kind of bus (a Modbus meter's unit id is no I2C address)
        if issubclass(cls, besides) or issubclass(besides, cls):
            continue
        if cls.identify.__func__ is Driver.identify.__func__:  # type: ignore[attr-defined]
            continue
        try:
            description = cls.identify(bus, address, sleep)
        except (OSError, DriverError):
            continue
        if description:
            return name, description
    return None

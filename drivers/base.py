"""The contract every peripheral driver follows.

A driver is given its bus (any object with smbus2.SMBus's methods) and an address; it never opens
hardware itself, so the same code runs against a Pi's /dev/i2c-1 or a simulated chip.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

from smbus2 import i2c_msg

from drivers.quantities import QUANTITIES


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


class Driver:
    """Base of all drivers: open() probes and initialises, read() measures once, close()."""

    name: ClassVar[str]
    default_address: ClassVar[int]
    # Every address the chip can be strapped to; the first is the default. Used by scan-i2c.
    addresses: ClassVar[tuple[int, ...]] = ()
    quantities: ClassVar[tuple[str, ...]]
    # Quantities this driver can take from a sibling device (config key `compensate_from`) to
    # correct its own reading, e.g. an SGP40 wants temperature and humidity.
    compensation: ClassVar[tuple[str, ...]] = ()
    # Option name -> (type, default). Validated by the config loader before a driver is built.
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {}

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
    def identify(cls, bus: Any, address: int) -> Optional[str]:
        """What scan-i2c shows for this chip at this address (e.g. its chip id or serial), or
        None when what answers is not this chip. Must leave a running chip as it found it.

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
        """The error open() raises when nothing acknowledges: says what to check."""
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

"""Peripheral drivers, found by their config name.

    from drivers import DRIVERS, DriverError, CRCError
    drv = DRIVERS["bme280"](bus, address=None)
    drv.open(); drv.read().values; drv.close()

Each chip's module registers its driver (drivers.base: a driver class that names itself); the
chip modules are imported on first use of DRIVERS. Third-party libraries a chip needs (the
SGP40's gas index algorithm) are imported only when a config uses that chip.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from drivers.base import CRCError, Driver, DriverError, Measurement, load_chips, values_of
from drivers.quantities import QUANTITIES, Quantity, Unit


class _Chips(Mapping[str, "type[Driver]"]):
    """The registered chips (drivers.base), their modules imported on first use."""

    def __getitem__(self, name: str) -> type[Driver]:
        return load_chips()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(load_chips())

    def __len__(self) -> int:
        return len(load_chips())


DRIVERS: Mapping[str, type[Driver]] = _Chips()

__all__ = [
    "DRIVERS", "QUANTITIES", "CRCError", "Driver", "DriverError", "Measurement", "Quantity", "Unit",
    "values_of",
]  # fmt: skip

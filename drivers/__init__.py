"""Peripheral drivers, found by their config name.

    from drivers import DRIVERS, DriverError, CRCError
    drv = DRIVERS["bme280"](bus, address=None)
    drv.open(); drv.read().values; drv.close()

Driver modules are imported only when a config names them, so a node never loads code (or
third-party libraries) for hardware it does not have.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from drivers.base import CRCError, Driver, DriverError, Measurement, values_of
from drivers.quantities import QUANTITIES, Quantity, Unit

# config name -> "module:Class"
_REGISTRY = {
    "bme280": "drivers.bme280:BME280",
    "bmp280": "drivers.bme280:BMP280",
    "sht3x": "drivers.sht3x:SHT3x",
    "sht4x": "drivers.sht4x:SHT4x",
    "scd4x": "drivers.scd4x:SCD4x",
    "sgp40": "drivers.sgp40:SGP40",
    "bh1750": "drivers.bh1750:BH1750",
    "veml7700": "drivers.veml7700:VEML7700",
    "ina219": "drivers.ina219:INA219",
    "ina226": "drivers.ina226:INA226",
    "pmsa003i": "drivers.pmsa003i:PMSA003I",
    # Modbus energy meters (devices whose `bus` names a [[modbus]] line)
    "sdm120": "drivers.sdm120:SDM120",
    "sdm630": "drivers.sdm630:SDM630",
    "em24": "drivers.em24:EM24",
    "modbus_generic": "drivers.modbus_generic:ModbusGeneric",
}


class _LazyDrivers(Mapping[str, "type[Driver]"]):
    def __getitem__(self, name: str) -> type[Driver]:
        module_name, _, class_name = _REGISTRY[name].partition(":")
        cls: type[Driver] = getattr(importlib.import_module(module_name), class_name)
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


DRIVERS: Mapping[str, type[Driver]] = _LazyDrivers()

__all__ = [
    "DRIVERS", "QUANTITIES", "CRCError", "Driver", "DriverError", "Measurement", "Quantity", "Unit",
    "values_of",
]  # fmt: skip

"""The one place that names every quantity the agent reports, with its unit.

Drivers, the MQTT payloads and (later) Home Assistant discovery all read this table, so a
quantity cannot be reported in °F by one driver and °C by another.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Unit(str, enum.Enum):
    CELSIUS = "°C"
    PERCENT_RH = "%"
    HECTOPASCAL = "hPa"
    PPM = "ppm"
    LUX = "lx"
    MICROGRAMS_PER_M3 = "µg/m³"
    VOLT = "V"
    AMPERE = "A"
    WATT = "W"
    HERTZ = "Hz"
    KILOWATT_HOUR = "kWh"
    KILOGRAM = "kg"
    NONE = ""  # an index on a scale of its own (Sensirion's VOC index: 1..500, 100 = typical)


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: Unit
    # Physically plausible bounds for a room sensor: a value outside them is a fault, not weather.
    minimum: float
    maximum: float
    # Decimal places worth publishing; more is noise from the compensation arithmetic.
    decimals: int
    # An energy meter can report it (the modbus_generic driver's registers may name it).
    meter: bool = False
    # A counter that only grows (Home Assistant's total_increasing); else a measurement.
    total_increasing: bool = False


QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in (
        Quantity("temperature", Unit.CELSIUS, -40.0, 85.0, 2),
        Quantity("humidity", Unit.PERCENT_RH, 0.0, 100.0, 2),
        Quantity("pressure", Unit.HECTOPASCAL, 300.0, 1100.0, 2),
        Quantity("co2", Unit.PPM, 0.0, 40000.0, 0),
        Quantity("illuminance", Unit.LUX, 0.0, 200000.0, 1),
        Quantity("voc_index", Unit.NONE, 0.0, 500.0, 0),
        # Sensirion's NOx index: 1..500, 1 = typical; Ruuvi Air sends 0..500.
        Quantity("nox_index", Unit.NONE, 0.0, 500.0, 0),
        Quantity("pm1_0", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0),
        Quantity("pm2_5", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0),
        Quantity("pm4_0", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0),
        Quantity("pm10", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0),
        # A metered circuit: an INA219/INA226 on a DC supply, or a mains energy meter (230/400 V,
        # up to a CT meter's feeder); current may flow either way.
        Quantity("voltage", Unit.VOLT, 0.0, 1000.0, 3, meter=True),
        Quantity("current", Unit.AMPERE, -6000.0, 6000.0, 4, meter=True),
        Quantity("power", Unit.WATT, -4.0e6, 4.0e6, 3, meter=True),
        # Energy meters (Modbus): signed power factor (Eastron: negative for reverse current).
        Quantity("power_factor", Unit.NONE, -1.0, 1.0, 3, meter=True),
        Quantity("frequency", Unit.HERTZ, 40.0, 70.0, 2, meter=True),
        Quantity("energy_import", Unit.KILOWATT_HOUR, 0.0, 1.0e9, 3, True, True),
        Quantity("energy_export", Unit.KILOWATT_HOUR, 0.0, 1.0e9, 3, True, True),
        # Emissions of a meter's imported energy at the grid's factor ([energy] grid_factor).
        Quantity("co2e", Unit.KILOGRAM, 0.0, 1.0e9, 3, total_increasing=True),
        *(
            Quantity(f"{name}_l{phase}", unit, lo, hi, decimals, meter=True)
            for name, unit, lo, hi, decimals in (
                ("voltage", Unit.VOLT, 0.0, 1000.0, 2),
                ("current", Unit.AMPERE, -6000.0, 6000.0, 3),
                ("power", Unit.WATT, -4.0e6, 4.0e6, 1),
                ("power_factor", Unit.NONE, -1.0, 1.0, 3),
            )
            for phase in (1, 2, 3)
        ),
    )
}

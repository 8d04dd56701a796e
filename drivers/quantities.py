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
        # A metered circuit: INA219 buses go to 26 V, INA226 to 36 V; current may flow either way.
        Quantity("voltage", Unit.VOLT, 0.0, 40.0, 3),
        Quantity("current", Unit.AMPERE, -400.0, 400.0, 4),
        Quantity("power", Unit.WATT, -16000.0, 16000.0, 3),
    )
}

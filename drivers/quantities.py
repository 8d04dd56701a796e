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
    )
}

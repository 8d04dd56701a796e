"""What the simulated chips sense: one room's physical state at an instant."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Environment:
    temperature: float = 21.0  # °C
    humidity: float = 45.0  # %RH
    pressure: float = 1013.25  # hPa
    co2: float = 600.0  # ppm
    illuminance: float = 350.0  # lx
    # An SGP40's raw VOC signal in ticks (datasheet: SRAW_VOC); ~27,000-32,000 in clean air.
    voc_raw: int = 30000
    pm1_0: float = 4.0  # µg/m³, "atmospheric environment" figures of a PMSA003I
    pm2_5: float = 6.0
    pm10: float = 8.0
    voltage: float = 12.0  # V on the metered bus
    current: float = 0.5  # A through the shunt, positive from IN+ to IN-

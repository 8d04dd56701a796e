"""The one place that names every quantity the agent reports: unit, bounds, decimals, and how
Home Assistant shows it.

I2C drivers, Modbus meters, BLE decoders, the MQTT payloads (agent/mqtt/contract.py) and Home
Assistant discovery (agent/central/ha_discovery.py, agent/central/ha_discovery_ble.py) all read this
table, so a quantity cannot be reported in °F by one driver and °C by another, nor get one device
class for an I2C chip and another for a BLE tag. A new quantity is one row here.

Device classes and state classes are Home Assistant's (developers.home-assistant.io, "Sensor
entity" and "Binary sensor entity"; sensor/const.py DEVICE_CLASS_UNITS for the units each
class accepts). No row sets an icon: HA picks one from the device class, and the rows without
a class (indices, counts) have no better one to offer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Union


class Unit(str, enum.Enum):
    CELSIUS = "°C"
    PERCENT_RH = "%"
    PERCENT = "%"  # the same symbol: a battery's charge, a soil's moisture
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
    CUBIC_METRE = "m³"
    LITRE = "L"
    CUBIC_METRE_PER_HOUR = "m³/h"
    METRE = "m"
    MILLIMETRE = "mm"
    SECOND = "s"
    METRE_PER_SECOND = "m/s"
    METRE_PER_SECOND_SQUARED = "m/s²"
    DEGREE = "°"
    DEGREE_PER_SECOND = "°/s"
    RPM = "rpm"
    MICROSIEMENS_PER_CM = "µS/cm"
    DBM = "dBm"
    NONE = ""  # an index on a scale of its own (Sensirion's VOC index: 1..500, 100 = typical)


@dataclass(frozen=True)
class Entity:
    """How Home Assistant shows a quantity."""

    device_class: Optional[str] = None  # HA's sensor or binary_sensor device class
    label: Optional[str] = None  # what the entity is called after its device; None: the name
    state_class: str = "measurement"  # or total_increasing: a counter that only grows
    binary: bool = False  # a binary_sensor (a state that is on or off), else a sensor
    shown: bool = True  # False: an identity or the radio's own counter, not worth an entity


@dataclass(frozen=True)
class Quantity:
    """A measured quantity: what a driver, a meter or a BLE decoder may report as a number."""

    name: str
    unit: Unit
    # Physically plausible bounds for a room sensor: a value outside them is a fault, not weather.
    minimum: float
    maximum: float
    # Decimal places worth publishing; more is noise from the compensation arithmetic.
    decimals: int
    ha: Entity
    # An energy meter can report it (the modbus_generic driver's registers may name it).
    meter: bool = False

    @property
    def total_increasing(self) -> bool:
        return self.ha.state_class == "total_increasing"


@dataclass(frozen=True)
class Reported:
    """A value only BLE decoders return (a tag's battery, a BTHome state, a beacon's id): its
    unit and entity, but no bounds nor decimals (it is published as decoded)."""

    name: str
    unit: Unit
    ha: Entity = Entity()


def _q(name: str, unit: Unit, lo: float, hi: float, decimals: int, device_class: Optional[str],
       label: str, meter: bool = False, total: bool = False) -> Quantity:  # fmt: skip
    state_class = "total_increasing" if total else "measurement"
    return Quantity(name, unit, lo, hi, decimals, Entity(device_class, label, state_class), meter)


def _number(name: str, unit: Unit, device_class: Optional[str] = None,
            label: Optional[str] = None, total: bool = False) -> Reported:  # fmt: skip
    state_class = "total_increasing" if total else "measurement"
    return Reported(name, unit, Entity(device_class, label, state_class))


def _binary(name: str, device_class: Optional[str]) -> Reported:
    # BTHome's binary names; HA's meaning of "on" for each class agrees with BTHome's.
    return Reported(name, Unit.NONE, Entity(device_class, binary=True))


def _hidden(name: str, unit: Unit = Unit.NONE) -> Reported:
    return Reported(name, unit, Entity(shown=False))


MEASURED: tuple[Quantity, ...] = (
    _q("temperature", Unit.CELSIUS, -40.0, 85.0, 2, "temperature", "temperature"),
    _q("humidity", Unit.PERCENT_RH, 0.0, 100.0, 2, "humidity", "humidity"),
    _q("pressure", Unit.HECTOPASCAL, 300.0, 1100.0, 2, "atmospheric_pressure", "pressure"),
    _q("co2", Unit.PPM, 0.0, 40000.0, 0, "carbon_dioxide", "CO2"),
    _q("illuminance", Unit.LUX, 0.0, 200000.0, 1, "illuminance", "illuminance"),
    # HA's VOC classes are concentrations (µg/m³, ppb); Sensirion's index is neither.
    _q("voc_index", Unit.NONE, 0.0, 500.0, 0, None, "VOC index"),
    # Sensirion's NOx index: 1..500, 1 = typical; Ruuvi Air sends 0..500. HA's nitrogen
    # classes are concentrations too.
    _q("nox_index", Unit.NONE, 0.0, 500.0, 0, None, "NOx index"),
    _q("pm1_0", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0, "pm1", "PM1"),
    _q("pm2_5", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0, "pm25", "PM2.5"),
    # No PM4 device class in the HA releases we support (2025.4).
    _q("pm4_0", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0, None, "PM4"),
    _q("pm10", Unit.MICROGRAMS_PER_M3, 0.0, 1000.0, 0, "pm10", "PM10"),
    # A metered circuit: an INA219/INA226 on a DC supply, or a mains energy meter (230/400 V,
    # up to a CT meter's feeder); current may flow either way.
    _q("voltage", Unit.VOLT, 0.0, 1000.0, 3, "voltage", "voltage", meter=True),
    _q("current", Unit.AMPERE, -6000.0, 6000.0, 4, "current", "current", meter=True),
    _q("power", Unit.WATT, -4.0e6, 4.0e6, 3, "power", "power", meter=True),
    # Energy meters (Modbus): signed power factor (Eastron: negative for reverse current).
    _q("power_factor", Unit.NONE, -1.0, 1.0, 3, "power_factor", "power factor", meter=True),
    _q("frequency", Unit.HERTZ, 40.0, 70.0, 2, "frequency", "frequency", meter=True),
    # The Energy dashboard takes energy sensors, total_increasing, in kWh.
    _q(
        "energy_import",
        Unit.KILOWATT_HOUR,
        0.0,
        1.0e9,
        3,
        "energy",
        "energy imported",
        meter=True,
        total=True,
    ),
    _q(
        "energy_export",
        Unit.KILOWATT_HOUR,
        0.0,
        1.0e9,
        3,
        "energy",
        "energy exported",
        meter=True,
        total=True,
    ),
    # Emissions of a meter's imported energy at the grid's factor ([energy] grid_factor).
    _q("co2e", Unit.KILOGRAM, 0.0, 1.0e9, 3, None, "CO2e", total=True),
    *(
        _q(f"{name}_l{phase}", unit, lo, hi, decimals, name, f"{label} L{phase}", meter=True)
        for name, label, unit, lo, hi, decimals in (
            ("voltage", "voltage", Unit.VOLT, 0.0, 1000.0, 2),
            ("current", "current", Unit.AMPERE, -6000.0, 6000.0, 3),
            ("power", "power", Unit.WATT, -4.0e6, 4.0e6, 1),
            ("power_factor", "power factor", Unit.NONE, -1.0, 1.0, 3),
        )
        for phase in (1, 2, 3)
    ),
)

BLE_ONLY: tuple[Reported, ...] = (
    # measurements
    _number("battery", Unit.PERCENT, "battery"),
    _number("dew_point", Unit.CELSIUS, "temperature", "dew point"),
    _number("moisture", Unit.PERCENT, "moisture"),
    _number("tvoc", Unit.MICROGRAMS_PER_M3, "volatile_organic_compounds", "TVOC"),
    _number("mass", Unit.KILOGRAM, "weight", "mass"),
    # meter readings only ever grow
    _number("energy", Unit.KILOWATT_HOUR, "energy", total=True),
    _number("gas", Unit.CUBIC_METRE, "gas", total=True),
    _number("water", Unit.LITRE, "water", total=True),
    _number("volume", Unit.LITRE, "volume", total=True),
    _number("volume_storage", Unit.LITRE, "volume_storage", "stored volume"),
    _number("volume_flow_rate", Unit.CUBIC_METRE_PER_HOUR, "volume_flow_rate", "flow"),
    _number("distance", Unit.METRE, "distance"),
    _number("duration", Unit.SECOND, "duration"),
    _number("speed", Unit.METRE_PER_SECOND, "speed"),
    _number("acceleration", Unit.METRE_PER_SECOND_SQUARED),
    _number("acceleration_x", Unit.METRE_PER_SECOND_SQUARED),
    _number("acceleration_y", Unit.METRE_PER_SECOND_SQUARED),
    _number("acceleration_z", Unit.METRE_PER_SECOND_SQUARED),
    _number("gyroscope", Unit.DEGREE_PER_SECOND),
    _number("rotation", Unit.DEGREE),
    _number("direction", Unit.DEGREE),
    _number("precipitation", Unit.MILLIMETRE, "precipitation"),
    _number("rotational_speed", Unit.RPM),
    _number("conductivity", Unit.MICROSIEMENS_PER_CM, "conductivity"),
    _number("uv_index", Unit.NONE),
    _number("light_level", Unit.NONE),  # 0 dark, 1 twilight, 2 bright
    # events (str), and a dimmer's steps (int)
    _number("button", Unit.NONE),
    _number("dimmer", Unit.NONE),
    _number("dimmer_steps", Unit.NONE),
    _number("command", Unit.NONE),
    # not worth an entity: identities, calibration, counters of the radio itself
    _hidden("tx_power", Unit.DBM),
    _hidden("uptime", Unit.SECOND),
    _hidden("timestamp", Unit.SECOND),  # since 1970-01-01 UTC
    *(
        _hidden(name)
        for name in (
            "count",
            "movement_counter",
            "adv_count",
            "channel",
            "settings_revision",
            "device_type_id",
            "firmware_version",
            "text",
            "raw",
            "uuid",
            "major",
            "minor",
            "namespace",
            "instance",
            "url",
            "command_steps",
        )
    ),
    # states (bool): BTHome's names -> HA binary sensor device class
    *(
        _binary(name, device_class)
        for name, device_class in (
            ("generic_boolean", None),
            ("power_on", "power"),
            ("opening", "opening"),
            ("battery_low", "battery"),
            ("battery_charging", "battery_charging"),
            ("carbon_monoxide", "carbon_monoxide"),
            ("cold", "cold"),
            ("connectivity", "connectivity"),
            ("door", "door"),
            ("garage_door", "garage_door"),
            ("gas_detected", "gas"),
            ("heat", "heat"),
            ("light", "light"),
            ("unlocked", "lock"),
            ("wet", "moisture"),
            ("motion", "motion"),
            ("moving", "moving"),
            ("occupancy", "occupancy"),
            ("plug", "plug"),
            ("presence", "presence"),
            ("problem", "problem"),
            ("running", "running"),
            ("safety", "safety"),
            ("smoke", "smoke"),
            ("sound", "sound"),
            ("tamper", "tamper"),
            ("vibration", "vibration"),
            ("window", "window"),
            ("reed_switch", "opening"),
            ("trigger_output", None),
            ("calibrating", None),  # Ruuvi Air: sensors still calibrating, values less accurate
        )
    ),
)

# The table: every name any driver, meter or decoder reports.
_ROWS: tuple[Union[Quantity, Reported], ...] = (*MEASURED, *BLE_ONLY)
TABLE: dict[str, Union[Quantity, Reported]] = {q.name: q for q in _ROWS}
# The measured rows of that table (bounds and decimals known), for drivers and payloads.
QUANTITIES: dict[str, Quantity] = {q.name: q for q in MEASURED}
assert len(TABLE) == len(MEASURED) + len(BLE_ONLY), "a name is in the table twice"


def label_of(name: str) -> str:
    """What a quantity's entity is called after its device ("CO2", "dew point")."""
    row = TABLE.get(name)
    return row.ha.label if row is not None and row.ha.label else name.replace("_", " ")

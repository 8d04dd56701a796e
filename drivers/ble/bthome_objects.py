"""The BTHome v2 object table: object id -> how to read it and what to call it.

Source: bthome.io "BTHome v2 format" page (home-assistant/bthome.io src/format.html) at commit
0cf388b of 2026-04-30: sensor, binary sensor, event and device-information tables, including
the later additions 0x5E direction, 0x5F precipitation (factor 0.1 since bthome.io PR #58,
May 2025), 0x60 channel, 0x61 rotational speed, 0x62/0x63 signed speed and acceleration,
0x64 light level (PR #71), 0x65 settings revision (PR #73, 2026-04-29) and the 0x3B command
event (PR #74/#75, 2026-04-30). Every id was checked against the reference parser
bthome-ble's const.py (3.20.0, February 2026, which ends at 0x64).

One vendor extension: Shelly's BLU buttons send button event 0xFE for a held button
(shelly-api-docs.shelly.cloud, docs-ble "Shelly BLU Button", "Button press events"), where the
spec has 0x80 hold_press; both are reported as "hold_press".

Names and units are ours (docs/ble.md), shared with the other decoders and the I2C drivers:
where BTHome has one property in several units we convert to one (mass lb -> kg, distance
mm -> m, volume mL -> L). Binary sensors whose BTHome name is also a sensor's get a name that
says what True means ("battery_low", "power_on", "wet", "gas_detected"); "unlocked" is
BTHome's "lock", whose 1 means unlocked.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.Enum):
    NUMBER = "number"  # float in our unit: raw * factor * scale, rounded to `decimals`
    INTEGER = "integer"  # int, as sent (counts, ids, enumerations, epoch seconds)
    BINARY = "binary"  # bool: 1 = True, 0 = False
    TEXT = "text"  # length byte, then UTF-8
    RAW = "raw"  # length byte, then bytes, reported as a hex string
    BUTTON = "button"  # event: one byte, the event id
    DIMMER = "dimmer"  # event: event id, then a number of steps
    COMMAND = "command"  # event: argument length (low 5 bits), opcode, arguments
    FIRMWARE = "firmware"  # version bytes, least significant part first
    PACKET_ID = "packet_id"  # not a value: DecodedFrame.packet_id


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    size: int  # bytes after the object id; for TEXT and RAW the length byte says
    kind: Kind = Kind.NUMBER
    signed: bool = False
    factor: float = 1.0
    decimals: int = 0


def _n(name: str, size: int, factor: float = 1.0, decimals: int = 0) -> ObjectSpec:
    return ObjectSpec(name, size, Kind.NUMBER, False, factor, decimals)


def _s(name: str, size: int, factor: float = 1.0, decimals: int = 0) -> ObjectSpec:
    return ObjectSpec(name, size, Kind.NUMBER, True, factor, decimals)


def _i(name: str, size: int, signed: bool = False) -> ObjectSpec:
    return ObjectSpec(name, size, Kind.INTEGER, signed)


def _b(name: str) -> ObjectSpec:
    return ObjectSpec(name, 1, Kind.BINARY)


_LB_TO_KG = 0.45359237  # exact, by the international yard and pound agreement (1959)

OBJECTS: dict[int, ObjectSpec] = {
    0x00: ObjectSpec("packet_id", 1, Kind.PACKET_ID),
    0x01: _n("battery", 1),  # %
    0x02: _s("temperature", 2, 0.01, 2),  # °C
    0x03: _n("humidity", 2, 0.01, 2),  # %
    0x04: _n("pressure", 3, 0.01, 2),  # hPa
    0x05: _n("illuminance", 3, 0.01, 2),  # lx
    0x06: _n("mass", 2, 0.01, 2),  # kg
    0x07: _n("mass", 2, 0.01 * _LB_TO_KG, 4),  # sent in lb
    0x08: _s("dew_point", 2, 0.01, 2),  # °C
    0x09: _i("count", 1),
    0x0A: _n("energy", 3, 0.001, 3),  # kWh
    0x0B: _n("power", 3, 0.01, 2),  # W
    0x0C: _n("voltage", 2, 0.001, 3),  # V
    0x0D: _n("pm2_5", 2),  # µg/m³
    0x0E: _n("pm10", 2),  # µg/m³
    0x0F: _b("generic_boolean"),
    0x10: _b("power_on"),
    0x11: _b("opening"),
    0x12: _n("co2", 2),  # ppm
    0x13: _n("tvoc", 2),  # µg/m³
    0x14: _n("moisture", 2, 0.01, 2),  # %
    0x15: _b("battery_low"),
    0x16: _b("battery_charging"),
    0x17: _b("carbon_monoxide"),
    0x18: _b("cold"),
    0x19: _b("connectivity"),
    0x1A: _b("door"),
    0x1B: _b("garage_door"),
    0x1C: _b("gas_detected"),
    0x1D: _b("heat"),
    0x1E: _b("light"),
    0x1F: _b("unlocked"),
    0x20: _b("wet"),
    0x21: _b("motion"),
    0x22: _b("moving"),
    0x23: _b("occupancy"),
    0x24: _b("plug"),
    0x25: _b("presence"),
    0x26: _b("problem"),
    0x27: _b("running"),
    0x28: _b("safety"),
    0x29: _b("smoke"),
    0x2A: _b("sound"),
    0x2B: _b("tamper"),
    0x2C: _b("vibration"),
    0x2D: _b("window"),
    0x2E: _n("humidity", 1),  # %
    0x2F: _n("moisture", 1),  # %
    0x3A: ObjectSpec("button", 1, Kind.BUTTON),
    0x3B: ObjectSpec("command", 0, Kind.COMMAND),
    0x3C: ObjectSpec("dimmer", 2, Kind.DIMMER),
    0x3D: _i("count", 2),
    0x3E: _i("count", 4),
    0x3F: _s("rotation", 2, 0.1, 1),  # °
    0x40: _n("distance", 2, 0.001, 3),  # sent in mm
    0x41: _n("distance", 2, 0.1, 1),  # m
    0x42: _n("duration", 3, 0.001, 3),  # s
    0x43: _n("current", 2, 0.001, 3),  # A
    0x44: _n("speed", 2, 0.01, 2),  # m/s
    0x45: _s("temperature", 2, 0.1, 1),  # °C
    0x46: _n("uv_index", 1, 0.1, 1),
    0x47: _n("volume", 2, 0.1, 1),  # L
    0x48: _n("volume", 2, 0.001, 3),  # sent in mL
    0x49: _n("volume_flow_rate", 2, 0.001, 3),  # m³/h
    0x4A: _n("voltage", 2, 0.1, 1),  # V
    0x4B: _n("gas", 3, 0.001, 3),  # m³
    0x4C: _n("gas", 4, 0.001, 3),  # m³
    0x4D: _n("energy", 4, 0.001, 3),  # kWh
    0x4E: _n("volume", 4, 0.001, 3),  # L
    0x4F: _n("water", 4, 0.001, 3),  # L
    0x50: _i("timestamp", 4),  # seconds since 1970-01-01 UTC
    0x51: _n("acceleration", 2, 0.001, 3),  # m/s²
    0x52: _n("gyroscope", 2, 0.001, 3),  # °/s
    0x53: ObjectSpec("text", 0, Kind.TEXT),
    0x54: ObjectSpec("raw", 0, Kind.RAW),
    0x55: _n("volume_storage", 4, 0.001, 3),  # L
    0x56: _n("conductivity", 2),  # µS/cm
    0x57: _s("temperature", 1),  # °C
    0x58: _s("temperature", 1, 0.35, 2),  # °C
    0x59: _i("count", 1, signed=True),
    0x5A: _i("count", 2, signed=True),
    0x5B: _i("count", 4, signed=True),
    0x5C: _s("power", 4, 0.01, 2),  # W
    0x5D: _s("current", 2, 0.001, 3),  # A
    0x5E: _n("direction", 2, 0.01, 2),  # °
    0x5F: _n("precipitation", 2, 0.1, 1),  # mm
    0x60: _i("channel", 1),
    0x61: _n("rotational_speed", 2),  # rpm
    0x62: _s("speed", 4, 0.000001, 6),  # m/s
    0x63: _s("acceleration", 4, 0.000001, 6),  # m/s²
    0x64: _i("light_level", 1),  # 0 dark, 1 twilight, 2 bright
    0x65: _i("settings_revision", 1),
    0xF0: _i("device_type_id", 2),
    0xF1: ObjectSpec("firmware_version", 4, Kind.FIRMWARE),
    0xF2: ObjectSpec("firmware_version", 3, Kind.FIRMWARE),
}

# Event ids (bthome.io "Events" table). 0x00 is "no event": it keeps the numbering of a
# device's buttons (3A00 3A01 is a press of the second button) and reports nothing.
BUTTON_EVENTS: dict[int, str] = {
    0x01: "press",
    0x02: "double_press",
    0x03: "triple_press",
    0x04: "long_press",
    0x05: "long_double_press",
    0x06: "long_triple_press",
    0x80: "hold_press",
    0xFE: "hold_press",  # Shelly BLU vendor extension (module docstring)
}
DIMMER_EVENTS: dict[int, str] = {
    0x01: "rotate_left",
    0x02: "rotate_right",
}
# Command opcodes (bthome.io "Events" table, object 0x3B). Step up/down carry the number of
# steps in their one argument byte; other arguments are opcode- and vendor-specific.
COMMAND_OPCODES: dict[int, str] = {
    0x00: "off",
    0x01: "on",
    0x02: "toggle",
    0x03: "step_up",
    0x04: "step_down",
}
STEPPED_COMMANDS = frozenset({0x03, 0x04})
COMMAND_LENGTH_MASK = 0x1F  # low 5 bits: argument length; high 3 reserved

"""Eastron SDM120-Modbus: single-phase DIN-rail meter (also SDM120M, SDM230 share this map).

Register map from Eastron's "SDM120-Modbus user manual", part "Modbus protocol" (input registers,
function 04: every parameter an IEEE 754 float in two registers, high word first), addresses
cross-checked against the SDM230 table published by lamaplc.com and the SDM72D-M manual V1.5
(B+G e-tech), which share the low part of the map. Manual register 30001 is protocol address 0.
Factory settings (same manual, "Set-up"): unit id 1, 2400 baud, no parity, 1 stop bit.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.modbus_map import Field
from drivers.modbus_meter import ModbusMeter, SerialSettings, measured

VOLTAGE = 0x0000  # 30001 line to neutral volts, V
CURRENT = 0x0006  # 30007 current, A
ACTIVE_POWER = 0x000C  # 30013 active power, W
POWER_FACTOR = 0x001E  # 30031 power factor
FREQUENCY = 0x0046  # 30071 frequency, Hz
IMPORT_ENERGY = 0x0048  # 30073 import active energy, kWh
EXPORT_ENERGY = 0x004A  # 30075 export active energy, kWh

FIELDS = (
    Field("voltage", VOLTAGE),
    Field("current", CURRENT),
    Field("power", ACTIVE_POWER),
    Field("power_factor", POWER_FACTOR),
    Field("frequency", FREQUENCY),
    Field("energy_import", IMPORT_ENERGY),
    Field("energy_export", EXPORT_ENERGY),
)


class SDM120(ModbusMeter):
    name: ClassVar[str] = "sdm120"
    label: ClassVar[str] = "Eastron SDM120"
    fields: ClassVar[tuple[Field, ...]] = FIELDS
    quantities: ClassVar[tuple[str, ...]] = measured(FIELDS)
    # "Each request for data must be restricted to 30 parameters or less" (Eastron manuals).
    max_registers: ClassVar[int] = 60
    factory_serial: ClassVar[SerialSettings] = SerialSettings(2400, "N", 1)
    vendor_document: ClassVar[str] = "Eastron SDM120-Modbus user manual, Modbus protocol part"

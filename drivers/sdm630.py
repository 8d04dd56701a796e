"""Eastron SDM630-Modbus (V2): three-phase DIN-rail meter, per-phase and system values.

Register map from Eastron's "SDM630 Modbus Protocol" (input registers, function 04, IEEE 754
floats high word first), checked against the SDM630MCT protocol V1.7 table (racksync.com
appendix) and the SDM72D-M manual V1.5, which share these addresses. Manual register 30001 is
protocol address 0. Factory settings: unit id 1, 9600 baud, no parity, 1 stop bit.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.modbus_map import Field
from drivers.modbus_meter import ModbusMeter, SerialSettings, measured

PHASE_VOLTAGE = (0x0000, 0x0002, 0x0004)  # 30001/3/5 phase line to neutral volts, V
PHASE_CURRENT = (0x0006, 0x0008, 0x000A)  # 30007/9/11 phase current, A
PHASE_POWER = (0x000C, 0x000E, 0x0010)  # 30013/15/17 phase active power, W
PHASE_POWER_FACTOR = (0x001E, 0x0020, 0x0022)  # 30031/33/35 phase power factor
SUM_OF_CURRENTS = 0x0030  # 30049 sum of line currents, A
TOTAL_POWER = 0x0034  # 30053 total system power, W
TOTAL_POWER_FACTOR = 0x003E  # 30063 total system power factor
FREQUENCY = 0x0046  # 30071 frequency of supply voltages, Hz
IMPORT_ENERGY = 0x0048  # 30073 total import kWh
EXPORT_ENERGY = 0x004A  # 30075 total export kWh

FIELDS = (
    *(Field(f"voltage_l{n}", a) for n, a in enumerate(PHASE_VOLTAGE, 1)),
    *(Field(f"current_l{n}", a) for n, a in enumerate(PHASE_CURRENT, 1)),
    *(Field(f"power_l{n}", a) for n, a in enumerate(PHASE_POWER, 1)),
    *(Field(f"power_factor_l{n}", a) for n, a in enumerate(PHASE_POWER_FACTOR, 1)),
    Field("current", SUM_OF_CURRENTS),
    Field("power", TOTAL_POWER),
    Field("power_factor", TOTAL_POWER_FACTOR),
    Field("frequency", FREQUENCY),
    Field("energy_import", IMPORT_ENERGY),
    Field("energy_export", EXPORT_ENERGY),
)


class SDM630(ModbusMeter):
    name: ClassVar[str] = "sdm630"
    label: ClassVar[str] = "Eastron SDM630"
    fields: ClassVar[tuple[Field, ...]] = FIELDS
    quantities: ClassVar[tuple[str, ...]] = measured(FIELDS)
    max_registers: ClassVar[int] = 60  # 30 parameters per request (Eastron)
    factory_serial: ClassVar[SerialSettings] = SerialSettings(9600, "N", 1)
    vendor_document: ClassVar[str] = "Eastron SDM630 Modbus Protocol (V2 meters)"

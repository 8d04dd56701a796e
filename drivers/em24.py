"""Carlo Gavazzi EM24 DIN: three-phase meter, RS-485 (EM24DINAV9...) or Ethernet (...XE1...).

Register map from Carlo Gavazzi's "EM24 DIN communication protocol" (version 2): INT32 values
with the least significant word first, weights V x10, A x1000, W x10, kWh x10, Hz x10 (UINT16);
both function 03 and 04 read the same map. Addresses and weights cross-checked against Victron's
dbus-modbus-client (carlo_gavazzi.py, EM24_Meter), which reads these meters in the field, and
so is the model code register (0x000B, 1648..1653 for the EM24DIN Ethernet variants).
Factory settings of the RS-485 variants: unit id 1, 9600 baud, no parity, 1 stop bit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import DriverError, Sleep
from drivers.modbus_map import READ_HOLDING, Field
from drivers.modbus_meter import ModbusMeter, SerialSettings, measured

PHASE_VOLTAGE = (0x0000, 0x0002, 0x0004)  # V L1-N, L2-N, L3-N, INT32 x10
MODEL_CODE = 0x000B  # UINT16 Carlo Gavazzi identification code
PHASE_CURRENT = (0x000C, 0x000E, 0x0010)  # A L1..L3, INT32 x1000
PHASE_POWER = (0x0012, 0x0014, 0x0016)  # W L1..L3, INT32 x10
TOTAL_POWER = 0x0028  # W sys, INT32 x10
FREQUENCY = 0x0033  # Hz, UINT16 x10
IMPORT_ENERGY = 0x0034  # kWh (+) TOT, INT32 x10
EXPORT_ENERGY = 0x004E  # kWh (-) TOT, INT32 x10
MODELS = {
    1648: "EM24DINAV23XE1X",
    1649: "EM24DINAV23XE1PFA",
    1650: "EM24DINAV23XE1PFB",
    1651: "EM24DINAV53XE1X",
    1652: "EM24DINAV53XE1PFA",
    1653: "EM24DINAV53XE1PFB",
}


def _int32(quantity: str, address: int, scale: float) -> Field:
    return Field(quantity, address, "int32", scale, "little", READ_HOLDING)


FIELDS = (
    *(_int32(f"voltage_l{n}", a, 0.1) for n, a in enumerate(PHASE_VOLTAGE, 1)),
    *(_int32(f"current_l{n}", a, 0.001) for n, a in enumerate(PHASE_CURRENT, 1)),
    *(_int32(f"power_l{n}", a, 0.1) for n, a in enumerate(PHASE_POWER, 1)),
    _int32("power", TOTAL_POWER, 0.1),
    Field("frequency", FREQUENCY, "uint16", 0.1, "big", READ_HOLDING),
    _int32("energy_import", IMPORT_ENERGY, 0.1),
    _int32("energy_export", EXPORT_ENERGY, 0.1),
)


class EM24(ModbusMeter):
    name: ClassVar[str] = "em24"
    label: ClassVar[str] = "Carlo Gavazzi EM24"
    fields: ClassVar[tuple[Field, ...]] = FIELDS
    quantities: ClassVar[tuple[str, ...]] = measured(FIELDS)
    max_registers: ClassVar[int] = 50  # Carlo Gavazzi: at most 50 words per read
    factory_serial: ClassVar[SerialSettings] = SerialSettings(9600, "N", 1)
    vendor_document: ClassVar[str] = "Carlo Gavazzi EM24 DIN communication protocol, version 2"
    simulated_extra: ClassVar[Mapping[tuple[int, int], int]] = {(READ_HOLDING, MODEL_CODE): 1648}

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        try:
            (code,) = bus.read_registers(address, READ_HOLDING, MODEL_CODE, 1)
        except (DriverError, OSError):
            return None
        model = MODELS.get(code)
        return f"Carlo Gavazzi {model}" if model else None

"""The shape every Modbus meter driver shares: a register map read in blocks, fanned out.

A meter's `bus` is a Modbus line (agent.sensing.modbus.line.ModbusLine, or anything with its
`read_registers(unit, function, address, count)`), its `address` the unit id. The driver does no
I/O of its own beyond those reads, so its decoding is tested with words from the vendor's map.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from drivers.base import Driver, DriverError, Measurement, Sleep
from drivers.modbus_map import MAX_READ_REGISTERS, Block, Field, blocks, decode_block

# Energy counters: published as total_increasing, guarded against going backwards.
COUNTERS = ("energy_import", "energy_export")


@dataclass(frozen=True)
class SerialSettings:
    baudrate: int
    parity: str  # "N", "E" or "O"
    stopbits: int


# Modbus over serial line V1.02, 2.5.1: "the default parity mode must be even parity", and
# 19200 baud is the required default rate (3.3.1). Used for meters whose own default is unknown.
MODBUS_SERIAL_DEFAULT = SerialSettings(19200, "E", 1)


class ModbusMeter(Driver):
    transport: ClassVar[str] = "modbus"
    default_address: ClassVar[int] = 1
    addresses: ClassVar[tuple[int, ...]] = tuple(range(1, 248))  # unit ids a server may take
    fields: ClassVar[tuple[Field, ...]] = ()
    max_registers: ClassVar[int] = MAX_READ_REGISTERS
    # How the meter leaves the factory; a line without its own settings takes these.
    factory_serial: ClassVar[SerialSettings] = MODBUS_SERIAL_DEFAULT
    vendor_document: ClassVar[str] = ""
    # Fixed words a simulated meter of this kind serves besides its map, by (function,
    # address): an id register, so that scan-modbus recognises the simulated meter too.
    simulated_extra: ClassVar[Mapping[tuple[int, int], int]] = {}
    # The circuit's relays (agent.sensing.modbus.energy checks the draw against them) and the draw
    # below which the circuit counts as idle (a contactor coil, a standby supply).
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        "circuit_relays": (list, []),
        "idle_w": (float, 5.0),
    }

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(bus, address, **kwargs)
        self.blocks: tuple[Block, ...] = blocks(self.register_map(), self.max_registers)

    def register_map(self) -> tuple[Field, ...]:
        return self.fields

    @classmethod
    def measured(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        quantities = cls.map_quantities(options)
        return (*quantities, "co2e") if "energy_import" in quantities else quantities

    @classmethod
    def map_quantities(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        return cls.quantities

    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        # A few reads at 2400 baud: ~0.5 s each with the line's timeout on a retry.
        return 2.0

    def open(self) -> None:
        """Nothing to set up on a meter: the first read proves it answers."""

    def read(self) -> Measurement:
        values: dict[str, float] = {}
        for block in self.blocks:
            words = self.bus.read_registers(self.address, block.function, block.address,
                                            block.count)  # fmt: skip
            values.update(decode_block(block, words))
        return Measurement(values)

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        """What scan-modbus shows for a unit that answers: the default reads the first block
        and says whether it decodes; meters with an id register override it."""
        try:
            meter = cls(bus, address)
            meter.read()
        except (DriverError, OSError, ValueError):
            return None
        return cls.name


def measured(fields: tuple[Field, ...]) -> tuple[str, ...]:
    return tuple(f.quantity for f in fields)

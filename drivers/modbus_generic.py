"""A meter we have no module for: its registers are listed in the device's config.

    [[devices]]
    name = "boiler_meter"
    driver = "modbus_generic"
    bus = "rs485"
    address = 7
    interval = 10
    [devices.options]
    word_order = "little"            # default for every register below
    registers = [
      { quantity = "power", address = 0x0028, type = "int32", scale = 0.1, function = 3 },
      { quantity = "energy_import", address = 0x0034, type = "int32", scale = 0.1 },
    ]

Each register names a quantity of the one quantity table, its 0-based address, type (int16,
uint16, int32, uint32, float32, int64, uint64, float64), scale (value = raw x scale), function
(3 holding, 4 input; default 4) and word_order ("big": high word first; "little").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

from drivers.base import Sleep
from drivers.modbus_map import FUNCTIONS, MAX_READ_REGISTERS, TYPES, WORD_ORDERS, Field
from drivers.modbus_meter import ModbusMeter
from drivers.quantities import QUANTITIES

REGISTER_KEYS = ("quantity", "address", "type", "scale", "function", "word_order")


def meter_quantities() -> tuple[str, ...]:
    """Everything a meter can report, for a map given only in the config."""
    return tuple(q for q, spec in QUANTITIES.items() if spec.meter)


class ModbusGeneric(ModbusMeter):
    name: ClassVar[str] = "modbus_generic"
    label: ClassVar[str] = "Modbus meter"
    quantities: ClassVar[tuple[str, ...]] = meter_quantities()
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        **ModbusMeter.options_schema,
        "registers": (list, []),
        "word_order": (str, "big"),
        "max_registers": (int, MAX_READ_REGISTERS),  # some meters refuse long reads
    }

    def __init__(self, bus: Any, address: Optional[int] = None, **kwargs: Any) -> None:
        # The map must be known before the base class groups it into reads.
        self._map = _parse_map(kwargs)
        super().__init__(bus, address, **kwargs)

    @property
    def max_registers(self) -> int:  # type: ignore[override]
        return int(self.options["max_registers"])

    def register_map(self) -> tuple[Field, ...]:
        return self._map

    @classmethod
    def map_quantities(cls, options: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(f.quantity for f in _parse_map(options))

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        return None  # nothing to recognise a meter by without its map


def _parse_map(options: Mapping[str, Any]) -> tuple[Field, ...]:
    registers = options.get("registers", [])
    word_order = options.get("word_order", "big")
    max_registers = options.get("max_registers", MAX_READ_REGISTERS)
    if word_order not in WORD_ORDERS:
        raise ValueError(f"word_order must be 'big' or 'little', got {word_order!r}")
    if not isinstance(max_registers, int) or not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be 1..{MAX_READ_REGISTERS}, got {max_registers!r}")
    if not isinstance(registers, list) or not registers:
        raise ValueError("registers: list at least one { quantity, address, type } table")
    fields = []
    seen: set[str] = set()
    for i, r in enumerate(registers):
        where = f"registers[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where}: must be a table {{ quantity, address, type, ... }}")
        unknown = sorted(set(r) - set(REGISTER_KEYS))
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: unknown key (known: {', '.join(REGISTER_KEYS)})"
            )
        quantity = r.get("quantity")
        if quantity not in QUANTITIES or not QUANTITIES[quantity].meter:
            raise ValueError(
                f"{where}.quantity: must be one of {', '.join(meter_quantities())}, "
                f"got {quantity!r}"
            )
        if quantity in seen:
            raise ValueError(f"{where}.quantity: {quantity!r} is listed twice")
        seen.add(quantity)
        if not isinstance(r.get("address"), int):
            raise ValueError(f"{where}.address: required, an integer (0-based, e.g. 0x0034)")
        kind = r.get("type", "float32")
        if kind not in TYPES:
            raise ValueError(f"{where}.type: must be one of {', '.join(TYPES)}, got {kind!r}")
        function = r.get("function", 4)
        if function not in FUNCTIONS:
            raise ValueError(
                f"{where}.function: must be 3 (holding) or 4 (input), got {function!r}"
            )
        scale = r.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale == 0:
            raise ValueError(f"{where}.scale: must be a non-zero number, got {scale!r}")
        order = r.get("word_order", word_order)
        try:
            fields.append(Field(quantity, r["address"], kind, float(scale), order, function))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    for f in fields:
        if f.size > max_registers:
            raise ValueError(f"max_registers {max_registers} is less than a {f.type}")
    return tuple(fields)

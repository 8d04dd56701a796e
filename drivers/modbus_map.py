"""Register maps of Modbus meters: fields, how they are grouped into reads, how words decode.

Pure: no pymodbus here. A meter driver is a table of `Field`s; `blocks()` groups them into the
fewest reads a meter accepts, and `decode()` turns the 16-bit words a read returned into
numbers. The transport (agent.sensing.modbus.line) only moves words, so the same decoding runs
against an RS-485 line, a TCP gateway or a test's list of words.

Word order: Modbus defines 16-bit registers, big-endian inside each register, and nothing about
values wider than one register. "big" puts the most significant word first (Eastron's floats,
"ABCD"); "little" puts it last (Carlo Gavazzi's INT32, "CDAB").
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drivers.base import DriverError

READ_HOLDING = 3
READ_INPUT = 4
FUNCTIONS = {READ_HOLDING: "holding", READ_INPUT: "input"}
MAX_READ_REGISTERS = 125  # Modbus application protocol V1.1b3, 6.3/6.4: 1 to 125 registers

# type -> (registers, struct format of the big-endian bytes)
TYPES: Mapping[str, tuple[int, str]] = {
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "float32": (2, ">f"),
    "int64": (4, ">q"),
    "uint64": (4, ">Q"),
    "float64": (4, ">d"),
}
WORD_ORDERS = ("big", "little")


class ModbusError(DriverError):
    """A read on a Modbus line failed; the message says what an installer can check."""


class NoAnswer(ModbusError):
    """Nothing came back within the line's timeout (wrong unit id, wiring, baud rate, parity)."""


class ExceptionResponse(ModbusError):
    """The meter answered with a Modbus exception (function code + 0x80)."""

    # Modbus application protocol V1.1b3, section 7.
    MEANINGS: Mapping[int, str] = {
        1: "illegal function",
        2: "illegal data address",
        3: "illegal data value",
        4: "server device failure",
        5: "acknowledge",
        6: "server device busy",
        10: "gateway path unavailable",
        11: "gateway target device failed to respond",
    }

    def __init__(self, unit: int, function: int, address: int, code: int) -> None:
        self.code = code
        meaning = self.MEANINGS.get(code, "unknown exception")
        super().__init__(
            f"unit {unit} answered exception {code} ({meaning}) to function {function} at "
            f"register 0x{address:04x}"
        )


class FrameError(ModbusError):
    """A frame came back damaged (RTU CRC mismatch, short or garbled frame)."""


@dataclass(frozen=True)
class Field:
    """One value in a meter's register map."""

    quantity: str
    address: int  # 0-based protocol address (register 30001 of a manual is address 0)
    type: str = "float32"
    scale: float = 1.0  # value = raw x scale
    word_order: str = "big"
    function: int = READ_INPUT

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"type must be one of {', '.join(TYPES)}, got {self.type!r}")
        if self.word_order not in WORD_ORDERS:
            raise ValueError(f"word_order must be 'big' or 'little', got {self.word_order!r}")
        if self.function not in FUNCTIONS:
            raise ValueError(f"function must be 3 (holding) or 4 (input), got {self.function}")
        if not 0 <= self.address <= 0xFFFF - self.size + 1:
            raise ValueError(f"address must be 0..65535, got {self.address}")

    @property
    def size(self) -> int:
        return TYPES[self.type][0]


@dataclass(frozen=True)
class Block:
    """One read: `count` registers from `address` with one function code."""

    function: int
    address: int
    count: int
    fields: tuple[Field, ...]


def blocks(fields: Sequence[Field], max_count: int = MAX_READ_REGISTERS, max_gap: int = 8) -> \
        tuple[Block, ...]:  # fmt: skip
    """Groups fields into reads: neighbours share a read when the registers skipped between
    them are at most `max_gap` and the read stays within `max_count` registers (the meter's
    limit). On RTU another request costs about 20 characters (8 sent, 5 of overhead back, two
    silent intervals of 3.5) and each register skipped 2: up to 8 skipped is the cheaper."""
    out: list[Block] = []
    for function in sorted({f.function for f in fields}):
        group = sorted((f for f in fields if f.function == function), key=lambda f: f.address)
        current: list[Field] = []
        start = end = 0
        for f in group:
            f_end = f.address + f.size
            if current and f.address - end <= max_gap and f_end - start <= max_count:
                current.append(f)
                end = max(end, f_end)
                continue
            if current:
                out.append(Block(function, start, end - start, tuple(current)))
            current, start, end = [f], f.address, f_end
        if current:
            out.append(Block(function, start, end - start, tuple(current)))
    return tuple(out)


def raw_bytes(field: Field, words: Sequence[int]) -> bytes:
    """The field's bytes, most significant first, from its registers in the meter's order."""
    if len(words) != field.size:
        raise FrameError(f"{field.quantity}: expected {field.size} registers, got {len(words)}")
    ordered = list(words) if field.word_order == "big" else list(reversed(words))
    return b"".join(w.to_bytes(2, "big") for w in ordered)


def decode(field: Field, words: Sequence[int]) -> float:
    """The field's value from its registers. A float that is NaN, infinite or subnormal is an
    error: meters never send those, and a subnormal is what a float with its words swapped
    usually looks like (230.0 V read back to front is about 2.4e-41)."""
    raw = struct.unpack(TYPES[field.type][1], raw_bytes(field, words))[0]
    if field.type.startswith("float"):
        if not math.isfinite(raw):
            raise ModbusError(f"{field.quantity}: register 0x{field.address:04x} holds {raw}")
        if raw != 0.0 and abs(raw) < (1.2e-38 if field.type == "float32" else 2.3e-308):
            raise ModbusError(
                f"{field.quantity}: register 0x{field.address:04x} decodes to {raw:.3g}, a "
                f"subnormal float: the word order is probably wrong (try "
                f"word_order = {'little' if field.word_order == 'big' else 'big'!r})"
            )
    return float(raw) * field.scale


def decode_block(block: Block, words: Sequence[int]) -> dict[str, float]:
    if len(words) != block.count:
        raise FrameError(
            f"read of {block.count} registers at 0x{block.address:04x} returned {len(words)}"
        )
    values = {}
    for f in block.fields:
        offset = f.address - block.address
        values[f.quantity] = decode(f, words[offset : offset + f.size])
    return values

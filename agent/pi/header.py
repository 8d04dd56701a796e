"""The Raspberry Pi's 40-pin GPIO header (J8): which BCM GPIO is on which physical pin.

Every 40-pin model (B+, 2, 3, 4, 5, Zero) has the same header. The table is gpiozero's own
board data for it, not a copy of ours; tests/test_wiring.py checks it against the Raspberry Pi
documentation's pinout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Optional

from agent.common.suggest import hint

# A 40-pin board's revision code for gpiozero's tables (Pi 3 Model B); any 40-pin model would
# give the same J8.
_BOARD = "a02082"
# I2C bus -> (SDA, SCL) GPIOs. Bus 1 is the one on the header for sensors; bus 0 (GPIO 0/1,
# pins 27/28) is reserved for the HAT identification EEPROM.
I2C_BUS_PINS = {1: (2, 3), 0: (0, 1)}
# GPIO 0 and 1 carry the HAT EEPROM's ID_SD and ID_SC: the firmware reads them at boot.
RESERVED = {0: "ID_SD (HAT EEPROM)", 1: "ID_SC (HAT EEPROM)"}
# The boards a node may be (node.board), each with a revision code gpiozero knows, so the
# header's GPIOs come from gpiozero's board data for that very model.
BOARDS = {
    "pi3": ("a02082", "Raspberry Pi 3"),
    "pi4": ("c03111", "Raspberry Pi 4"),
    "pi5": ("c04170", "Raspberry Pi 5"),
    "zero2w": ("902120", "Raspberry Pi Zero 2 W"),
}
# The buses' fixed pins (BCM), from the Raspberry Pi documentation's pinout: a GPIO a bus takes
# cannot also drive a relay or read an input.
BUS_PINS: dict[str, dict[int, str]] = {
    "i2c1": {2: "SDA", 3: "SCL"},
    "uart": {14: "TXD", 15: "RXD"},  # /dev/serial0: the RS-485 HAT of a Modbus RTU meter
    "spi0": {7: "CE1", 8: "CE0", 9: "MISO", 10: "MOSI", 11: "SCLK"},
    "1-wire": {4: "data"},  # the w1-gpio overlay's default pin
}
BUS_NAMES = {"i2c1": "I2C bus 1", "uart": "UART", "spi0": "SPI bus 0", "1-wire": "1-Wire bus"}
# Serial ports wired to the header's UART (GPIO 14/15); a USB adapter takes no header pin.
HEADER_UARTS = ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")


@lru_cache(maxsize=1)
def pins() -> dict[int, str]:
    """Physical pin (1-40) -> its function: "GPIO17", "3V3", "5V" or "GND"."""
    from gpiozero import pi_info

    header = pi_info(_BOARD).headers["J8"]
    return {number: info.name for number, info in sorted(header.pins.items())}


def physical(gpio: int) -> Optional[int]:
    """The physical pin carrying BCM GPIO `gpio`, or None when it is not on the header."""
    for number, name in pins().items():
        if name == f"GPIO{gpio}":
            return number
    return None


def power_pins(kind: str) -> list[int]:
    """The physical pins of one supply: "3V3", "5V" or "GND"."""
    return [number for number, name in pins().items() if name == kind]


def header_gpios(board: Optional[str] = None) -> list[int]:
    """The BCM GPIOs on the 40-pin header of `board` (a BOARDS key; None: any 40-pin Pi)."""
    return list(_gpios(BOARDS[board][0] if board else _BOARD))


@cache
def _gpios(revision: str) -> tuple[int, ...]:
    from gpiozero import pi_info

    names = (p.name for p in pi_info(revision).headers["J8"].pins.values())
    return tuple(sorted(int(n[4:]) for n in names if n.startswith("GPIO")))


# Which pins a config claims -------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One GPIO taken by one part of the config: `key` is its config key path."""

    gpio: int
    key: str
    what: str  # "relay 'heat'", "I2C bus 1 SDA"
    fixed: bool = False  # a bus's own pin: on every 40-pin header, so nothing to look up


def claims(data: Mapping[str, Any]) -> list[Claim]:
    """Every GPIO the node's config (the TOML as loaded, not yet validated) takes: the buses
    its devices use, then relays and inputs. Items of the wrong type are left to the parser."""
    out: list[Claim] = []

    def items(section: str) -> list[tuple[int, Mapping[str, Any]]]:
        value = data.get(section)
        if not isinstance(value, list):
            return []
        return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]

    def bus(name: str, key: str) -> None:
        out.extend(Claim(g, key, f"{BUS_NAMES[name]} {line}", fixed=True)
                   for g, line in BUS_PINS[name].items())  # fmt: skip

    # I2C bus 1 is always kept: it is the sensors' bus, and its pins carry the board's fixed
    # 1.8 kOhm pull-ups, so a relay or input there misbehaves even with no sensor fitted.
    i2c1 = [i for i, d in items("devices") if d.get("bus", 1) == 1]
    bus("i2c1", f"devices[{i2c1[0]}]" if i2c1 else "")
    for i, meter in items("modbus"):  # Modbus RTU (issue 20's [[modbus]]): an RS-485 HAT
        serial = meter.get("serial")
        port = serial.get("port") if isinstance(serial, Mapping) else serial
        if isinstance(port, str) and port in HEADER_UARTS:
            bus("uart", f"modbus[{i}].serial")
            break
    node = data.get("node")
    for name in node.get("buses", []) if isinstance(node, Mapping) else []:
        if isinstance(name, str) and name in BUS_PINS:
            bus(name, "node.buses")
    for section, what in (("relays", "relay"), ("inputs", "input")):
        for i, item in items(section):
            pin = item.get("pin")
            if isinstance(pin, int) and not isinstance(pin, bool):
                out.append(Claim(pin, f"{section}[{i}].pin", f"{what} {item.get('name', i)!r}"))
    return out


def check(found: Iterable[Claim], board: Optional[str] = None) -> list[tuple[str, str]]:
    """(key, problem) for every claim off the board's header, on a reserved pin or on a pin
    something else already took; the first claim of a pin keeps it."""
    found = list(found)
    if all(c.fixed for c in found):
        # Buses alone cannot collide (their pins are apart); and a sensors-only node need not
        # load gpiozero's board tables (over 3 MiB: docs/benchmarks.md, footprint).
        return []
    valid = set(header_gpios(board))
    used = {c.gpio for c in found} | set(RESERVED)
    model = BOARDS[board][1] if board else "Raspberry Pi"
    taken: dict[int, Claim] = {}
    problems: list[tuple[str, str]] = []
    for c in found:
        if c.gpio not in valid:
            problems.append((c.key, f"GPIO {c.gpio} is not on the {model}'s header "
                             f"(BCM GPIO {min(valid)}-{max(valid)})"))  # fmt: skip
        elif c.gpio in RESERVED:
            problems.append((c.key, f"GPIO {c.gpio} is {RESERVED[c.gpio]}, reserved for the "
                             "firmware; choose another GPIO"))  # fmt: skip
        elif c.gpio in taken:
            first = taken[c.gpio]
            if first.key != c.key:
                free = [g for g in sorted(valid) if g not in used]
                where = f" ({first.key})" if first.key else ""
                problems.append((c.key, f"GPIO {c.gpio} is already taken by {first.what}{where};"
                                 f" free GPIOs: {_ranges(free)}"))  # fmt: skip
        else:
            taken[c.gpio] = c
    return problems


def board_problem(name: object) -> Optional[str]:
    if isinstance(name, str) and name in BOARDS:
        return None
    return (f"must be one of {', '.join(map(repr, BOARDS))}, got {name!r}"
            + (hint(name, BOARDS) if isinstance(name, str) else ""))  # fmt: skip


def _ranges(numbers: list[int]) -> str:
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)

"""The Raspberry Pi's 40-pin GPIO header (J8): which BCM GPIO is on which physical pin.

Every 40-pin model (B+, 2, 3, 4, 5, Zero) has the same header. The table is gpiozero's own
board data for it, not a copy of ours; tests/test_wiring.py checks it against the Raspberry Pi
documentation's pinout.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

# A 40-pin board's revision code for gpiozero's tables (Pi 3 Model B); any 40-pin model would
# give the same J8.
_BOARD = "a02082"
# I2C bus -> (SDA, SCL) GPIOs. Bus 1 is the one on the header for sensors; bus 0 (GPIO 0/1,
# pins 27/28) is reserved for the HAT identification EEPROM.
I2C_BUS_PINS = {1: (2, 3), 0: (0, 1)}
# GPIO 0 and 1 carry the HAT EEPROM's ID_SD and ID_SC: the firmware reads them at boot.
RESERVED = {0: "ID_SD (HAT EEPROM)", 1: "ID_SC (HAT EEPROM)"}


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


def header_gpios() -> list[int]:
    return sorted(int(name[4:]) for name in pins().values() if name.startswith("GPIO"))

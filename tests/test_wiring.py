"""Wiring diagrams generated from a room's config, and docs/installing.md kept equal to them.

The header's pin map is checked against the Raspberry Pi documentation's GPIO pinout (the
40-pin header of every model since the B+), typed in here by hand. What a diagram must say for
a small room is worked out by hand from its config, too.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from agent.config import schema as config_mod
from agent.config.schema import Config
from agent.pi import header
from agent.tools import wiring
from tests.conftest import REPO

DOC = REPO / "docs" / "installing.md"
PROFILES = sorted(p for p in (REPO / "firmware_configs").glob("*.toml") if p.name != "demo.toml")

# Physical pin -> function, from the Raspberry Pi documentation's pinout of the 40-pin header.
PINOUT = {
    1: "3V3", 2: "5V", 3: "GPIO2", 4: "5V", 5: "GPIO3", 6: "GND", 7: "GPIO4", 8: "GPIO14",
    9: "GND", 10: "GPIO15", 11: "GPIO17", 12: "GPIO18", 13: "GPIO27", 14: "GND", 15: "GPIO22",
    16: "GPIO23", 17: "3V3", 18: "GPIO24", 19: "GPIO10", 20: "GND", 21: "GPIO9", 22: "GPIO25",
    23: "GPIO11", 24: "GPIO8", 25: "GND", 26: "GPIO7", 27: "GPIO0", 28: "GPIO1", 29: "GPIO5",
    30: "GND", 31: "GPIO6", 32: "GPIO12", 33: "GPIO13", 34: "GND", 35: "GPIO19", 36: "GPIO16",
    37: "GPIO26", 38: "GPIO20", 39: "GND", 40: "GPIO21",
}  # fmt: skip


def test_the_header_is_the_raspberry_pi_pinout() -> None:
    assert header.pins() == PINOUT
    assert header.physical(2) == 3 and header.physical(3) == 5  # I2C1 SDA, SCL
    assert header.physical(28) is None  # not on the header
    assert header.header_gpios() == list(range(28))
    assert header.power_pins("GND") == [6, 9, 14, 20, 25, 30, 34, 39]


def small_room(tmp_path: Path) -> Config:
    path = tmp_path / "small.toml"
    path.write_text(
        textwrap.dedent("""
        [node]
        id = "small"
        [[devices]]
        name = "climate"
        driver = "bme280"
        address = 0x77
        interval = 10
        [[devices]]
        name = "dust"
        driver = "pmsa003i"
        interval = 10
        [[relays]]
        name = "heater"
        pin = 5
        kind = "heat"
        rated_power_w = 1500
        interlock = "hvac"
        [[relays]]
        name = "cooler"
        pin = 6
        kind = "cool"
        interlock = "hvac"
        [[inputs]]
        name = "pir"
        pin = 17
        kind = "motion"
        [[inputs]]
        name = "door"
        pin = 27
        kind = "contact"
    """)
    )
    return config_mod.load(path)


def test_a_small_rooms_tables(tmp_path: Path) -> None:
    text = wiring.render(small_room(tmp_path))
    # GPIO5 is pin 29, GPIO6 pin 31, GPIO17 pin 11, GPIO27 pin 13 (pinout above); relay boards
    # switch on a low input unless active_high; channels are numbered in config order.
    for row in [
        "Relays: a 2-channel relay board (active low: a low pin energises the coil), VCC to 5V "
        "pin 2, GND to pin 39.",
        "| 29 | GPIO5 | IN1 | heater | heat, 1500 W | low | interlock hvac |",
        "| 31 | GPIO6 | IN2 | cooler | cool | low | interlock hvac |",
        # A PIR drives its line (pull-down, active high); a contact closes to GND on the pull-up.
        "| 11 | GPIO17 | pir | motion | PIR OUT to pin 11 (3.3 V output); PIR VCC to 5V pin 4, "
        "GND to pin 14; motion = high |",
        "| 13 | GPIO27 | door | contact | between pin 13 and GND pin 20 (the Pi's pull-up; "
        "closed = low) |",
        "I2C bus 1 (SDA pin 3, SCL pin 5); the sensor boards in parallel, each VIN to 3V3 pin 1 "
        "and GND to pin 9:",
        "| 0x12 | dust | Plantower PMSA003I | pm1_0, pm2_5, pm10; 5 V supply, see Power |",
        "| 0x77 | climate | Bosch BME280 | temperature, humidity, pressure |",
        "| 4 | 5V | dust (Plantower PMSA003I) 5 V supply; PIR VCC (pir) |",
        "| 6 | GND | dust (Plantower PMSA003I) GND |",
        "| 20 | GND | the other leg of door |",
        "| 39 | GND | relay board GND |",
    ]:
        assert row in text.splitlines(), row
    # Addresses in order, under their heading.
    assert text.index("| 0x12 |") < text.index("| 0x77 |")


def test_a_small_rooms_header_drawing(tmp_path: Path) -> None:
    lines = wiring.drawing(small_room(tmp_path)).splitlines()
    assert len(lines) == 20  # pins 1-40, two to a row
    row = {int(m.group(1)): line for line in lines if (m := re.search(r" (\d+) [●○] [●○] ", line))}
    assert sorted(row) == list(range(1, 41, 2))
    # Used pins are filled, with what goes there on their side; unused ones are open.
    assert re.search(r"relay IN1 heater\s+GPIO5 29 ● ○ 30 GND$", row[29])
    assert re.search(r"relay IN2 cooler\s+GPIO6 31 ● ○ 32 GPIO12$", row[31])
    assert re.search(r"I2C bus 1 SDA\s+GPIO2\s+3 ● ● 4\s+5V\s+dust 5V, PIR VCC$", row[3])
    assert re.search(r"PIR pir\s+GPIO17 11 ● ○ 12 GPIO18$", row[11])
    assert re.search(r"contact door\s+GPIO27 13 ● ● 14 GND\s+PIR GND$", row[13])
    assert re.search(r"^\s+GPIO4\s+7 ○ ○ 8\s+GPIO14$", row[7])


def test_a_pin_off_the_header_is_a_config_error_before_any_drawing(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[node]\nid = "x"\n[[relays]]\nname = "r"\npin = 30\n')
    with pytest.raises(config_mod.ConfigError, match=r"relays\[0\]\.pin: GPIO 30 is not on"):
        config_mod.load(path)


def test_the_doc_has_every_profiles_diagram_as_generated() -> None:
    blocks = wiring.blocks(DOC.read_text(encoding="utf-8"))
    assert set(blocks) == {p.stem for p in PROFILES}
    for path in PROFILES:
        expected = wiring.render(config_mod.load(path))
        assert blocks[path.stem] == expected, (
            f"docs/installing.md's diagram for {path.name} is out of date: "
            "run python -m agent.tools.wiring --update docs/installing.md"
        )


def test_update_rewrites_only_the_marked_blocks(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "installing.md"
    doc.parent.mkdir()
    (tmp_path / "firmware_configs").mkdir()
    office = (REPO / "firmware_configs" / "office.toml").read_text()
    (tmp_path / "firmware_configs" / "office.toml").write_text(office)
    doc.write_text(
        "before\n<!-- begin wiring office -->\nstale\n<!-- end wiring office -->\nafter\n"
    )
    assert wiring.main(["--update", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("before\n<!-- begin wiring office -->\n")
    assert text.endswith("<!-- end wiring office -->\nafter\n") and "stale" not in text
    assert wiring.blocks(text)["office"] == wiring.render(
        config_mod.load(REPO / "firmware_configs" / "office.toml")
    )

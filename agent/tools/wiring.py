"""A room's wiring diagram, generated from its config: which GPIO goes to which relay or input,
which chip sits at which I2C address, and where each board takes its power.

    python -m agent.tools.wiring firmware_configs/office.toml        # print one room's diagram
    python -m agent.tools.wiring --update docs/installing.md         # regenerate the doc's diagrams

docs/installing.md holds one diagram per profile between `<!-- begin wiring NAME -->` and
`<!-- end wiring NAME -->` (NAME.toml in firmware_configs/); tests/test_wiring.py regenerates
them and fails when the doc has drifted from the profiles.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from agent.config.schema import Config, DeviceConfig
from agent.pi import header
from drivers import DRIVERS

if TYPE_CHECKING:
    from agent.config.inputs import InputConfig
    from agent.config.relays import RelayConfig

INPUT_KINDS = {"motion": "PIR", "button": "button", "switch": "switch", "contact": "contact"}


@dataclass(frozen=True)
class Supply:
    """A power or ground pin, and what it feeds."""

    pin: int
    rail: str  # "3V3", "5V", "GND"
    feeds: str  # in full, for the power table
    label: str  # in short, for the header drawing


# Fixed power pins, chosen near what they feed: sensors by the I2C pins (1, 9), the relay
# board's supply at the top and its ground by its inputs at the bottom (2, 39), PIRs beside
# their inputs (4, 14), one common return for buttons and contacts (20).
SENSOR_VIN, SENSOR_GND = 1, 9
RELAY_VCC, RELAY_GND = 2, 39
FIVE_VOLT_VCC, FIVE_VOLT_GND = 4, 6
PIR_VCC, PIR_GND = 4, 14
SWITCH_GND, SWITCH_3V3 = 20, 17


def _rail(pin: int) -> str:
    rail = header.pins()[pin]
    assert rail in ("3V3", "5V", "GND"), f"pin {pin} is {rail}, not a supply"
    return rail


def _pin(gpio: int) -> int:
    physical = header.physical(gpio)
    if physical is None:
        raise ValueError(f"GPIO {gpio} is not on the 40-pin header")
    return physical


def _board_size(channels: int) -> int:
    return next((size for size in (1, 2, 4, 8, 16) if size >= channels), channels)


def supplies(cfg: Config) -> list[Supply]:
    feeds: dict[int, list[tuple[str, str]]] = {}

    def add(pin: int, short: str, full: str) -> None:
        feeds.setdefault(pin, []).append((short, full))

    c = cfg.control
    if any(isinstance(d.bus, int) for d in cfg.devices):  # meters are powered from mains
        add(SENSOR_VIN, "sensors VIN", "VIN of every I2C sensor board")
        add(SENSOR_GND, "sensors GND", "GND of every I2C sensor board")
    for d in cfg.devices:
        chip = DRIVERS[d.driver]
        if chip.five_volt:
            add(FIVE_VOLT_VCC, f"{d.name} 5V", f"{d.name} ({chip.label}) 5 V supply")
            add(FIVE_VOLT_GND, f"{d.name} GND", f"{d.name} ({chip.label}) GND")
    if c.relays:
        add(RELAY_VCC, "relay board VCC", "relay board VCC")
        add(RELAY_GND, "relay board GND", "relay board GND")
    pirs = ", ".join(i.name for i in c.inputs if i.kind == "motion")
    if pirs:
        add(PIR_VCC, "PIR VCC", f"PIR VCC ({pirs})")
        add(PIR_GND, "PIR GND", f"PIR GND ({pirs})")
    to_ground = ", ".join(i.name for i in c.inputs if i.kind != "motion" and i.pull_up)
    to_3v3 = ", ".join(i.name for i in c.inputs if i.kind != "motion" and not i.pull_up)
    if to_ground:
        add(SWITCH_GND, "buttons, contacts", f"the other leg of {to_ground}")
    if to_3v3:
        add(SWITCH_3V3, "buttons, contacts", f"the other leg of {to_3v3}")
    return [
        Supply(pin, _rail(pin), "; ".join(f for _, f in what), ", ".join(s for s, _ in what))
        for pin, what in sorted(feeds.items())
    ]


def _labels(cfg: Config) -> dict[int, str]:
    """Physical pin -> a short label for the header drawing."""
    labels: dict[int, str] = {}
    for bus in sorted({d.bus for d in cfg.devices if isinstance(d.bus, int)}):
        for gpio, line in zip(header.I2C_BUS_PINS.get(bus, ()), ("SDA", "SCL")):
            labels[_pin(gpio)] = f"I2C bus {bus} {line}"
    for k, r in enumerate(cfg.control.relays, start=1):
        labels[_pin(r.pin)] = f"relay IN{k} {r.name}"
    for i in cfg.control.inputs:
        labels[_pin(i.pin)] = f"{INPUT_KINDS[i.kind]} {i.name}"
    for s in supplies(cfg):
        labels[s.pin] = s.label
    return labels


def drawing(cfg: Config) -> str:
    """The 40-pin header as the Raspberry Pi pinout shows it: odd pins left, even pins right,
    pin 1 at the top; ● marks a pin this room uses."""
    pins, labels = header.pins(), _labels(cfg)
    left_width = max([len(labels.get(n, "")) for n in range(1, 41, 2)] + [0])
    lines = []
    for odd in range(1, 41, 2):
        even = odd + 1
        mark = {n: "●" if n in labels else "○" for n in (odd, even)}
        left = f"{labels.get(odd, ''):>{left_width}}  {pins[odd]:>6} {odd:>2} {mark[odd]}"
        right = f"{mark[even]} {even:<2} {pins[even]:<6}  {labels.get(even, '')}"
        lines.append(f"{left} {right}".rstrip())
    return "\n".join(lines)


def _a(number: int) -> str:
    return "an" if str(number).startswith("8") or number in (11, 18) else "a"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _relay_notes(r: RelayConfig) -> str:
    notes = []
    if r.interlock:
        notes.append(f"interlock {r.interlock}")
    if r.pulse:
        notes.append(f"pulse {r.pulse:g} s")
    return ", ".join(notes)


def _input_wire(i: InputConfig, pin: int) -> str:
    kind, pull_up, active_high = i.kind, i.pull_up, i.active_high
    if kind == "motion":
        active = "motion = high" if active_high else "motion = low"
        return (f"PIR OUT to pin {pin} (3.3 V output); PIR VCC to 5V pin {PIR_VCC}, GND to pin "
                f"{PIR_GND}; {active}")  # fmt: skip
    level = "low" if not active_high else "high"
    if pull_up:
        return f"between pin {pin} and GND pin {SWITCH_GND} (the Pi's pull-up; closed = {level})"
    return f"between pin {pin} and 3V3 pin {SWITCH_3V3} (the Pi's pull-down; closed = {level})"


def render(cfg: Config) -> str:
    """The room's wiring as Markdown: the header drawing, then relays, inputs, I2C and power."""
    c = cfg.control
    parts = [
        "Pin 1 has the square solder pad. Odd pins are in the left column, even pins in the "
        "right, as in the Raspberry Pi pinout; ● marks a pin this room uses.",
        "",
        "```text",
        drawing(cfg),
        "```",
    ]
    if c.relays:
        size = _board_size(len(c.relays))
        lows = {r.active_high for r in c.relays}
        board = "active low: a low pin energises the coil" if lows == {False} else "see each row"
        parts += ["", f"Relays: {_a(size)} {size}-channel relay board ({board}), VCC to 5V pin "
                  f"{RELAY_VCC}, GND to pin {RELAY_GND}.", ""]  # fmt: skip
        rows = []
        for k, r in enumerate(c.relays, start=1):
            power = f", {r.rated_power_w:g} W" if r.rated_power_w else ""
            on = "high" if r.active_high else "low"
            rows.append([str(_pin(r.pin)), f"GPIO{r.pin}", f"IN{k}", r.name, f"{r.kind}{power}",
                         on, _relay_notes(r)])  # fmt: skip
        parts += _table(["Pin", "GPIO", "Board", "Relay", "Kind", "On when pin is", "Notes"], rows)
    if c.inputs:
        parts += ["", "Inputs:", ""]
        rows = [[str(_pin(i.pin)), f"GPIO{i.pin}", i.name, i.kind, _input_wire(i, _pin(i.pin))]
                for i in c.inputs]  # fmt: skip
        parts += _table(["Pin", "GPIO", "Input", "Kind", "Wiring"], rows)
    for bus in sorted({d.bus for d in cfg.devices if isinstance(d.bus, int)}):
        pins = header.I2C_BUS_PINS.get(bus)
        where = (f"SDA pin {_pin(pins[0])}, SCL pin {_pin(pins[1])}" if pins else
                 "SDA and SCL on the pins of the dtoverlay that makes this bus")  # fmt: skip
        parts += ["", f"I2C bus {bus} ({where}); the sensor boards in parallel, each VIN to 3V3 "
                  f"pin {SENSOR_VIN} and GND to pin {SENSOR_GND}:", ""]  # fmt: skip
        rows = []
        for d in sorted((d for d in cfg.devices if d.bus == bus), key=_address):
            cls = DRIVERS[d.driver]
            note = "; 5 V supply, see Power" if cls.five_volt else ""
            rows.append([f"0x{_address(d):02x}", d.name, cls.label,
                         ", ".join(cls.quantities) + note])  # fmt: skip
        parts += _table(["Address", "Device", "Chip", "Measures"], rows)
    for line in cfg.modbus:
        where = line.serial or f"{line.host}:{line.port}"
        parts += ["", f"Modbus line {line.name} ({where}; docs/energy.md): "
                  + ("one twisted pair A-A, B-B through every meter, 120 ohm at both ends"
                     if line.serial else "the gateway on the network"), ""]  # fmt: skip
        rows = [[str(d.address), d.name, DRIVERS[d.driver].label]
                for d in cfg.devices if d.bus == line.name]  # fmt: skip
        parts += _table(["Unit id", "Device", "Meter"], rows)
    rows = [[str(s.pin), s.rail, s.feeds] for s in supplies(cfg)]
    if rows:
        parts += ["", "Power:", "", *_table(["Pin", "Supply", "Feeds"], rows)]
    return "\n".join(parts) + "\n"


def _address(d: DeviceConfig) -> int:
    return d.address if d.address is not None else DRIVERS[d.driver].default_address


# The doc's generated blocks ------------------------------------------------------------------

BLOCK = re.compile(r"(<!-- begin wiring ([\w-]+) -->\n)(.*?)(<!-- end wiring \2 -->)", re.S)


def blocks(text: str) -> dict[str, str]:
    """Profile name -> the generated Markdown between its markers."""
    return {m.group(2): m.group(3) for m in BLOCK.finditer(text)}


def update(doc: Path, profiles: Path) -> list[str]:
    """Regenerates every marked block of `doc` from profiles/NAME.toml; returns the names."""
    from agent.config import schema as config_mod

    names: list[str] = []

    def fill(m: re.Match[str]) -> str:
        names.append(m.group(2))
        cfg = config_mod.load(profiles / f"{m.group(2)}.toml")
        return m.group(1) + render(cfg) + m.group(4)

    doc.write_text(BLOCK.sub(fill, doc.read_text(encoding="utf-8")), encoding="utf-8")
    return names


def main(argv: Optional[Sequence[str]] = None) -> int:
    from agent.config import schema as config_mod
    from agent.config.schema import ConfigError

    p = argparse.ArgumentParser(
        prog="python -m agent.tools.wiring", description=__doc__.split("\n")[0]
    )
    p.add_argument("configs", nargs="*", help="node configs to draw")
    p.add_argument("--update", metavar="DOC", help="regenerate the marked blocks of DOC")
    args = p.parse_args(argv)
    if args.update:
        doc = Path(args.update)
        names = update(doc, doc.resolve().parent.parent / "firmware_configs")
        print(f"{doc}: regenerated {', '.join(names) or 'nothing (no markers)'}")
        return 0
    for path in args.configs:
        try:
            cfg = config_mod.load(path)
        except ConfigError as e:
            print(f"wiring: {e}", file=sys.stderr)
            return 2
        print(f"## {cfg.node.name} ({path})\n\n{render(cfg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

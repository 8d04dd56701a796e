"""The Raspberry Pi's config.txt, read the way its firmware reads it, as far as roomagent needs.

dtparam lines (comma lists, the i2c/i2c_arm aliases, on/off spellings), dtoverlay lines with
their parameters (after a comma or a colon), "dtoverlay=" ending an overlay's scope, [none]
sections skipped and include lines followed. Model filters such as [pi4] are not evaluated:
their lines are taken to apply. Sources: the firmware's overlays README ("The base DTB") and
the device-tree documentation, section 3.2 (DT parameters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

BOOT_CONFIGS = ("/boot/firmware/config.txt", "/boot/config.txt")  # Bookworm on, then older
_ON = {"", "on", "true", "yes", "okay", "1", "y"}
# dtparam names of the base device tree, with their aliases (overlays README, "The base DTB");
# i2c1 is the numeric name of the ARM's bus on all but the first Model B.
_BASE_ALIASES = {
    "i2c": "i2c_arm",
    "i2c1": "i2c_arm",
    "i2c0": "i2c_vc",
    "i2c_baudrate": "i2c_arm_baudrate",
}
_BASE_PARAMS = {"i2c_arm", "i2c_vc", "spi", "i2s", "audio", "i2c_arm_baudrate", "uart0"}
# Overlays that take header pins, with their pin parameters and defaults (overlays README).
OVERLAY_PINS: Mapping[str, Sequence[tuple[str, int]]] = {
    "w1-gpio": (("gpiopin", 4),),
    "w1-gpio-pullup": (("gpiopin", 4), ("extpullup", 5)),
    "i2c-gpio": (("i2c_gpio_sda", 23), ("i2c_gpio_scl", 24)),
    "gpio-shutdown": (("gpio_pin", 3),),
    "gpio-poweroff": (("gpiopin", 26),),
    "pps-gpio": (("gpiopin", 18),),
}
SPI0_PINS = (7, 8, 9, 10, 11)  # CE1, CE0, MISO, MOSI, SCLK
UART_PINS = (14, 15)  # TXD, RXD
BT_OFF_OVERLAYS = {"disable-bt", "pi3-disable-bt"}


@dataclass(frozen=True)
class BootConfig:
    path: Optional[Path]  # None: no config.txt found
    params: Mapping[str, str] = field(default_factory=dict)  # base dtparams, last one wins
    overlays: tuple[tuple[str, Mapping[str, str]], ...] = ()
    settings: Mapping[str, str] = field(default_factory=dict)  # other name=value lines

    def on(self, param: str) -> bool:
        value = self.params.get(param)
        return value is not None and value.lower() in _ON

    def claimed_pins(self) -> dict[int, str]:
        """GPIO -> what config.txt gives it to (so a relay or input there would fight it)."""
        taken: dict[int, str] = {}
        if self.on("spi"):
            taken.update({pin: "SPI (dtparam=spi=on)" for pin in SPI0_PINS})
        if self.settings.get("enable_uart") == "1":
            taken.update({pin: "the serial port (enable_uart=1)" for pin in UART_PINS})
        for name, params in self.overlays:
            for param, default in OVERLAY_PINS.get(name, ()):
                value = params.get(param, str(default))
                if value.isdigit():
                    taken[int(value)] = f"dtoverlay={name}"
        return taken


def read_boot_config(root: Path = Path("/")) -> BootConfig:
    """The first config.txt found under `root` (Bookworm's place first), parsed."""
    for candidate in BOOT_CONFIGS:
        path = root / candidate.lstrip("/")
        if path.is_file():
            state = _Parse()
            state.read(path, depth=0)
            return BootConfig(path, state.params, tuple(state.overlays), state.settings)
    return BootConfig(None)


class _Parse:
    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.overlays: list[tuple[str, dict[str, str]]] = []
        self.settings: dict[str, str] = {}
        self.overlay: Optional[dict[str, str]] = None  # the overlay whose parameters follow

    def read(self, path: Path, depth: int) -> None:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return
        skipping = False
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                # Model filters ([pi4], [cm5]) are not evaluated: they are taken to match.
                skipping = line[1:-1].strip().lower() == "none"
                continue
            if skipping:
                continue
            if line.startswith("include ") and depth < 4:
                self.read(path.parent / line.split(None, 1)[1].strip(), depth + 1)
                continue
            name, _, value = line.partition("=")
            name, value = name.strip(), value.strip()
            if name == "dtoverlay":
                self._overlay(value)
            elif name == "dtparam":
                for item in value.split(","):
                    self._param(*_pair(item))
            else:
                self.settings[name] = value

    def _overlay(self, value: str) -> None:
        if not value:  # "dtoverlay=" ends the overlay's scope: later dtparams are the base's
            self.overlay = None
            return
        head, _, rest = value.replace(":", ",", 1).partition(",")
        params = dict(_pair(item) for item in rest.split(",") if item)
        self.overlays.append((head.strip(), params))
        self.overlay = params

    def _param(self, name: str, value: str) -> None:
        base = _BASE_ALIASES.get(name, name)
        # A parameter the overlay does not define falls through to the base tree (device-tree
        # docs, 3.2); base names are known, anything else belongs to the current overlay.
        if base in _BASE_PARAMS or self.overlay is None:
            self.params[base] = value
        else:
            self.overlay[name] = value


def _pair(item: str) -> tuple[str, str]:
    name, _, value = item.partition("=")
    return name.strip(), value.strip()

"""`[[inputs]]`: one GPIO input's wiring (pin, kind, pull, polarity, debounce), checked at load;
agent.control.inputs reads the inputs it describes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from agent.common.suggest import hint

# kind -> (state when active, state when inactive)
KINDS: dict[str, tuple[str, str]] = {
    "motion": ("motion", "clear"),
    "button": ("pressed", "released"),
    "switch": ("on", "off"),
    "contact": ("closed", "open"),
}
DEFAULT_BOUNCE = 0.05  # s, for contacts that bounce (not PIRs, which drive the line cleanly)
# The 40-pin header carries GPIO 0-27; 2 and 3 are the I2C bus the sensors are on.
HEADER_PINS = range(28)
I2C_PINS = {2: "SDA", 3: "SCL"}


@dataclass(frozen=True)
class InputConfig:
    """One GPIO input. pull_up and bounce_time default by kind when left None; bounce_time 0
    turns debouncing off; active_high None means active is the level the pull does not give."""

    name: str
    pin: int
    kind: str
    pull_up: Optional[bool] = None  # None: True for button/switch/contact, False for motion
    active_high: Optional[bool] = None  # None: not pull_up
    bounce_time: Optional[float] = None  # s; None: 0.05 for button/switch/contact, off for motion

    def __post_init__(self) -> None:
        self.validate()
        # Resolve the kind's defaults once, so every reader sees the wiring actually used.
        pull_up = self.kind != "motion" if self.pull_up is None else self.pull_up
        bounce = self.bounce_time
        if bounce is None and self.kind != "motion":
            bounce = DEFAULT_BOUNCE
        object.__setattr__(self, "pull_up", pull_up)
        object.__setattr__(self, "bounce_time", bounce or None)
        if self.active_high is None:
            object.__setattr__(self, "active_high", not pull_up)

    def validate(self) -> None:
        if not self.name:
            raise ValueError("name: must not be empty")
        if self.kind not in KINDS:
            near = hint(self.kind, KINDS) if isinstance(self.kind, str) else ""
            raise ValueError(f"kind: must be one of {', '.join(KINDS)}, got {self.kind!r}{near}")
        if isinstance(self.pin, bool) or not isinstance(self.pin, int):
            raise ValueError(f"pin: must be a BCM GPIO number, got {self.pin!r}")
        if self.pin not in HEADER_PINS:
            raise ValueError(f"pin: GPIO {self.pin} is not on the header (GPIO 0-27)")
        if self.pin in I2C_PINS:
            raise ValueError(
                f"pin: GPIO {self.pin} is the I2C bus's {I2C_PINS[self.pin]}, used by the sensors"
            )
        if self.bounce_time is not None and not 0 <= self.bounce_time <= 1:
            raise ValueError(f"bounce_time: must be 0-1 s, got {self.bounce_time}")

    def state_of(self, level_high: bool) -> str:
        active, inactive = KINDS[self.kind]
        return active if level_high == self.active_high else inactive


def validate_inputs(configs: Iterable[InputConfig]) -> None:
    """Two inputs on one pin, or two with one name, are a wiring or typing mistake."""
    names: dict[str, int] = {}
    pins: dict[int, str] = {}
    for i, config in enumerate(configs):
        if config.name in names:
            raise ValueError(
                f"inputs[{i}].name: {config.name!r} is already used by inputs[{names[config.name]}]"
            )
        if config.pin in pins:
            raise ValueError(
                f"inputs[{i}].pin: GPIO {config.pin} is already input {pins[config.pin]!r}"
            )
        names[config.name], pins[config.pin] = i, config.name

"""A simulated room for `--simulate`: a day of weather and daylight, short meetings, and noise.

Rough but physically shaped: CO2 and VOCs rise while the room is in use (a six-minute meeting
every ten minutes, so a demo shows the room react), daylight follows the sun, the metered
circuit draws more when people are in.
"""

from __future__ import annotations

import importlib
import math
import random
import time
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

from drivers import DRIVERS, Driver
from drivers.sim.bus import SimChip
from drivers.sim.environment import Environment

MEETING_EVERY = 10.0  # minutes
MEETING_LENGTH = 6.0


class RoomModel:
    def __init__(self, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        # A config with a [room] replaces this open-loop pattern with the closed-loop model
        # (drivers/sim/closed_loop.py), which the chips made earlier then see through here.
        self.closed_loop: Any = None
        # What the agent's relays draw now (W), set by the agent once its relays exist; the
        # simulated energy meters measure it.
        self.relay_load: Optional[Callable[[], float]] = None

    def load_w(self) -> float:
        """The metered circuit's draw: the relays' rated power while on; without relays, a
        room whose lights and ventilation run during meetings."""
        if self.relay_load is not None:
            return self.relay_load()
        return 1200.0 if self.occupied() else 60.0

    def minutes_into_meeting(self) -> Optional[float]:
        """A short meeting every ten minutes, six minutes long, so that a demo shows the room
        react within minutes: motion, lights, CO2 rising and the fan coming on."""
        if self.closed_loop is not None:
            minutes: Optional[float] = self.closed_loop.minutes_into_meeting()
            return minutes
        minute = (self.clock() / 60.0) % MEETING_EVERY
        return minute if minute < MEETING_LENGTH else None

    def occupied(self) -> bool:
        return self.minutes_into_meeting() is not None

    def environment(self) -> Environment:
        if self.closed_loop is not None:
            env: Environment = self.closed_loop.environment()
            return env
        hours = (self.clock() / 3600.0) % 24
        day = math.sin(2 * math.pi * (hours - 9) / 24)
        minutes_in = self.minutes_into_meeting()
        occupied = minutes_in is not None
        # A full council chamber: CO2 climbs past 1000 ppm about three minutes in.
        co2 = 450.0 + (900.0 * (1 - math.exp(-minutes_in / 3)) if minutes_in is not None else 0.0)
        daylight = max(0.0, math.sin(math.pi * (hours - 7) / 12)) * 800.0
        g = self.rng.gauss
        pm1_0 = abs(3.0 + g(0, 0.5))
        pm2_5 = pm1_0 + abs(2.0 + (2.0 if occupied else 0.0) + g(0, 0.5))
        return Environment(
            temperature=21.0 + 1.5 * day + (0.8 if occupied else 0.0) + g(0, 0.05),
            humidity=45.0 - 5.0 * day + (4.0 if occupied else 0.0) + g(0, 0.3),
            pressure=1013.0 + 3.0 * math.sin(2 * math.pi * hours / 72) + g(0, 0.05),
            co2=co2 + g(0, 8),
            illuminance=max(0.0, daylight + (400.0 if occupied else 0.0) + g(0, 5)),
            # More VOCs lower the SGP40's raw signal.
            voc_raw=int(30000 - (co2 - 450.0) * 2 + g(0, 30)),
            # Each size class includes the smaller ones: PM1.0 <= PM2.5 <= PM10.
            pm1_0=pm1_0,
            pm2_5=pm2_5,
            pm10=pm2_5 + abs(2.0 + (3.0 if occupied else 0.0) + g(0, 0.5)),
            voltage=12.0 + g(0, 0.01),
            current=(1.8 if occupied else 0.3) + g(0, 0.01),
        )


# A simulated chip in the given room, on a board described by the device's options.
ChipFactory = Callable[[RoomModel, Mapping[str, Any]], SimChip]


def _factory(driver: type[Driver]) -> ChipFactory:
    """Makes the driver's simulated chip (drivers.base: `simulated`), importing its module only
    when a config uses that chip. The options named in `board_options` describe the board, not
    the chip (an INA's shunt resistance): the simulated chip takes them from the device's config,
    as the real one's behaviour follows from the resistor soldered next to it."""

    def make(room: RoomModel, options: Mapping[str, Any]) -> SimChip:
        module, _, class_name = driver.simulated.partition(":")
        cls = getattr(importlib.import_module(module), class_name)
        fitted = {key: options[key] for key in driver.board_options if key in options}
        chip: SimChip = cls(room.environment, **driver.simulated_arguments, **fitted)
        return chip

    return make


class _SimulatedChips(Mapping[str, ChipFactory]):
    """Every registered I2C chip's simulated counterpart, by driver name (Modbus meters are
    simulated by pymodbus servers: drivers/sim/meter.py)."""

    def __getitem__(self, name: str) -> ChipFactory:
        if name not in _i2c():
            raise KeyError(name)
        return _factory(DRIVERS[name])

    def __iter__(self) -> Iterator[str]:
        return iter(_i2c())

    def __len__(self) -> int:
        return len(_i2c())


def _i2c() -> list[str]:
    return [name for name, cls in DRIVERS.items() if cls.transport == "i2c"]


SIMULATED_CHIPS: Mapping[str, ChipFactory] = _SimulatedChips()

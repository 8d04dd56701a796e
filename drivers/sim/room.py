"""A simulated room for `--simulate`: slow daily swings plus a little sensor noise."""

from __future__ import annotations

import math
import random
import time
from typing import Callable

from drivers.sim.bme280 import Environment, SimBME280
from drivers.sim.bus import SimChip


class RoomModel:
    def __init__(self, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.rng = random.Random(seed)
        self.clock = clock

    def environment(self) -> Environment:
        hours = self.clock() / 3600.0
        day = math.sin(2 * math.pi * (hours - 9) / 24)
        return Environment(
            temperature=21.0 + 1.5 * day + self.rng.gauss(0, 0.05),
            humidity=45.0 - 5.0 * day + self.rng.gauss(0, 0.3),
            pressure=1013.0 + 3.0 * math.sin(2 * math.pi * hours / 72) + self.rng.gauss(0, 0.05),
        )


# driver name -> a simulated chip for it, living in the given room
SIMULATED_CHIPS: dict[str, Callable[[RoomModel], SimChip]] = {
    "bme280": lambda room: SimBME280(room.environment),
    "bmp280": lambda room: SimBME280(room.environment, chip_id=0x58),
}

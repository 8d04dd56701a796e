"""A simulated energy meter: a load's power integrated into kWh, served as register words.

The meter measures what `power_w()` says the circuit draws (the simulated room's lighting and
HVAC relays, or a test's profile) and integrates it between reads, exactly as a real meter's
counter accumulates: the register image is encoded from the driver's own map (drivers.sdm120
...), so a simulated SDM630 and a real one answer the same addresses in the same format.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Callable, Optional

from drivers.modbus_map import TYPES, Field

MAINS_V = 230.0
MAINS_HZ = 50.0


def encode(field: Field, value: float) -> list[int]:
    """The register words a meter stores `value` as (the inverse of modbus_map.decode)."""
    raw: float = value / field.scale
    fmt = TYPES[field.type][1]
    number = raw if field.type.startswith("float") else round(raw)
    data = struct.pack(fmt, number)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words if field.word_order == "big" else list(reversed(words))


class SimMeter:
    """One meter: its register image follows `power_w()`; energy integrates it over `clock`."""

    def __init__(
        self,
        fields: Sequence[Field],
        power_w: Callable[[], float],
        *,
        clock: Callable[[], float] = time.monotonic,
        phases: int = 1,
        power_factor: float = 0.95,
        energy_kwh: float = 0.0,
        extra: Optional[Mapping[tuple[int, int], int]] = None,
        power_at: Optional[Callable[[float], float]] = None,
    ) -> None:
        """`extra`: fixed words by (function, address), e.g. a model code register.
        `power_at(t)`: the load as a function of the clock's time, when known: the counter then
        integrates it in 1 s steps between reads, as a meter's measuring cycle does."""
        self.power_at = power_at
        self.fields, self.power_w, self.clock = tuple(fields), power_w, clock
        self.phases, self.power_factor = phases, power_factor
        self.energy_import = energy_kwh
        self.energy_export = 0.0
        self.extra = dict(extra or {})
        self._lock = threading.Lock()
        self._last = clock()
        self._power = power_w()
        # Faults a test can set: swap every multi-word value's words (a meter set to another
        # word order), or raise the counter's value by `jump` (a meter replaced or reset).
        self.swap_words = False

    def advance(self) -> None:
        """Integrates the power drawn since the last call (trapezoids: the load is sampled at
        each read, which is also when a real meter's reading is taken)."""
        with self._lock:
            now = self.clock()
            if self.power_at is not None:
                t = self._last
                while t < now:
                    step = min(1.0, now - t)
                    self.energy_import += max(0.0, self.power_at(t)) * step / 3.6e6
                    t += step
                power = max(0.0, self.power_at(now))
            else:
                power = max(0.0, self.power_w())
                self.energy_import += (self._power + power) / 2 * (now - self._last) / 3.6e6
            self._last, self._power = now, power

    def reset_counter(self, kwh: float = 0.0) -> None:
        """What a meter swapped for a new one, or reset from its front panel, looks like."""
        with self._lock:
            self.energy_import, self.energy_export = kwh, 0.0

    def values(self) -> dict[str, float]:
        power = self._power
        current = power / (MAINS_V * self.power_factor)
        values = {
            "voltage": MAINS_V,
            "current": current,
            "power": power,
            "power_factor": self.power_factor,
            "frequency": MAINS_HZ,
            "energy_import": self.energy_import,
            "energy_export": self.energy_export,
        }
        for n in range(1, 4):
            # A balanced load: each phase carries its share; "current" is their sum (SDM630's
            # 30049), which for one phase is the phase current itself.
            share = 1.0 / self.phases if n <= self.phases else 0.0
            values[f"voltage_l{n}"] = MAINS_V
            values[f"current_l{n}"] = current * share
            values[f"power_l{n}"] = power * share
            values[f"power_factor_l{n}"] = self.power_factor
        return values

    def words(self, function: int) -> dict[int, int]:
        """The register image for one function code, refreshed to this instant."""
        self.advance()
        # Registers between the mapped ones read as zero ("any parameter with a cross will
        # return the value zero", Eastron); beyond the map, the server answers exception 2.
        mapped = [f for f in self.fields if f.function == function]
        image = {
            a: 0
            for a in range(
                min((f.address for f in mapped), default=0),
                max((f.address + f.size for f in mapped), default=0),
            )
        }
        image.update({a: w for (f, a), w in self.extra.items() if f == function})
        values = self.values()
        for field in self.fields:
            if field.function != function:
                continue
            words = encode(field, values[field.quantity])
            if self.swap_words:
                words = list(reversed(words))
            for i, w in enumerate(words):
                image[field.address + i] = w
        return image

"""Meter counters that can be trusted: never backwards, resets reported, CO2e, relay checks.

Between the meter runner and the buffer: each reading's energy counters become the published
totals (raw counter + an offset kept in <state_dir>/meters.json), so that a meter reset,
replaced or rolled over continues from the last published total and is reported as an event,
never as negative energy. The offsets and last raw values are written when a reset is seen,
every PERSIST_INTERVAL, and at stop: a restart compares the meter with what was last saved.

CO2e (kg) follows the published import total and the grid factor ([energy] table).
A meter with `circuit_relays` is checked against them: relays on while the circuit draws
nothing, or all off while it draws, for MISMATCH_READINGS readings in a row is an event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from agent.common.events import Event
from agent.common.seq_floor import write_durably
from drivers.modbus_meter import COUNTERS

log = logging.getLogger("roomagent.modbus")
PERSIST_INTERVAL = 900.0  # s: the write budget of an SD card (docs/buffer.md) over exactness
MISMATCH_READINGS = 3  # a relay's inrush or a lamp warming up is not a fault
# A counter below its last value by more than this is a reset, not float32 rounding (a float32
# counter at 100,000 kWh resolves 0.008 kWh).
TOLERANCE_KWH = 0.01
TOLERANCE_REL = 1e-6


@dataclass
class _Counter:
    last_raw: float
    offset: float = 0.0

    @property
    def published(self) -> float:
        return self.last_raw + self.offset


@dataclass
class _Meter:
    counters: dict[str, _Counter] = field(default_factory=dict)
    mismatch_count: int = 0
    mismatch: Optional[str] = None  # the reason while a mismatch stands


class EnergyGuard:
    def __init__(
        self,
        path: Path,
        clock: Callable[[], float],
        emit: Callable[[Event], None],
        *,
        grid_g_per_kwh: float | Callable[[], float],
        relay_states: Callable[[], Mapping[str, bool]] = dict,
        monotonic: Optional[Callable[[], float]] = None,
    ) -> None:
        self.path, self.clock, self.emit = path, clock, emit
        self.monotonic = monotonic or clock
        self.grid_g_per_kwh = grid_g_per_kwh
        self.relay_states = relay_states
        self.meters: dict[str, _Meter] = {}
        self._saved_at = self.monotonic()
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.error("%s unreadable (%s): counters restart from the meters' values", self.path, e)
            return
        for device, counters in data.get("meters", {}).items():
            meter = self.meters.setdefault(device, _Meter())
            for quantity, c in counters.items():
                meter.counters[quantity] = _Counter(float(c["last_raw"]), float(c["offset"]))

    def save(self) -> None:
        data = {
            "meters": {
                device: {
                    q: {"last_raw": c.last_raw, "offset": c.offset} for q, c in m.counters.items()
                }
                for device, m in self.meters.items()
            }
        }
        try:
            write_durably(self.path, json.dumps(data, sort_keys=True).encode())
        except OSError as e:
            log.error("cannot save the meters' counters to %s: %s", self.path, e)
            return
        self._saved_at, self._dirty = self.monotonic(), False

    def last_import(self, device: str) -> float:
        """The meter's last import counter as read (0 for a meter not seen before)."""
        counter = self.meters.get(device, _Meter()).counters.get("energy_import")
        return counter.last_raw if counter is not None else 0.0

    def totals(self) -> dict[str, float]:
        """Published import kWh of every meter seen: the room's metered energy."""
        return {
            device: m.counters["energy_import"].published
            for device, m in self.meters.items()
            if "energy_import" in m.counters
        }

    def apply(
        self,
        device: str,
        values: Mapping[str, float],
        circuit_relays: Sequence[str] = (),
        idle_w: float = 5.0,
    ) -> dict[str, float]:
        """The values to publish for one reading of a meter."""
        meter = self.meters.setdefault(device, _Meter())
        out = dict(values)
        for quantity in COUNTERS:
            if quantity not in values:
                continue
            out[quantity] = self._counter(device, meter, quantity, values[quantity])
        if "energy_import" in out:
            factor = self.grid_g_per_kwh
            grid = factor() if callable(factor) else factor  # the config of the moment
            out["co2e"] = out["energy_import"] * grid / 1000.0
        if circuit_relays and "power" in values:
            self._check_relays(device, meter, circuit_relays, values["power"], idle_w)
        self._dirty = True
        if self.monotonic() - self._saved_at >= PERSIST_INTERVAL:
            self.save()
        return out

    def _counter(self, device: str, meter: _Meter, quantity: str, raw: float) -> float:
        c = meter.counters.get(quantity)
        if c is None:
            meter.counters[quantity] = _Counter(raw)
            self.save()  # a new meter: its first value is the floor from now on
            return raw
        if raw < c.last_raw - max(TOLERANCE_KWH, TOLERANCE_REL * c.last_raw):
            before = c.published
            c.offset = before - raw
            self.emit(
                Event(
                    "meter",
                    device,
                    "counter_reset",
                    f"{quantity} went back from {c.last_raw:g} to {raw:g} kWh (meter reset, "
                    f"replaced or rolled over): the published total continues from {before:g} kWh",
                    self.clock(),
                )
            )
            c.last_raw = raw
            self.save()
            return c.published
        c.last_raw = max(raw, c.last_raw)  # float32 rounding may read a hair lower: never down
        return c.published

    def _check_relays(
        self, device: str, meter: _Meter, relays: Sequence[str], power: float, idle_w: float
    ) -> None:
        states = self.relay_states()
        on = [r for r in relays if states.get(r)]
        reason = None
        if on and power < idle_w:
            reason = (
                f"relay {', '.join(on)} is on but the circuit draws {power:.1f} W: check "
                "the load, its fuse or breaker, and the contactor"
            )
        elif not on and power > idle_w and all(r in states for r in relays):
            reason = (
                f"relay {', '.join(relays)} is off but the circuit draws {power:.1f} W: "
                "a welded contact, a manual bypass or another load on the circuit"
            )
        if reason is None:
            if meter.mismatch is not None:
                self.emit(
                    Event(
                        "meter",
                        device,
                        "relay_match",
                        "the metered draw agrees with the relays again",
                        self.clock(),
                    )
                )
            meter.mismatch_count, meter.mismatch = 0, None
            return
        meter.mismatch_count += 1
        if meter.mismatch_count >= MISMATCH_READINGS and meter.mismatch is None:
            meter.mismatch = reason
            self.emit(Event("meter", device, "relay_mismatch", reason, self.clock()))

    def close(self) -> None:
        if self._dirty:
            self.save()


def circuit_options(options: Mapping[str, Any]) -> tuple[tuple[str, ...], float]:
    return tuple(options.get("circuit_relays", ())), float(options.get("idle_w", 5.0))


def guarded(
    on_sample: Callable[[Any], Any], guard: EnergyGuard, device: Any
) -> Callable[[Any], Any]:
    """Wraps the agent's sample callback for one meter device: what is published is guarded."""
    from dataclasses import replace

    from agent.mqtt.contract import rounded

    relays, idle_w = circuit_options(device.options)

    async def on_meter_sample(sample: Any) -> None:
        values = guard.apply(sample.device, sample.values, relays, idle_w)
        await on_sample(replace(sample, values=rounded(values)))

    return on_meter_sample

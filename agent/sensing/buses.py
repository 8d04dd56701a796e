"""The one place that decides which buses a node has and which device is on which.

A bus is named by its kind and where it is: "i2c-1" for /dev/i2c-1. Every device on the same
bus shares its scheduler, so their transactions never overlap and each one's waits are the
others' bus time. A field bus plugs in by naming itself here (e.g. "modbus-rtu:/dev/ttyUSB0"
for an RS-485 line shared by several meters, "modbus-tcp:10.0.0.5:502" for an endpoint) and
giving its devices operations (docs/sensing.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Callable

from agent.config import DeviceConfig
from agent.sensing.scheduler import BusScheduler


def bus_of(device: DeviceConfig) -> str:
    """The bus a configured device is on."""
    return f"i2c-{device.bus}"


class Buses:
    """The node's buses, each with its scheduler thread, made when a device first needs one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buses: dict[str, BusScheduler] = {}

    def of(self, device: DeviceConfig) -> BusScheduler:
        name = bus_of(device)
        bus = self._buses.get(name)
        if bus is None:
            bus = self._buses[name] = BusScheduler(name, clock=self.clock)
            bus.start()
        return bus

    def __iter__(self) -> Iterator[BusScheduler]:
        return iter(list(self._buses.values()))

    def shutdown(self) -> None:
        for bus in self:
            bus.shutdown()

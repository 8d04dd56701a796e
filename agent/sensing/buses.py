"""The one place that decides which buses a node has and which device is on which.

A bus is named by its kind and where it is: "i2c-1" for /dev/i2c-1, "modbus-<line>" for a
[[modbus]] line (an RS-485 line shared by several meters by unit id, or a Modbus TCP endpoint),
whose name a meter's `bus` key gives. Every device on the same bus shares its scheduler, so
their transactions never overlap and each one's waits are the others' bus time
(docs/sensing.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Callable

from agent.config.schema import DeviceConfig
from agent.sensing.scheduler import STEP_TIMEOUT, BusScheduler


def bus_of(device: DeviceConfig) -> str:
    """The bus a configured device is on."""
    if isinstance(device.bus, str):  # a Modbus line's name (agent.config.modbus)
        return f"modbus-{device.bus}"
    return f"i2c-{device.bus}"


def step_timeout(name: str) -> float:
    """How long one transaction may take before it is abandoned. An I2C transfer takes
    milliseconds (STEP_TIMEOUT, 1 s); a Modbus request has the line's own response timeout and
    fails by itself (NoAnswer), so only the device's whole `timeout` bounds it."""
    return float("inf") if name.startswith("modbus-") else STEP_TIMEOUT


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
            bus.step_timeout = step_timeout(name)
            bus.start()
        return bus

    def __iter__(self) -> Iterator[BusScheduler]:
        return iter(list(self._buses.values()))

    def shutdown(self) -> None:
        for bus in self:
            bus.shutdown()

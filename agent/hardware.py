"""Chooses the bus behind each device: a real /dev/i2c-N, or a simulated one. Decided here only."""

from __future__ import annotations

from typing import Any

from agent.config import Config
from drivers import DRIVERS


class Hardware:
    def __init__(self, config: Config, simulate: bool) -> None:
        self.config, self.simulate = config, simulate
        self._buses: dict[int, Any] = {}
        if simulate:
            self._attach_simulated_chips()

    def bus(self, number: int) -> Any:
        if number not in self._buses:
            if self.simulate:
                from drivers.sim import SimBus

                self._buses[number] = SimBus()
            else:
                from smbus2 import SMBus

                self._buses[number] = SMBus(number)
        return self._buses[number]

    def _attach_simulated_chips(self) -> None:
        from drivers.sim.room import SIMULATED_CHIPS, RoomModel

        room = RoomModel()
        for device in self.config.devices:
            factory = SIMULATED_CHIPS.get(device.driver)
            if factory is None:
                continue  # nothing answers: the agent reports the device unavailable
            address = (
                device.address
                if device.address is not None
                else DRIVERS[device.driver].default_address
            )
            self.bus(device.bus).attach(address, factory(room))

    def close(self) -> None:
        for bus in self._buses.values():
            bus.close()
        self._buses.clear()

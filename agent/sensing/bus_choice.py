"""Chooses the bus behind each device: a real /dev/i2c-N, or a simulated one. Decided here only."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any, Optional, Union

from agent.config.schema import DeviceConfig
from agent.pi.pins import NoPins, PinChoice, choose
from drivers import DRIVERS


class NoBusError(Exception):
    """The kernel has no such I2C bus: said in words an installer can act on."""


class Hardware:
    def __init__(
        self,
        devices: Sequence[DeviceConfig],
        simulate: bool,
        modbus: Sequence[Any] = (),
        pin_factory: Any = None,
    ) -> None:
        """`pin_factory`: gpiozero's pins to use instead of the one agent.pi.pins chooses."""
        self.devices, self.simulate = tuple(devices), simulate
        self._buses: dict[int, Any] = {}
        # [[modbus]] lines: opened by agent.sensing.modbus.lines
        self.modbus_configs = tuple(modbus)
        self._modbus: Any = None
        # kWh a simulated meter starts from, by device name (the agent sets it from its record)
        self.meter_seed: Any = lambda device: 0.0
        self._pin_factory: Any = pin_factory
        self._pin_choice: Optional[PinChoice] = None
        self.room: Any = None  # the simulated room (drivers.sim.room.RoomModel) when simulating
        if simulate:
            self._attach_simulated_chips(self.devices)

    def add_devices(self, devices: Sequence[DeviceConfig]) -> None:
        """A new config's devices: when simulating, chips for the ones not seen before."""
        new = [d for d in devices if d not in self.devices]
        self.devices = tuple(devices)
        if self.simulate:
            self._attach_simulated_chips(new)

    def bus(self, number: Union[int, str]) -> Any:
        if isinstance(number, str):  # a Modbus line's name
            return self._modbus_lines().line(number)
        if number not in self._buses:
            if self.simulate:
                from drivers.sim import SimBus

                self._buses[number] = SimBus()
            else:
                self._buses[number] = _open_bus(number)
        return self._buses[number]

    def _modbus_lines(self) -> Any:
        if self._modbus is None:
            from agent.sensing.modbus.lines import ModbusLines  # pymodbus only with a Modbus line

            self._modbus = ModbusLines(self.modbus_configs, self.devices, self.simulate,
                                       lambda: self.room, lambda d: self.meter_seed(d))  # fmt: skip
        return self._modbus

    def bus_or_placeholder(self, number: Union[int, str]) -> Any:
        """For the agent: a missing bus makes its devices unavailable (with the reason) rather
        than stopping the agent and every other device with it."""
        try:
            return self.bus(number)
        except NoBusError as e:
            return MissingBus(str(e))

    def _attach_simulated_chips(self, devices: Sequence[DeviceConfig]) -> None:
        from drivers.sim.room import SIMULATED_CHIPS, RoomModel

        if self.room is None:
            self.room = RoomModel()
        room = self.room
        for device in devices:
            factory = SIMULATED_CHIPS.get(device.driver)
            if factory is None or isinstance(device.bus, str):  # meters: agent.sensing.modbus.lines
                continue  # nothing answers: the agent reports the device unavailable
            address = (
                device.address
                if device.address is not None
                else DRIVERS[device.driver].default_address
            )
            self.bus(device.bus).attach(address, factory(room, device.options))

    def pin_choice(self) -> PinChoice:
        """The pin factory, chosen once (agent.pi.pins.choose): mock pins when simulating, else
        lgpio or what GPIOZERO_PIN_FACTORY names; with the reason either way."""
        if self._pin_choice is None:
            if self._pin_factory is not None:
                self._pin_choice = PinChoice("given", "passed in", self._pin_factory)
            else:
                self._pin_choice = choose(self.simulate)
        return self._pin_choice

    def pin_factory(self) -> Any:
        """gpiozero's pin factory for relays and inputs. One that could not be opened is a
        stand-in whose every pin fails with the reason: those are unavailable, not fatal."""
        if self._pin_factory is None:
            choice = self.pin_choice()
            self._pin_factory = choice.factory or NoPins(choice.describe())
        return self._pin_factory

    def simulate_inputs(self, inputs: Any) -> None:
        """Moves the simulated room's motion sensors with its meetings."""
        if self.room is None or not self.simulate:
            return
        from gpiozero.pins.mock import MockFactory

        if not isinstance(self._pin_factory, MockFactory):
            return  # no pins yet, or none that can be driven by hand
        for config in inputs:
            if config.kind == "motion":
                pin = self._pin_factory.pin(config.pin)
                if self.room.occupied():
                    pin.drive_high()
                else:
                    pin.drive_low()

    def close(self) -> None:
        for bus in self._buses.values():
            bus.close()
        self._buses.clear()
        if self._modbus is not None:
            self._modbus.close()
            self._modbus = None


class MissingBus:
    """Stands in for a bus the kernel does not have: every transfer fails with the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise OSError(errno.ENODEV, self.reason)

        return fail

    def close(self) -> None:
        pass


def _open_bus(number: int) -> Any:
    from smbus2 import SMBus

    try:
        return SMBus(number)
    except FileNotFoundError:
        raise NoBusError(
            f"/dev/i2c-{number} does not exist: enable I2C (raspi-config nonint do_i2c 0, or "
            "dtparam=i2c_arm=on in config.txt) and reboot, or check the bus number"
        ) from None
    except PermissionError:
        raise NoBusError(
            f"no permission to open /dev/i2c-{number}: run as root or add the user to group i2c"
        ) from None

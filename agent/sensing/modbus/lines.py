"""The node's Modbus lines, opened on first use; simulated ones when the node simulates.

A simulated serial line is a paced pty pair (drivers.sim.rs485) with pymodbus's RTU server on
one end; a simulated TCP line is pymodbus's TCP server on a loopback port. Either serves one
SimMeter per meter device on the line, drawing what the simulated room's load draws.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Callable

from agent.config.modbus import ModbusLineConfig
from agent.sensing.modbus.line import ModbusLine

log = logging.getLogger("roomagent.modbus")


class ModbusLines:
    def __init__(
        self,
        configs: Sequence[ModbusLineConfig],
        devices: Sequence[Any],
        simulate: bool,
        room: Callable[[], Any] = lambda: None,
        seed: Callable[[str], float] = lambda device: 0.0,
    ) -> None:
        """`seed(device)`: the kWh a simulated meter's counter starts from (the agent gives the
        last value it saw, so a restarted simulation goes on counting like a real meter)."""
        self.configs = {c.name: c for c in configs}
        self.seed = seed
        self.devices, self.simulate, self.room = tuple(devices), simulate, room
        self._lines: dict[str, ModbusLine] = {}
        self._sims: list[Any] = []  # servers and pty lines to close

    def line(self, name: str) -> ModbusLine:
        if name not in self._lines:
            config = self.configs[name]
            self._lines[name] = self._simulated(config) if self.simulate else ModbusLine(config)
        return self._lines[name]

    def _simulated(self, config: ModbusLineConfig) -> ModbusLine:
        from drivers import DRIVERS
        from drivers.sim.meter import SimMeter
        from drivers.sim.modbus_server import SimModbusServer

        room = self.room()
        load = room.load_w if room is not None else (lambda: 0.0)
        meters = {}
        for d in self.devices:
            if d.bus != config.name:
                continue
            cls = DRIVERS[d.driver]
            driver: Any = cls(None, d.address, **d.options)
            phases = 3 if "voltage_l3" in cls.measured(d.options) else 1
            meters[driver.address] = SimMeter(
                driver.register_map(),
                load,
                phases=phases,
                extra=driver.simulated_extra,
                energy_kwh=self.seed(d.name),
            )
        server = SimModbusServer(meters)
        self._sims.append(server)
        if config.kind == "tcp":
            host, port = server.start_tcp()
            log.info("simulated Modbus TCP line %s on %s:%d", config.name, host, port)
            return ModbusLine(config, endpoint=(host, port))
        from drivers.sim.rs485 import SimRS485

        wire = SimRS485(config.baudrate, config.parity, config.stopbits)
        self._sims.append(wire)
        server.start_rtu(
            wire.server_port,
            baudrate=config.baudrate,
            parity=config.parity,
            stopbits=config.stopbits,
        )
        log.info("simulated RS-485 line %s on %s", config.name, wire.client_port)
        return ModbusLine(config, port=wire.client_port)

    def close(self) -> None:
        for line in self._lines.values():
            line.close()
        self._lines.clear()
        for sim in reversed(self._sims):
            stop: Callable[[], None] = getattr(sim, "stop", None) or sim.close
            stop()
        self._sims.clear()

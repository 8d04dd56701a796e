"""Simulated meters served by pymodbus's own server: on loopback TCP, or RTU on a pty line.

    server = SimModbusServer({1: SimMeter(SDM120.fields, load)})
    server.start_tcp()             # -> ("127.0.0.1", port)
    server.start_rtu(line.server_port, baudrate=9600, parity="N", stopbits=1)

The server runs its own asyncio loop on a daemon thread. A unit can be made to go silent
(`silence(unit)`: a dead meter on a live line) and come back (`revive(unit)`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseSlaveContext

from drivers.sim.meter import SimMeter

FUNCTION_CODES = {3: 3, 4: 4}  # read holding, read input


class MeterContext(ModbusBaseSlaveContext):
    """One unit's register space, 0-based as on the wire, read live from a SimMeter."""

    def __init__(self, meter: SimMeter) -> None:
        self.meter = meter
        self.requests: list[tuple[int, int, int]] = []  # (function, address, count) received

    def reset(self) -> None:
        pass

    def validate(self, fc_as_hex: int, address: int, count: int = 1) -> bool:
        if fc_as_hex not in FUNCTION_CODES:
            return False
        image = self.meter.words(fc_as_hex)
        return all(a in image for a in range(address, address + count))

    def getValues(self, fc_as_hex: int, address: int, count: int = 1) -> Sequence[int]:
        self.requests.append((fc_as_hex, address, count))
        image = self.meter.words(fc_as_hex)
        return [image[a] for a in range(address, address + count)]

    def setValues(self, fc_as_hex: int, address: int, values: Sequence[Any]) -> None:
        raise ValueError("the simulated meters are read-only")


class SimModbusServer:
    def __init__(self, meters: Mapping[int, SimMeter]) -> None:
        self.contexts = {unit: MeterContext(meter) for unit, meter in meters.items()}
        self.context = ModbusServerContext(slaves=dict(self.contexts), single=False)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self.address: Optional[tuple[str, int]] = None

    def silence(self, unit: int) -> None:
        """The unit stops answering (power cut, broken wire to it): requests time out."""
        del self.context[unit]

    def revive(self, unit: int) -> None:
        self.context[unit] = self.contexts[unit]

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        from pymodbus.server import ModbusTcpServer

        if port == 0:
            port = _free_port(host)
        self.address = (host, port)
        self._start(
            lambda: ModbusTcpServer(self.context, address=(host, port), ignore_missing_slaves=True)
        )
        _wait_listening(host, port)
        return self.address

    def start_rtu(self, port: str, *, baudrate: int, parity: str, stopbits: int) -> None:
        from pymodbus.framer import FramerType
        from pymodbus.server import ModbusSerialServer

        self._start(
            lambda: ModbusSerialServer(
                self.context,
                framer=FramerType.RTU,
                port=port,
                baudrate=baudrate,
                parity=parity,
                stopbits=stopbits,
                bytesize=8,
                ignore_missing_slaves=True,
            )
        )

    def _start(self, make: Any) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(_make(make))
                loop.run_until_complete(self._server.serve_forever(background=True))
            except BaseException as e:  # reported to start_*()
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="sim-modbus", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the simulated Modbus server did not start within 10 s")
        if failure:
            raise RuntimeError(f"the simulated Modbus server did not start: {failure[0]}")

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None or self._thread is None:
            return

        async def shutdown() -> None:
            await server.shutdown()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        self._thread.join(timeout=5)
        self._loop = self._server = self._thread = None


async def _make(make: Any) -> Any:
    return make()  # pymodbus's servers want a running loop when they are made


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)

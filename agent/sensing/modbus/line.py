"""A Modbus line as a bus: a thin adapter around one pymodbus client.

One ModbusLine per [[modbus]] table. Requests on it are serialised by its bus's scheduler (the
agent gives each line one, as each I2C bus has one: agent.sensing.buses); this class adds what a
shared RS-485 line needs between them: the silent interval of 3.5 characters between frames
(Modbus over serial line V1.02, 2.5.1.1; a fixed 1.75 ms above 19200 baud), no retries of its
own (a meter that does not answer costs one timeout, then the next meter's turn), and errors
that say what to check.
TCP lines reconnect on the next request after the connection drops.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

from agent.config.modbus import ModbusLineConfig
from drivers.modbus_map import (
    READ_HOLDING,
    READ_INPUT,
    ExceptionResponse,
    FrameError,
    ModbusError,
    NoAnswer,
)

log = logging.getLogger("roomagent.modbus")
# pymodbus logs every failed request at ERROR; the device's state says it once, with a reason.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
FAST_LINE_GAP_S = 0.00175  # above 19200 baud


def char_bits(parity: str, stopbits: int) -> int:
    return 1 + 8 + (0 if parity == "N" else 1) + stopbits


def frame_gap(baudrate: int, parity: str, stopbits: int) -> float:
    """The silent interval that ends an RTU frame: 3.5 character times."""
    if baudrate > 19200:
        return FAST_LINE_GAP_S
    return 3.5 * char_bits(parity, stopbits) / baudrate


class ModbusLine:
    def __init__(
        self,
        config: ModbusLineConfig,
        *,
        port: Optional[str] = None,
        endpoint: Optional[tuple[str, int]] = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`port`/`endpoint` replace the config's serial device or TCP address (the simulator
        serves a line on a pseudo-terminal or a loopback port)."""
        self.config = config
        self.port = port or config.serial
        self.endpoint = endpoint or (config.host or "", config.port)
        self.clock, self.sleep = clock, sleep
        self.gap = (
            frame_gap(config.baudrate, config.parity, config.stopbits)
            if config.kind == "serial"
            else 0.0
        )
        self._client: Any = None
        self._lock = threading.Lock()  # the bus thread serialises; this guards scan vs close
        self._last_end = float("-inf")
        self._closed = False
        self._received = bytearray()  # raw bytes of the current transaction (CRC diagnosis)
        self.requests = 0
        self.failures: dict[str, int] = {"no_answer": 0, "frame": 0, "exception": 0}

    def where(self) -> str:
        if self.config.kind == "serial":
            c = self.config
            return f"{self.port} ({c.baudrate} baud, 8{c.parity}{c.stopbits})"
        return f"{self.endpoint[0]}:{self.endpoint[1]}"

    def _recording(self, recv: Callable[[Optional[int]], bytes]) -> Callable[..., bytes]:
        """Wraps the client's recv: a frame that fails its CRC never reaches pymodbus's trace
        hooks, but its bytes tell a damaged frame (wiring, parity) from silence (unit id)."""

        def recv_and_record(size: Optional[int]) -> bytes:
            data = recv(size)
            self._received += data
            return data

        return recv_and_record

    def _connect(self) -> Any:
        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:
            self._client.close()
            self._client = None
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient  # only with a line

        c = self.config
        client: Any
        if c.kind == "serial":
            assert self.port is not None
            client = ModbusSerialClient(
                self.port,
                baudrate=c.baudrate,
                parity=c.parity,
                stopbits=c.stopbits,
                bytesize=8,
                timeout=c.timeout,
                retries=0,
            )
        else:
            client = ModbusTcpClient(
                self.endpoint[0], port=self.endpoint[1], timeout=c.timeout, retries=0
            )
        client.recv = self._recording(client.recv)
        if not client.connect():
            client.close()
            raise NoAnswer(self._cannot_open())
        self._client = client
        return client

    def _cannot_open(self) -> str:
        if self.config.kind == "serial":
            return (
                f"cannot open {self.port}: check the adapter is plugged in and the user is in "
                "group dialout (roomagent doctor)"
            )
        return f"cannot connect to {self.where()}: check the gateway's address, power and network"

    def read_registers(self, unit: int, function: int, address: int, count: int) -> list[int]:
        """`count` registers from `address` of meter `unit` (function 3 or 4)."""
        from pymodbus.exceptions import ModbusException

        with self._lock:
            if self._closed:
                raise NoAnswer(f"{self.where()}: the line is closed")
            wait = self._last_end + self.gap - self.clock()
            if wait > 0:
                self.sleep(wait)
            self.requests += 1
            self._received.clear()
            try:
                client = self._connect()
                read = (
                    client.read_holding_registers
                    if function == READ_HOLDING
                    else client.read_input_registers
                )
                assert function in (READ_HOLDING, READ_INPUT)
                result = read(address, count=count, slave=unit)
            except ModbusError:
                self.failures["no_answer"] += 1
                raise
            except (ModbusException, OSError) as e:
                self._drop()
                raise self._failure(unit, e) from None
            finally:
                self._last_end = self.clock()
            if result.isError():
                code = getattr(result, "exception_code", 0)
                self.failures["exception"] += 1
                raise ExceptionResponse(unit, function, address, code)
            registers = list(result.registers)
            if len(registers) != count:
                self.failures["frame"] += 1
                raise FrameError(f"unit {unit}: asked {count} registers, got {len(registers)}")
            return registers

    def _failure(self, unit: int, e: Exception) -> ModbusError:
        if self._received and self.config.kind == "serial":
            self.failures["frame"] += 1
            return FrameError(
                f"unit {unit} on {self.where()}: {len(self._received)} bytes came back but no "
                "valid frame (CRC error): check the A/B wiring, termination, and that baud rate "
                "and parity match the meter's"
            )
        self.failures["no_answer"] += 1
        if self.config.kind == "tcp" and "onnect" in str(e):
            return NoAnswer(self._cannot_open())
        return NoAnswer(
            f"unit {unit} on {self.where()}: no answer within {self.config.timeout:g} s: check "
            "the unit id, wiring (A/B), and that baud rate and parity match the meter's"
        )

    def _drop(self) -> None:
        """After a failure a TCP connection may be half-dead: the next request opens a new one.
        A serial port stays open (reopening it costs time and fixes nothing on the wire)."""
        if self.config.kind == "tcp" and self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        """For good: a request that comes later fails instead of opening the port again. A
        transaction the bus scheduler walked away from can still be running a driver's read; had
        it reopened the port, it would hold the port's exclusive lock against the line that
        replaces this one (and a freed pseudo-terminal's name is reused at once)."""
        with self._lock:
            self._closed = True
            if self._client is not None:
                self._client.close()
                self._client = None

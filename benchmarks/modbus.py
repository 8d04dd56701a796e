"""Modbus: meter readings per second on one RTU line and over TCP, against same-run baselines.

RTU: an SDM630 (two reads per reading: 36 and 28 registers) served by pymodbus's RTU server on
a simulated RS-485 line (drivers.sim.rs485: two ptys joined by a thread that holds each byte for
its time on the wire), read back to back through agent.sensing.modbus.line at 9600 and 19200 baud,
8N1. The baseline is the line's theoretical frame limit: every request and response frame's bytes
plus the 3.5-character silent interval after each, at 10 bits per character.

TCP: the same meter over loopback Modbus TCP through agent.sensing.modbus.line, against bare
pymodbus (ModbusTcpClient.read_input_registers of the same blocks) in the same run: what our adapter
(gap bookkeeping, error mapping, decoding) costs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent.config.modbus import ModbusLineConfig
from agent.sensing.modbus.line import ModbusLine, char_bits
from benchmarks.harness import Benchmark, Params, Result, figure, target
from drivers import DRIVERS
from drivers.sim.meter import SimMeter
from drivers.sim.modbus_server import SimModbusServer
from drivers.sim.rs485 import SimRS485

REQUEST_BYTES = 8  # unit, function, address (2), count (2), CRC (2)
RESPONSE_OVERHEAD = 5  # unit, function, byte count, CRC (2)


def frame_limit(driver: Any, baudrate: int, parity: str = "N", stopbits: int = 1) -> float:
    """Readings per second the wire allows: bytes of every frame plus the silent intervals."""
    chars = sum(REQUEST_BYTES + RESPONSE_OVERHEAD + 2 * b.count + 2 * 3.5 for b in driver.blocks)
    return baudrate / (chars * char_bits(parity, stopbits))


def _rate(read: Any, seconds: float) -> tuple[float, int]:
    read()  # connect and warm up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        read()
        count += 1
    return count / (time.perf_counter() - start), count


def rtu(meter_name: str, baudrate: int, seconds: float) -> dict[str, Any]:
    cls = DRIVERS[meter_name]
    wire = SimRS485(baudrate, "N", 1)
    server = SimModbusServer({1: SimMeter(cls(None, 1).register_map(), lambda: 3000.0, phases=3)})
    server.start_rtu(wire.server_port, baudrate=baudrate, parity="N", stopbits=1)
    config = ModbusLineConfig("bench", serial="/dev/null", baudrate=baudrate, parity="N",
                              stopbits=1, timeout=1.0)  # fmt: skip
    line = ModbusLine(config, port=wire.client_port)
    driver = cls(line, 1)
    try:
        rate, count = _rate(driver.read, seconds)
    finally:
        line.close()
        server.stop()
        wire.close()
    limit = frame_limit(driver, baudrate)
    return {"readings_per_s": round(rate, 2), "readings": count, "frame_limit_per_s":
            round(limit, 2), "ratio": round(rate / limit, 3), "reads_per_reading":
            len(driver.blocks)}  # fmt: skip


def tcp(meter_name: str, seconds: float) -> dict[str, Any]:
    from pymodbus.client import ModbusTcpClient

    cls = DRIVERS[meter_name]
    server = SimModbusServer({1: SimMeter(cls(None, 1).register_map(), lambda: 3000.0, phases=3)})
    host, port = server.start_tcp()
    line = ModbusLine(ModbusLineConfig("bench", host=host, port=port, timeout=1.0))
    driver = cls(line, 1)
    bare = ModbusTcpClient(host, port=port, timeout=1.0, retries=0)
    bare.connect()

    def bare_read() -> None:
        for b in driver.blocks:
            reply = bare.read_input_registers(b.address, count=b.count, slave=1)
            assert not reply.isError()

    try:
        # Alternated in quarters, so drift of a shared machine's load falls on both alike.
        runs = [(_rate(driver.read, seconds / 4), _rate(bare_read, seconds / 4)) for _ in range(4)]
        n_ours, n_base = sum(o[1] for o, _ in runs), sum(b[1] for _, b in runs)
        ours = sum(o[0] for o, _ in runs) / 4
        base = sum(b[0] for _, b in runs) / 4
    finally:
        bare.close()
        line.close()
        server.stop()
    return {"readings_per_s": round(ours, 1), "requests_per_s": round(ours * len(driver.blocks),
            1), "bare_pymodbus_readings_per_s": round(base, 1), "ratio": round(ours / base, 3),
            "readings": n_ours, "bare_readings": n_base}  # fmt: skip


def run(params: Params, workdir: Path) -> Result:
    meter, seconds = params["meter"], float(params["seconds"])
    out: Result = {"meter": meter, "rtu": {}, "tcp": tcp(meter, seconds)}
    figures, targets = [], []
    for baud in params["baudrates"]:
        r = rtu(meter, int(baud), seconds)
        out["rtu"][str(baud)] = r
        figures.append(figure(
            f"RTU {baud} baud 8N1: {meter} readings/s ({r['reads_per_reading']} reads each)",
            f"{r['readings_per_s']:.2f}/s",
            f"frame limit {r['frame_limit_per_s']:.2f}/s: ratio {r['ratio']:.2f}"))  # fmt: skip
        targets.append(target(f"RTU {baud}: at least half the line's frame limit",
                              r["ratio"] >= 0.5, f"ratio {r['ratio']:.2f}"))  # fmt: skip
    t = out["tcp"]
    bare = t["bare_pymodbus_readings_per_s"]
    figures.append(figure(
        f"Modbus TCP loopback: {meter} readings/s", f"{t['readings_per_s']:.1f}/s",
        f"bare pymodbus {bare:.1f}/s: ratio {t['ratio']:.2f}"))  # fmt: skip
    out["figures"], out["targets"] = figures, targets
    return out


BENCHMARK = Benchmark(
    name="modbus",
    summary="meter readings/s on one RTU line (9600, 19200 baud) vs its frame limit, and TCP",
    sizes={
        "full": {"meter": "sdm630", "baudrates": [9600, 19200], "seconds": 20.0},
        "smoke": {"meter": "sdm630", "baudrates": [9600, 19200], "seconds": 1.0},
    },
    run=run,
)

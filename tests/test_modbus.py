"""Modbus meters against real pymodbus servers: TCP on loopback, RTU on a pty pair.

Register words in the vendor-map tests are written out from the vendors' formats (IEEE 754
floats high word first for Eastron, INT32 low word first x10 for Carlo Gavazzi), not produced
by our encoder.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config.modbus import ModbusLineConfig
from agent.config.schema import ConfigError, loads
from agent.sensing.modbus.energy import EnergyGuard
from agent.sensing.modbus.line import ModbusLine, frame_gap
from agent.tools.scan_modbus import probe
from drivers.em24 import EM24
from drivers.modbus_generic import ModbusGeneric
from drivers.modbus_map import ExceptionResponse, FrameError, ModbusError, NoAnswer
from drivers.sdm120 import SDM120
from drivers.sdm630 import SDM630
from drivers.sim.meter import SimMeter
from drivers.sim.modbus_server import SimModbusServer
from drivers.sim.rs485 import SimRS485
from tests.waiting import wait_until


class Image:
    """A meter whose registers hold fixed words (function -> address -> word)."""

    def __init__(self, words: dict[int, dict[int, int]]) -> None:
        self.image = words

    def words(self, function: int) -> dict[int, int]:
        return self.image.get(function, {})


def serve(meters: dict[int, Any]) -> tuple[SimModbusServer, ModbusLine]:
    server = SimModbusServer(meters)
    host, port = server.start_tcp()
    return server, ModbusLine(ModbusLineConfig("gw", host=host, port=port, timeout=0.3))


@pytest.fixture
def rtu() -> Iterator[tuple[SimModbusServer, ModbusLine, SimRS485]]:
    wire = SimRS485(9600, "N", 1)
    meters = {
        1: SimMeter(SDM120.fields, lambda: 575.0),
        2: SimMeter(SDM630.fields, lambda: 3000.0, phases=3),
    }
    server = SimModbusServer(meters)
    server.start_rtu(wire.server_port, baudrate=9600, parity="N", stopbits=1)
    config = ModbusLineConfig("rs485", serial="/dev/ttyUSB0", baudrate=9600, parity="N",
                              stopbits=1, timeout=0.3)  # fmt: skip
    line = ModbusLine(config, port=wire.client_port)
    # The server comes up on its own thread: a test starts once it answers, not before. Probes
    # half a second apart, so a late answer to one cannot meet the next request on the wire.
    answered = wait_until(lambda: probe(line, 1)[0], timeout=15, every=0.5)
    assert answered, "the simulated line never answered"
    yield server, line, wire
    line.close()
    server.stop()
    wire.close()


# SDM120 input registers: 230.0 V, 2.5 A, 575.0 W, PF 0.95, 50.0 Hz, 1000.0 kWh in, 0 out.
SDM120_WORDS = {4: {
    **{a: 0 for a in range(0x0000, 0x0020)}, **{a: 0 for a in range(0x0046, 0x004C)},
    0x0000: 0x4366, 0x0006: 0x4020, 0x000C: 0x440F, 0x000D: 0xC000,
    0x001E: 0x3F73, 0x001F: 0x3333, 0x0046: 0x4248, 0x0048: 0x447A,
}}  # fmt: skip

# EM24: INT32 least significant word first. 230.0 V = 2300 (0x08FC), 2.5 A = 2500 (0x09C4),
# 575.0 W = 5750 (0x1676), 100000.0 kWh = 1000000 (0x000F4240), 50.0 Hz = 500 (0x01F4).
EM24_WORDS = {3: {
    **{a: 0 for a in range(0x0000, 0x0018)}, **{a: 0 for a in range(0x0028, 0x002A)},
    **{a: 0 for a in range(0x0033, 0x0036)}, **{a: 0 for a in range(0x004E, 0x0050)},
    0x0000: 0x08FC, 0x0002: 0x08FC, 0x0004: 0x08FC, 0x000B: 1648,
    0x000C: 0x09C4, 0x000E: 0x09C4, 0x0010: 0x09C4,
    0x0012: 0x1676, 0x0014: 0x1676, 0x0016: 0x1676, 0x0028: 0x4362, 0x0029: 0x0000,
    0x0033: 0x01F4, 0x0034: 0x4240, 0x0035: 0x000F,
}}  # fmt: skip


def test_sdm120_decodes_the_vendor_format_over_tcp() -> None:
    server, line = serve({1: Image(SDM120_WORDS)})
    try:
        values = SDM120(line, 1).read().values
    finally:
        line.close()
        server.stop()
    assert values["voltage"] == 230.0 and values["current"] == 2.5 and values["power"] == 575.0
    assert values["power_factor"] == pytest.approx(0.95, abs=1e-6)
    assert values["frequency"] == 50.0
    assert values["energy_import"] == 1000.0 and values["energy_export"] == 0.0


def test_em24_decodes_low_word_first_and_is_identified() -> None:
    server, line = serve({5: Image(EM24_WORDS)})
    try:
        values = EM24(line, 5).read().values
        assert EM24.identify(line, 5) == "Carlo Gavazzi EM24DINAV23XE1X"
        assert SDM120.identify(line, 5) is None  # function 4 at 0x0000: nothing there
    finally:
        line.close()
        server.stop()
    assert values["voltage_l1"] == pytest.approx(230.0)
    assert values["current_l2"] == pytest.approx(2.5)
    assert values["power_l3"] == pytest.approx(575.0)
    assert values["power"] == pytest.approx(1725.0)  # 0x4362 = 17250 x 0.1
    assert values["frequency"] == pytest.approx(50.0)
    assert values["energy_import"] == pytest.approx(100000.0)


def test_rtu_line_reads_meters_sharing_it_and_keeps_the_gap(rtu: Any) -> None:
    _, line, _ = rtu
    one = SDM120(line, 1).read().values
    three = SDM630(line, 2).read().values
    assert one["power"] == 575.0 and one["voltage"] == 230.0
    assert three["power"] == 3000.0 and three["power_l2"] == 1000.0
    assert three["current"] == pytest.approx(3000.0 / (230.0 * 0.95), rel=1e-6)
    # 3.5 characters of 10 bits at 9600 baud (Modbus over serial line V1.02, 2.5.1.1)
    assert line.gap == pytest.approx(3.5 * 10 / 9600)
    assert frame_gap(38400, "E", 1) == 0.00175


def test_rtu_faults_make_clear_errors_and_recover(rtu: Any) -> None:
    server, line, wire = rtu
    wire.corrupt_next(1)
    with pytest.raises(FrameError, match="CRC"):
        SDM120(line, 1).read()
    assert SDM120(line, 1).read().values["power"] == 575.0
    server.silence(1)
    start = time.monotonic()
    with pytest.raises(NoAnswer, match=r"unit 1 .*no answer within 0.3 s"):
        SDM120(line, 1).read()
    assert time.monotonic() - start < 3.0  # one timeout, no retries
    # the dead meter does not take the line with it
    assert SDM630(line, 2).read().values["power"] == 3000.0
    server.revive(1)
    assert SDM120(line, 1).read().values["power"] == 575.0


def test_a_closed_line_never_opens_its_port_again() -> None:
    """A driver's read the bus scheduler walked away from can outlive the line's close(). Its
    next request must not reopen the port: the port's exclusive lock would then shut out the
    line that replaces this one (a freed pseudo-terminal's name is reused at once, as a USB
    adapter's is). This once left the next RTU test's line unable to open for 15-20 s, until
    the garbage collector closed the old one."""
    config = ModbusLineConfig("rs485", serial="/dev/ttyUSB0", baudrate=9600, parity="N",
                              stopbits=1, timeout=0.3)  # fmt: skip
    first = SimRS485(9600, "N", 1)
    old = ModbusLine(config, port=first.client_port)
    old.close()
    first.close()
    wire = SimRS485(9600, "N", 1)
    old.port = wire.client_port  # the same name, as the kernel hands it out again
    server = SimModbusServer({1: SimMeter(SDM120.fields, lambda: 575.0)})
    server.start_rtu(wire.server_port, baudrate=9600, parity="N", stopbits=1)
    line = ModbusLine(config, port=wire.client_port)
    try:
        with pytest.raises(NoAnswer, match="the line is closed"):
            SDM120(old, 1).read()
        assert wait_until(lambda: probe(line, 1)[0], timeout=15, every=0.5)
        assert SDM120(line, 1).read().values["power"] == 575.0
    finally:
        line.close()
        server.stop()
        wire.close()


def test_exception_and_wrong_word_order_in_a_generic_map() -> None:
    server, line = serve({1: Image(SDM120_WORDS)})
    try:
        beyond = ModbusGeneric(line, 1, registers=[{"quantity": "power", "address": 0x0200}])
        with pytest.raises(ExceptionResponse, match="exception 2 \\(illegal data address\\)"):
            beyond.read()
        swapped = ModbusGeneric(line, 1, word_order="little",
                                registers=[{"quantity": "voltage", "address": 0}])  # fmt: skip
        with pytest.raises(ModbusError, match="word_order = 'big'"):
            swapped.read()
        right = ModbusGeneric(line, 1, registers=[{"quantity": "voltage", "address": 0}])
        assert right.read().values == {"voltage": 230.0}
    finally:
        line.close()
        server.stop()


def test_tcp_gateway_gone_and_back() -> None:
    server, line = serve({1: Image(SDM120_WORDS)})
    assert SDM120(line, 1).read().values["power"] == 575.0
    host, port = server.address or ("", 0)
    server.stop()
    with pytest.raises(NoAnswer):
        SDM120(line, 1).read()
    again = SimModbusServer({1: Image(SDM120_WORDS)})  # type: ignore[dict-item]
    again.start_tcp(host, port)
    try:
        assert SDM120(line, 1).read().values["power"] == 575.0
    finally:
        line.close()
        again.stop()


def _config(modbus: str, devices: str) -> Any:
    text = '[node]\nid = "n"\nstate_dir = "/tmp"\n' + textwrap.dedent(modbus + devices)
    return loads(text, "node.toml", Path("/tmp"))


SDM120_DEVICE = """
[[devices]]
name = "lights_meter"
driver = "sdm120"
bus = "rs485"
address = 3
interval = 10
"""


def test_config_contract_and_factory_defaults() -> None:
    cfg = _config('[[modbus]]\nname = "rs485"\nserial = "/dev/ttyUSB0"\n', SDM120_DEVICE)
    (line,) = cfg.modbus
    assert (line.baudrate, line.parity, line.stopbits) == (2400, "N", 1)  # SDM120's defaults
    assert cfg.devices[0].bus == "rs485" and cfg.devices[0].address == 3
    tcp = _config('[[modbus]]\nname = "rs485"\ntcp = "10.0.0.5:502"\n', SDM120_DEVICE)
    assert (tcp.modbus[0].host, tcp.modbus[0].port) == ("10.0.0.5", 502)


@pytest.mark.parametrize(
    ("modbus", "key", "message"),
    [
        ('[[modbus]]\nname = "other"\ntcp = "h:502"\n', "devices[0].bus", "no [[modbus]] line"),
        ('[[modbus]]\nname = "rs485"\nserial = "/dev/x"\ntcp = "h:1"\n', "modbus[0]", "either"),
        (
            '[[modbus]]\nname = "rs485"\nserial = "/dev/ttyUSB0"\nparity = "X"\n',
            "modbus[0].parity",
            "'N', 'E' or 'O'",
        ),
        ('[[modbus]]\nname = "rs485"\ntcp = "h:99999"\n', "modbus[0].tcp", "host:port"),
    ],
)
def test_config_errors_name_the_key(modbus: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        _config(modbus, SDM120_DEVICE)
    assert e.value.key == key and message in e.value.message


def test_meters_with_different_factory_settings_need_the_line_set() -> None:
    sdm630 = SDM120_DEVICE.replace('"sdm120"', '"sdm630"').replace("lights_meter", "hvac")
    sdm630 = sdm630.replace("address = 3", "address = 4")
    with pytest.raises(ConfigError, match="2400 N 1; 9600 N 1"):
        _config('[[modbus]]\nname = "rs485"\nserial = "/dev/ttyUSB0"\n', SDM120_DEVICE + sdm630)


def test_counters_never_go_backwards_across_20_restarts_and_a_reset(tmp_path: Path) -> None:
    """A meter read through a real server; the agent restarts 20 times (a new guard from the
    saved file each time); at restart 10 the meter is replaced by one reading 3 kWh."""
    now = [0.0]
    meter = SimMeter(SDM120.fields, lambda: 2000.0, clock=lambda: now[0])
    server, line = serve({1: meter})
    events: list[Any] = []
    published: list[float] = []
    try:
        for restart in range(20):
            guard = EnergyGuard(tmp_path / "meters.json", lambda: now[0], events.append,
                                grid_g_per_kwh=250.0)  # fmt: skip
            if restart == 10:
                meter.reset_counter(3.0)
            for _ in range(5):
                now[0] += 600.0
                values = guard.apply("m", SDM120(line, 1).read().values)
                published.append(values["energy_import"])
                assert values["co2e"] == pytest.approx(values["energy_import"] * 0.25)
            guard.close()
    finally:
        line.close()
        server.stop()
    assert all(b >= a for a, b in zip(published, published[1:]))
    assert [e.state for e in events] == ["counter_reset"]
    # 100 readings 10 min apart at 2 kW, less the 10 minutes between the old meter's last
    # reading and the new one's first (the new meter's 3 kWh were never drawn here)
    assert published[-1] == pytest.approx(2.0 * (100 * 600 - 600) / 3600, rel=1e-4)


def test_24_hours_of_virtual_time_within_0_1_percent(tmp_path: Path) -> None:
    """A day of relay switching (lights 800 W in office hours, HVAC 1500 W cycling every
    20 min), read every minute over TCP: the published kWh against the load's integral."""
    now = [0.0]

    def load(t: float) -> float:
        hour = (t / 3600) % 24
        lights = 800.0 if 8 <= hour < 18 else 0.0
        hvac = 1500.0 if (t // 1200) % 2 == 0 else 0.0
        return lights + hvac

    meter = SimMeter(SDM120.fields, lambda: load(now[0]), clock=lambda: now[0], power_at=load)
    server, line = serve({1: meter})
    guard = EnergyGuard(tmp_path / "m.json", lambda: now[0], lambda e: None, grid_g_per_kwh=0)
    try:
        for _ in range(24 * 60):
            now[0] += 60.0
            kwh = guard.apply("m", SDM120(line, 1).read().values)["energy_import"]
    finally:
        line.close()
        server.stop()
    # Exact: lights 10 h x 0.8 kW = 8 kWh; HVAC on half of every 40 min = 12 h x 1.5 kW = 18.
    assert kwh == pytest.approx(26.0, rel=1e-3)


def test_relay_against_meter(tmp_path: Path) -> None:
    states = {"lights": True}
    events: list[Any] = []
    guard = EnergyGuard(tmp_path / "m.json", time.time, events.append, grid_g_per_kwh=0,
                        relay_states=lambda: states)  # fmt: skip
    for power in (0.0, 0.0, 0.0, 0.0):
        guard.apply("m", {"power": power}, ("lights",), 5.0)
    assert [e.state for e in events] == ["relay_mismatch"]
    assert "relay lights is on but the circuit draws 0.0 W" in events[0].reason
    guard.apply("m", {"power": 400.0}, ("lights",), 5.0)
    states["lights"] = False
    for _ in range(3):
        guard.apply("m", {"power": 400.0}, ("lights",), 5.0)
    assert [e.state for e in events] == ["relay_mismatch", "relay_match", "relay_mismatch"]
    assert "off but the circuit draws 400.0 W" in events[-1].reason


def test_a_dead_meter_is_unavailable_with_its_reason_recovers_and_does_not_stall_the_line(
    rtu: Any,
) -> None:
    """Two meters polled every second by the agent's runners on one line's bus scheduler; one
    goes silent for a while: it is reported unavailable with why, comes back by itself, and the
    other keeps its cadence meanwhile."""
    import asyncio

    from agent.common.clock import SystemClock
    from agent.config.schema import DeviceConfig
    from agent.sensing.buses import Buses
    from agent.sensing.runner import DeviceRunner

    server, line, _ = rtu
    buses = Buses()
    samples: dict[str, list[float]] = {"one": [], "three": []}
    availability: list[tuple[str, bool, Any]] = []

    async def on_sample(sample: Any) -> None:
        samples[sample.device].append(time.monotonic())

    async def on_availability(device: str, available: bool, error: Any) -> None:
        availability.append((device, available, error))

    def runner(name: str, driver: Any) -> DeviceRunner:
        config = DeviceConfig(name, driver.name, 1.0, "rs485", driver.address, timeout=5.0,
                              unavailable_after=2)  # fmt: skip
        return DeviceRunner(config, driver, buses.of(config), SystemClock("synced"), on_sample,
                            on_availability)  # fmt: skip

    async def scenario() -> None:
        one, three = runner("one", SDM120(line, 1)), runner("three", SDM630(line, 2))
        tasks = [asyncio.ensure_future(r.run()) for r in (one, three)]
        await asyncio.sleep(2.5)  # the scenario: both meters polled for a while
        server.silence(1)
        silenced = time.monotonic()
        while not any(a == ("one", False) for a in ((d, ok) for d, ok, _ in availability)):
            await asyncio.sleep(0.1)
            assert time.monotonic() - silenced < 20
        await asyncio.sleep(3.0)  # the scenario: the other meter's samples while one is silent
        window = [t for t in samples["three"] if t > silenced + 1]
        server.revive(1)
        revived = time.monotonic()
        while availability[-1][:2] != ("one", True):
            await asyncio.sleep(0.1)
            assert time.monotonic() - revived < 30
        for r in (one, three):
            r.stopped = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # the live meter kept about its 1 s cadence while its neighbour timed out
        assert len(window) >= 2, samples["three"]

    try:
        asyncio.run(scenario())
    finally:
        buses.shutdown()
    down = next(e for d, ok, e in availability if d == "one" and not ok)
    assert "no answer within 0.3 s" in down and "check the unit id" in down
    assert ("three", False) not in [(d, ok) for d, ok, _ in availability]


def test_a_running_agent_refuses_new_modbus_lines() -> None:
    from agent.app.reconfigure import check_fixed

    old = _config('[[modbus]]\nname = "rs485"\nserial = "/dev/ttyUSB0"\n', SDM120_DEVICE)
    new = _config('[[modbus]]\nname = "rs485"\nserial = "/dev/ttyUSB1"\n', SDM120_DEVICE)
    check_fixed(old, old, "command")
    with pytest.raises(ConfigError, match="restart the service") as e:
        check_fixed(old, new, "command")
    assert e.value.key == "modbus"


def test_scan_modbus_finds_and_names_the_meters_politely(rtu: Any) -> None:
    from agent.tools import scan_modbus as scan

    _, line, _ = rtu
    pauses: list[float] = []
    start = time.monotonic()
    found = scan.scan(line, [1, 2, 3], sleep=pauses.append)
    assert [f.unit for f in found] == [1, 2]
    assert found[0].meters == ("sdm120", "sdm630")  # both Eastron maps read on an Eastron
    assert pauses == [scan.PAUSE_S] * 3  # a pause after every probe
    assert time.monotonic() - start < 10  # unit 3: one timeout (0.3 s here), no retries
    assert scan.parse_units("1-3,7") == [1, 2, 3, 7]
    with pytest.raises(ValueError, match=r"1\.\.247"):
        scan.parse_units("0-300")


def test_doctor_names_the_wiring_symptom(rtu: Any, tmp_path: Path) -> None:
    from agent.tools.doctor_checks import Host
    from agent.tools.doctor_modbus import check_meter, check_port

    _, line, wire = rtu
    cfg = _config('[[modbus]]\nname = "rs485"\nserial = "/dev/ttyUSB0"\n', SDM120_DEVICE)
    meter = cfg.devices[0]  # unit 3: nothing answers there

    def open_bus(name: str) -> ModbusLine:
        return line

    dead = check_meter(meter, open_bus)
    assert dead.ok is False and "unit id" in dead.fix
    from dataclasses import replace

    live = replace(meter, address=1)
    # A live meter passes. The simulated one answers from a thread of this process, which a
    # loaded machine once kept off the CPU past the line's 0.3 s; probes half a second apart,
    # as in the fixture, so that a late answer cannot meet the next request.
    assert wait_until(lambda: check_meter(live, open_bus).ok, timeout=15, every=0.5)
    wire.corrupt_next(1)
    crc = check_meter(live, open_bus)
    assert crc.ok is False and "terminator" in crc.fix
    host = Host(root=tmp_path, service_ids=lambda: (999, frozenset({999})))
    missing = check_port("/dev/ttyUSB0", host)
    assert missing.ok is False and "plug in the USB adapter" in missing.fix

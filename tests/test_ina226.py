"""INA226 driver against the simulated chip.

Expected values come from the INA226 datasheet's Configure/Measure/Calculate example (SBOS547:
10 A through 2 mOhm at 12 V, Current_LSB 1 mA: configuration 4127h, shunt 1F40h = 8000 (20 mV),
bus 2570h = 9584 (11.98 V), calibration 0A00h = 2560, current 2710h = 10000 (10 A), power
12B8h = 4792 (119.8 W)) and from hand computation with its formulas: Cal = trunc(0.00512 /
(Current_LSB x R_shunt)), current = shunt x Cal / 2048, power = current x bus / 20000, shunt
LSB 2.5 µV, bus LSB 1.25 mV, Power_LSB = 25 x Current_LSB.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from drivers import DRIVERS, DriverError
from drivers.sim import SimBus, VirtualClock
from drivers.sim.bus import Transfer
from drivers.sim.ina219 import SimINA219
from drivers.sim.ina226 import SimINA226
from tests import chip_rig

ADDRESS = 0x40
# Power-down recovery 40 µs, then 16 averages of a shunt and a bus conversion at 1.21 ms each
# (the electrical characteristics' maximum for the 1.1 ms setting).
WAIT_DEFAULT = 40e-6 + 16 * 2 * 1.21e-3


make = functools.partial(chip_rig.make, "ina226", SimINA226)
opened = functools.partial(chip_rig.opened, "ina226", SimINA226)
data_writes = chip_rig.data_writes


def env(voltage: float = 12.0, current: float = 0.5) -> Any:
    return chip_rig.env(voltage=voltage, current=current)


def register_reads(bus: SimBus) -> dict[int, bytes]:
    """Register pointer -> the two bytes read from it, for one read() in the log."""
    out: dict[int, bytes] = {}
    for before, after in zip(bus.log, bus.log[1:]):
        if before.kind == "write" and len(before.data) == 1 and after.kind == "read":
            out[before.data[0]] = after.data
    return out


def test_datasheet_configure_measure_calculate_example() -> None:
    # 20 A / 32768 = 610 µA -> Current_LSB 1 mA; trunc(0.00512 / (0.001 * 0.002)) = 2560
    chip = SimINA226(env(voltage=11.98, current=10.0), shunt_ohms=0.002)
    drv, _, bus, _ = make(chip, shunt_ohms=0.002, max_current=20.0)
    drv.open()
    assert b"\x05\x0a\x00" in data_writes(bus)  # calibration 0A00h
    bus.log.clear()
    values = drv.read().values
    reads = register_reads(bus)
    assert reads[0x01] == b"\x1f\x40"  # shunt 8000 x 2.5 µV = 20 mV
    assert reads[0x02] == b"\x25\x70"  # bus 9584 x 1.25 mV = 11.98 V
    assert reads[0x04] == b"\x27\x10"  # current 8000 x 2560 / 2048 = 10000 -> 10 A
    assert reads[0x03] == b"\x12\xb8"  # power 10000 x 9584 / 20000 = 4792 -> 119.8 W
    assert values == {
        "voltage": pytest.approx(11.98),
        "current": pytest.approx(10.0),
        "power": pytest.approx(4792 * 25 * 0.001),
    }


@pytest.mark.parametrize(
    ("shunt", "max_current", "cal", "lsb"),
    [
        (0.1, 0.8192, 2048, 25e-6),  # the defaults: 0.8192/32768 = 25 µA exactly
        (0.1, 0.5, 2560, 20e-6),  # 15.3 µA -> 20 µA; 0.00512/(2e-5*0.1) = 2560
        (0.01, 8.0, 2048, 250e-6),  # 244 µA -> 250 µA; 0.00512/(2.5e-4*0.01) = 2048
        (0.0005, 100.0, 2048, 5e-3),  # 3.05 mA -> 5 mA; 0.00512/(5e-3*5e-4) = 2048
        (0.015, 5.0, 1706, 200e-6),  # 152.6 µA -> 200 µA; 0.00512/(2e-4*0.015) = 1706.7
        # exactly 0.00512/(2e-5*0.01024) = 25000, which plain floating point makes 24999.99...
        (0.01024, 0.5, 25000, 20e-6),
        # 0.08192/32768 = 2.5 µA exactly, which floating point makes 2.5000000000000004 µA
        (1.0, 0.08192, 2048, 2.5e-6),
    ],
)
def test_calibration_by_hand(shunt: float, max_current: float, cal: int, lsb: float) -> None:
    drv, _, _, _ = make(shunt_ohms=shunt, max_current=max_current)
    assert drv.calibration == cal
    # The driver scales by what the truncated register really means: 0.00512 / (cal * R).
    assert drv.current_lsb == pytest.approx(0.00512 / (cal * shunt), rel=1e-12)
    assert drv.current_lsb == pytest.approx(lsb, rel=1e-3)
    assert drv.power_lsb == pytest.approx(25 * drv.current_lsb, rel=1e-12)


def test_opening_conversation_and_delay() -> None:
    drv, _, bus, clock = make()
    drv.open()
    # ids first (read-only), then RST, then the configuration back at its power-on value
    assert bus.log[:4] == [
        Transfer(ADDRESS, "write", b"\xfe"),
        Transfer(ADDRESS, "read", b"\x54\x49"),  # "TI"
        Transfer(ADDRESS, "write", b"\xff"),
        Transfer(ADDRESS, "read", b"\x22\x60"),
    ]
    assert bus.log[4:7] == [
        Transfer(ADDRESS, "write", b"\x00\x80\x00"),
        Transfer(ADDRESS, "write", b"\x00"),
        Transfer(ADDRESS, "read", b"\x41\x27"),
    ]
    # reserved 0x4000 | AVG 16 (010 << 9) | VBUSCT, VSHCT 1.1 ms (100 << 6, << 3) | MODE 000
    assert 0x4000 | 0b010 << 9 | 0b100 << 6 | 0b100 << 3 | 0b000 == 0x4520
    assert data_writes(bus) == [b"\x00\x80\x00", b"\x05\x08\x00", b"\x00\x45\x20"]
    assert clock.sleeps == [0.001]


def test_read_conversation_and_delays() -> None:
    drv, _, bus, clock = opened()
    drv.read()
    assert bus.log[0] == Transfer(ADDRESS, "write", b"\x00\x45\x23")  # MODE 011: triggered
    pointers = [t.data[0] for t in bus.log[1:] if t.kind == "write"]
    # Mask/Enable (CVRF, OVF), shunt, bus, current, power, calibration (reset check)
    assert pointers == [0x06, 0x01, 0x02, 0x04, 0x03, 0x05]
    assert clock.sleeps == [pytest.approx(WAIT_DEFAULT)]  # 38.76 ms


def test_other_averaging_and_conversion_time() -> None:
    drv, _, bus, clock = opened(averaging=1, conversion_time_us=140)
    drv.read()
    # 0x4000 | AVG 1 (000) | CT 140 µs (000, 000) | MODE 011
    assert bus.log[0].data == b"\x00\x40\x03"
    assert clock.sleeps == [pytest.approx(40e-6 + 1 * 2 * 154e-6)]
    drv, _, bus, clock = opened(averaging=1024, conversion_time_us=8244)
    # 0x4000 | AVG 1024 (111 << 9) | CT 8.244 ms (111 << 6, << 3) | MODE 000
    assert drv.config_word(0) == 0x4000 | 0b111 << 9 | 0b111 << 6 | 0b111 << 3 == 0x4FF8
    assert drv.conversion_wait_s == pytest.approx(40e-6 + 1024 * 2 * 9.068e-3)


def test_negative_current_is_twos_complement_and_power_takes_its_sign() -> None:
    drv, _, bus, _ = opened(SimINA226(env(voltage=12.0, current=-0.25)))
    values = drv.read().values
    reads = register_reads(bus)
    # shunt -0.025 V / 2.5 µV = -10000 -> 0x10000 - 10000 = 0xD8F0; Cal 2048: current the same
    # bus 12 V / 1.25 mV = 9600 = 0x2580; power 10000 * 9600 / 20000 = 4800 = 0x12C0 (unsigned)
    assert (reads[0x01], reads[0x04], reads[0x02], reads[0x03]) == (
        b"\xd8\xf0",
        b"\xd8\xf0",
        b"\x25\x80",
        b"\x12\xc0",
    )
    assert values["current"] == pytest.approx(-10000 * 25e-6)  # -0.25 A
    assert values["power"] == pytest.approx(-4800 * 25 * 25e-6)  # -3 W
    assert values["voltage"] == pytest.approx(9600 * 1.25e-3)


@pytest.mark.parametrize(
    ("shunt_code", "bus_code", "volts", "amps"),
    [
        (0, 0, 0.0, 0.0),  # raw zero
        (0, 0x7FFF, 40.95875, 0.0),  # full scale: 32767 x 1.25 mV (the datasheet's 40.96 V)
        (0, 28800, 36.0, 0.0),  # the 36 V input limit
        (-1, 9600, 12.0, -25e-6),  # one LSB below zero
        (32766, 9600, 12.0, 32766 * 25e-6),  # just inside +-81.92 mV
        (-32766, 9600, 12.0, -32766 * 25e-6),
    ],
)
def test_edges_from_raw_codes(shunt_code: int, bus_code: int, volts: float, amps: float) -> None:
    chip = SimINA226()
    chip.forced_raw = (shunt_code, bus_code)
    drv, _, _, _ = opened(chip)
    values = drv.read().values
    assert values["voltage"] == pytest.approx(volts)
    assert values["current"] == pytest.approx(amps)
    power = int(abs(shunt_code) * bus_code / 20000) * 25 * 25e-6  # Cal 2048: current = shunt
    assert values["power"] == pytest.approx(-power if amps < 0 else power)


@pytest.mark.parametrize("current", [-0.8, -0.1, -25e-6, 0.0, 0.001, 0.5, 0.81])
@pytest.mark.parametrize("voltage", [0.0, 5.0, 12.0, 36.0])
def test_round_trip_across_the_range(current: float, voltage: float) -> None:
    drv, _, _, _ = opened(SimINA226(env(voltage, current)))
    values = drv.read().values
    assert values["voltage"] == pytest.approx(voltage, abs=0.000625)  # half of 1.25 mV
    assert values["current"] == pytest.approx(current, abs=12.5e-6)  # half of 25 µA
    assert values["power"] == pytest.approx(current * voltage, abs=0.000625 + 0.001 * voltage)


def test_cvrf_is_cleared_by_reading_mask_enable() -> None:
    drv, _, bus, _ = opened()
    drv.read()  # polled Mask/Enable once, with CVRF set
    assert bus.read_i2c_block_data(ADDRESS, 0x06, 2) == [0x00, 0x00]


def test_stuck_conversion_is_an_error_in_bounded_time() -> None:
    drv, chip, bus, clock = opened()
    chip.stuck = True
    with pytest.raises(DriverError, match="conversion never finished"):
        drv.read()
    assert sum(clock.sleeps) <= 2 * WAIT_DEFAULT + 1e-12
    assert len(clock.sleeps) == 11
    assert [t.data for t in bus.log if t.kind == "write"].count(b"\x06") == 11  # CVRF polls


def test_math_overflow_is_an_error() -> None:
    # 0.1 ohm, max_current 0.5 A: Cal 2560, current = 1.25 x shunt. At 0.7 A the shunt reads
    # 28000 and the current 35000, beyond 16 bits: the chip sets OVF.
    drv, _, _, _ = opened(SimINA226(env(current=0.7)), max_current=0.5)
    with pytest.raises(DriverError, match="overflow"):
        drv.read()


def test_current_beyond_the_shunt_range_is_an_error_not_a_clipped_value() -> None:
    # 1 A through 0.1 ohm is 100 mV: the shunt register stops at 0x7FFF (81.9175 mV).
    drv, _, _, _ = opened(SimINA226(env(current=-1.0)))
    with pytest.raises(DriverError, match=r"81\.9175 mV"):
        drv.read()


def test_out_of_range_voltage_is_still_decoded() -> None:
    # 38 V is beyond the 36 V rating but inside the 40.96 V scale: reported as measured.
    drv, _, _, _ = opened(SimINA226(env(voltage=38.0)))
    assert drv.read().values["voltage"] == pytest.approx(38.0)


def test_chip_that_reset_is_detected_and_reopen_recovers() -> None:
    drv, chip, _, _ = opened()
    drv.read()
    chip.reset()
    with pytest.raises(DriverError, match="reads 0x0000, not 0x0800: the chip was reset"):
        drv.read()
    drv.open()
    assert drv.read().values["current"] == pytest.approx(0.5)


def test_absent_or_silent_chip_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="no chip answers at 0x40"):
        DRIVERS["ina226"](SimBus(), sleep=VirtualClock().sleep).open()
    drv, chip, _, _ = make()
    chip.nack = True
    with pytest.raises(DriverError, match="no chip answers at 0x40"):
        drv.open()


def test_other_chips_are_named() -> None:
    drv, _, bus, _ = make(SimINA226(die_id=0x2270))
    with pytest.raises(DriverError, match=r"die id 0x2270.*INA260"):
        drv.open()
    assert data_writes(bus) == []  # refused before touching anything
    drv, _, _, _ = make(SimINA219())  # no register 0xFE: the INA219 model NACKs the pointer
    with pytest.raises(DriverError, match="no chip answers"):
        drv.open()


def test_close_powers_the_adc_down_and_swallows_bus_errors() -> None:
    drv, chip, bus, _ = opened()
    drv.close()
    assert data_writes(bus) == [b"\x00\x45\x20"]
    chip.nack = True
    drv.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shunt_ohms": -0.1}, "shunt_ohms must be a positive number"),
        ({"max_current": 0.0}, "max_current must be a positive number"),
        ({"max_current": float("inf")}, "max_current must be a positive number"),
        ({"averaging": 8}, r"averaging must be one of \[1, 4, 16, 64, 128, 256, 512, 1024\]"),
        ({"conversion_time_us": 1000}, "conversion_time_us must be one of"),
        ({"max_current": 1.0}, "100 mV is more than the 81.92 mV"),  # 1 A x 0.1 ohm
        ({"shunt_ohms": 0.0001, "max_current": 0.01}, "needs calibration 102400000"),
        ({"averaging": 16.0}, "must be int"),
        ({"bus_voltage_range": 32}, "unknown option 'bus_voltage_range'"),
    ],
)
def test_bad_options_are_rejected_before_any_bus_io(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DRIVERS["ina226"].validate_options(options)


def test_interval_must_cover_the_slowest_reading() -> None:
    DRIVERS["ina226"].validate_interval(1.0, {})  # default: up to 2 x 38.76 ms
    slow = {"averaging": 1024, "conversion_time_us": 8244}  # up to 2 x 18.57 s
    with pytest.raises(ValueError, match="longer than the 30 s interval"):
        DRIVERS["ina226"].validate_interval(30.0, slow)
    DRIVERS["ina226"].validate_interval(40.0, slow)
    # read() gives up after twice the worst case, so the runtime's timeout must allow that
    assert DRIVERS["ina226"].worst_read_time(slow) == pytest.approx(2 * (40e-6 + 2048 * 9.068e-3))
    assert DRIVERS["ina226"].worst_read_time({}) == 1.0


def test_identify() -> None:
    drv, _, bus, _ = make()
    assert DRIVERS["ina226"].identify(bus, ADDRESS) == "INA226 (TI, die 0x2260)"
    assert data_writes(bus) == []  # only register pointers were written
    drv.open()
    assert DRIVERS["ina226"].identify(bus, ADDRESS) == "INA226 (TI, die 0x2260)"  # still
    assert DRIVERS["ina226"].identify(SimBus({ADDRESS: SimINA226(die_id=0x2270)}), ADDRESS) is None
    assert DRIVERS["ina226"].identify(SimBus({ADDRESS: SimINA219()}), ADDRESS) is None
    assert DRIVERS["ina226"].identify(SimBus(), ADDRESS) is None

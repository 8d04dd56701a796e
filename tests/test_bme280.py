"""BME280/BMP280 driver against the simulated chip.

Expected values come from the BMP280 datasheet's worked example (BST-BMP280-DS001, section 3.12:
adc_T = 519888 -> 25.08 °C, adc_P = 415148 -> 100653.27 Pa with the example's trimming values),
from hand-decoded register bytes, and from Bosch's fixed-point reference compensation.
"""

from __future__ import annotations

import pytest

from drivers import DRIVERS, DriverError
from drivers.bme280 import Calibration
from drivers.sim import SimBus
from drivers.sim.bme280 import (
    DATASHEET_CALIBRATION,
    Environment,
    SimBME280,
    humidity_q22_10_int,
    t_fine_int,
    temperature_centi_int,
)
from drivers.sim.bus import Transfer


def no_sleep(seconds: float) -> None:
    pass


def open_driver(chip: SimBME280, name: str = "bme280", **options: int):
    bus = SimBus({0x76: chip})
    drv = DRIVERS[name](bus, None, sleep=no_sleep, **options)
    drv.open()
    return drv, bus


def test_datasheet_worked_example() -> None:
    chip = SimBME280()
    chip.forced_raw = (415148, 519888, 0x6000)
    drv, _ = open_driver(chip)
    values = drv.read().values
    assert values["temperature"] == pytest.approx(25.08, abs=0.005)
    assert values["pressure"] == pytest.approx(1006.5327, abs=0.0005)  # 100653.27 Pa in hPa


def test_bmp280_has_no_humidity_and_same_compensation() -> None:
    chip = SimBME280(chip_id=0x58)
    chip.forced_raw = (415148, 519888, 0)
    drv, bus = open_driver(chip, "bmp280")
    values = drv.read().values
    assert set(values) == {"temperature", "pressure"}
    assert values["temperature"] == pytest.approx(25.08, abs=0.005)
    # A BMP280 burst read is 6 bytes: there is no humidity register to read.
    assert bus.log[-1] == Transfer(0x76, "read", bus.log[-1].data) and len(bus.log[-1].data) == 6


def test_calibration_register_decoding_by_hand() -> None:
    tp = bytes(range(24)) + b"\x00" + bytes([75])
    # dig_H2 = 0x0170 = 368, dig_H3 = 0, E4=0x13 E5=0x2A E6=0x03: H4 = 0x13A = 314, H5 = 0x032 = 50
    h = bytes([0x70, 0x01, 0x00, 0x13, 0x2A, 0x03, 0x1E])
    cal = Calibration.from_registers(tp, h)
    assert (cal.t1, cal.t2) == (0x0100, 0x0302)
    assert (cal.h1, cal.h2, cal.h3, cal.h4, cal.h5, cal.h6) == (75, 368, 0, 314, 50, 30)


def test_calibration_negative_12_bit_and_8_bit_words() -> None:
    tp = bytes(24) + b"\x00\x00"
    # E4=0xFF with E5 low nibble 0xF: H4 = 0xFFF = -1; E6=0x80 with E5 high nibble 0: H5 = 0x800
    # = -2048; E7=0xF6: H6 = -10; E1/E2 = 0xFE 0xFF: H2 = -2.
    h = bytes([0xFE, 0xFF, 0x00, 0xFF, 0x0F, 0x80, 0xF6])
    cal = Calibration.from_registers(tp, h)
    assert (cal.h2, cal.h4, cal.h5, cal.h6) == (-2, -1, -2048, -10)


@pytest.mark.parametrize("adc_t", [300000, 400000, 519888, 600000])
@pytest.mark.parametrize("adc_h", [20000, 27000, 33000])
def test_double_formulas_agree_with_bosch_fixed_point_reference(adc_t: int, adc_h: int) -> None:
    chip = SimBME280()
    chip.forced_raw = (415148, adc_t, adc_h)
    drv, _ = open_driver(chip)
    values = drv.read().values
    cal = DATASHEET_CALIBRATION
    # The reference gives 0.01 °C and 1/1024 %RH steps: the two must agree to that resolution.
    assert values["temperature"] == pytest.approx(
        temperature_centi_int(cal, adc_t) / 100, abs=0.011
    )
    expected_h = humidity_q22_10_int(cal, adc_h, t_fine_int(cal, adc_t)) / 1024
    assert values["humidity"] == pytest.approx(expected_h, abs=0.01)


@pytest.mark.parametrize("temperature", [-39.5, -10.0, -0.25, 0.0, 22.5, 84.0])
def test_round_trip_across_the_range(temperature: float) -> None:
    env = Environment(temperature=temperature, humidity=55.0, pressure=950.0)
    drv, _ = open_driver(SimBME280(lambda: env))
    values = drv.read().values
    assert values["temperature"] == pytest.approx(temperature, abs=0.02)
    assert values["humidity"] == pytest.approx(55.0, abs=0.05)
    assert values["pressure"] == pytest.approx(950.0, abs=0.02)


def test_conversation_follows_the_datasheet() -> None:
    drv, bus = open_driver(SimBME280(), oversampling_humidity=2, oversampling_temperature=4)
    opening = bus.log[:]
    assert opening[0:2] == [Transfer(0x76, "write", b"\xd0"), Transfer(0x76, "read", b"\x60")]
    assert opening[2] == Transfer(0x76, "write", b"\xe0\xb6")  # soft reset
    writes = [t.data for t in opening if t.kind == "write"]
    assert b"\x88" in writes and b"\xe1" in writes  # both calibration blocks were read
    bus.log.clear()
    drv.read()
    w = [t.data for t in bus.log if t.kind == "write"]
    # ctrl_hum first (osrs_h x2 = 0b010), then ctrl_meas (osrs_t x4 = 011, osrs_p x1 = 001, forced)
    assert w[0] == b"\xf2\x02"
    assert w[1] == bytes([0xF4, 0b011_001_01])
    # One burst of all eight data registers: every quantity from the same conversion.
    assert bus.log[-2:] == [
        Transfer(0x76, "write", b"\xf7"),
        Transfer(0x76, "read", bus.log[-1].data),
    ]
    assert len(bus.log[-1].data) == 8


def test_wrong_chip_is_named() -> None:
    bus = SimBus({0x76: SimBME280(chip_id=0x58)})
    with pytest.raises(DriverError, match=r"chip id 0x58, expected 0x60.*BMP280"):
        DRIVERS["bme280"](bus, sleep=no_sleep).open()


def test_absent_chip_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="no chip answers at 0x76"):
        DRIVERS["bme280"](SimBus(), sleep=no_sleep).open()


def test_stuck_conversion_is_an_error_not_a_hang() -> None:
    chip = SimBME280()
    drv, _ = open_driver(chip)
    chip.stuck = True
    with pytest.raises(DriverError, match="never finished"):
        drv.read()


def test_chip_that_reset_is_detected_and_reopen_recovers() -> None:
    chip = SimBME280()
    drv, _ = open_driver(chip)
    chip.reset()  # loses ctrl_hum: humidity comes back as the 'skipped' code 0x8000
    chip.registers[0xF2] = 0
    chip.write_register(0xF4, 0b001_001_01)
    with pytest.raises(DriverError, match="skipped"):
        drv.decode(bytes(chip.registers[0xF7:0xFF]))
    drv.open()
    assert 20 < drv.read().values["temperature"] < 22


def test_bad_options_are_rejected_before_any_bus_io() -> None:
    with pytest.raises(ValueError, match="oversampling_temperature must be one of"):
        DRIVERS["bme280"].validate_options({"oversampling_temperature": 3})
    with pytest.raises(ValueError, match="unknown option 'gain'"):
        DRIVERS["bme280"].validate_options({"gain": 2})

"""INA219 driver against the simulated chip.

Expected values are hand-computed from the INA219 datasheet (SBOS448G): Cal = trunc(0.04096 /
(Current_LSB x R_shunt)), Current_LSB = max current / 2^15 rounded up to a round value,
Power_LSB = 20 x Current_LSB, shunt LSB 10 µV, bus LSB 4 mV in bits 15..3, current = shunt x
Cal / 4096, power = current x bus / 5000. The calibration example is Adafruit_INA219's
"32V_2A" set-up (0.1 ohm shunt, 3.2 A possible: Current_LSB 100 µA, Cal 4096 = 0x1000, Power_LSB
2 mW), which the datasheet's 8.5.1 procedure also gives.
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
# Leaving power-down (40 µs), then one shunt and one bus 12-bit conversion at their 586 µs maximum.
WAIT_1_SAMPLE = 40e-6 + 2 * 586e-6


make = functools.partial(chip_rig.make, "ina219", SimINA219)
opened = functools.partial(chip_rig.opened, "ina219", SimINA219)
data_writes = chip_rig.data_writes


def env(voltage: float = 12.0, current: float = 0.5) -> Any:
    return chip_rig.env(voltage=voltage, current=current)


def test_adafruit_32v_2a_calibration() -> None:
    drv, _, bus, _ = make()  # shunt 0.1 ohm, max_current 3.2 A: the defaults
    # 3.2 / 32768 = 97.66 µA -> 100 µA; trunc(0.04096 / (0.0001 * 0.1)) = 4096
    assert drv.calibration == 4096
    assert drv.current_lsb == pytest.approx(100e-6, rel=1e-12)
    assert drv.power_lsb == pytest.approx(20 * 100e-6, rel=1e-12)  # 2 mW
    drv.open()
    assert b"\x05\x10\x00" in data_writes(bus)  # 0x1000, MSB first


@pytest.mark.parametrize(
    ("shunt", "max_current", "cal", "lsb"),
    [
        (0.1, 1.0, 8192, 50e-6),  # 1/32768 = 30.5 µA -> 50 µA; 0.04096/(5e-5*0.1) = 8192
        (0.01, 10.0, 8192, 500e-6),  # 305 µA -> 500 µA; 0.04096/(5e-4*0.01) = 8192
        (0.1, 0.81, 16384, 25e-6),  # 24.7 µA -> 25 µA; 0.04096/(2.5e-5*0.1) = 16384
        (0.05, 2.0, 8192, 100e-6),  # 61 µA -> 100 µA; 0.04096/(1e-4*0.05) = 8192
        (0.033, 3.0, 12412, 100e-6),  # 91.6 µA -> 100 µA; 0.04096/3.3e-6 = 12412.1
        # 0.04096/(1e-4*0.03) = 13653.3 -> 13653, odd: bit 0 (FS0) does not exist -> 13652
        (0.03, 3.0, 13652, 100e-6),
    ],
)
def test_calibration_by_hand(shunt: float, max_current: float, cal: int, lsb: float) -> None:
    drv, _, _, _ = make(SimINA219(shunt_ohms=shunt), shunt_ohms=shunt, max_current=max_current)
    assert drv.calibration == cal
    # The driver scales by what the truncated register really means: 0.04096 / (cal * R).
    assert drv.current_lsb == pytest.approx(0.04096 / (cal * shunt), rel=1e-12)
    assert drv.current_lsb == pytest.approx(lsb, rel=1e-4)
    drv.open()  # the chip keeps the value: FS0 would have been dropped
    assert drv.read().values["current"] == pytest.approx(0.5, abs=drv.current_lsb)


def test_opening_conversation_and_delay() -> None:
    drv, _, bus, clock = make()
    drv.open()
    assert bus.log[0] == Transfer(ADDRESS, "write", b"\x00\x80\x00")  # RST
    assert bus.log[1:3] == [
        Transfer(ADDRESS, "write", b"\x00"),
        Transfer(ADDRESS, "read", b"\x39\x9f"),  # back at its power-on value: an INA219
    ]
    # BRNG 32 V (0x2000) | PGA /8 (0b11 << 11) | BADC and SADC 12-bit (0b0011 << 7, << 3) |
    # MODE power-down (000) = 0x3998
    assert 0x2000 | 0b11 << 11 | 0b0011 << 7 | 0b0011 << 3 | 0b000 == 0x3998
    assert data_writes(bus) == [b"\x00\x80\x00", b"\x05\x10\x00", b"\x00\x39\x98"]
    assert clock.sleeps == [0.001]


def test_read_conversation_and_delays() -> None:
    drv, _, bus, clock = opened()
    drv.read()
    # Same word with MODE = shunt and bus, triggered (011): 0x399B starts one conversion.
    assert bus.log[0] == Transfer(ADDRESS, "write", b"\x00\x39\x9b")
    pointers = [t.data[0] for t in bus.log[1:] if t.kind == "write"]
    # bus voltage (CNVR/OVF), shunt, current, power, calibration (reset check)
    assert pointers == [0x02, 0x01, 0x04, 0x03, 0x05]
    assert clock.sleeps == [pytest.approx(WAIT_1_SAMPLE)]


def test_sixteen_volt_range_low_gain_and_averaging_config() -> None:
    # 0.4 A x 0.1 ohm = 40 mV: PGA /1 is the smallest range that holds it.
    chip = SimINA219(env(voltage=5.0, current=0.2))
    drv, _, bus, clock = opened(chip, max_current=0.4, bus_voltage_range=16, averaging=128)
    assert drv.read().values["current"] == pytest.approx(0.2)
    # BRNG 16 V (0) | PGA /1 (00) | BADC, SADC 128 samples (0b1111 << 7, << 3) | MODE 011
    assert 0b1111 << 7 | 0b1111 << 3 | 0b011 == 0x07FB
    assert bus.log[0].data == b"\x00\x07\xfb"
    assert clock.sleeps == [pytest.approx(40e-6 + 2 * 128 * 586e-6)]  # 150.056 ms


@pytest.mark.parametrize(
    ("max_current", "pga_bits"),
    [(0.4, 0b00), (0.41, 0b01), (0.8, 0b01), (1.6, 0b10), (1.61, 0b11), (3.2, 0b11)],
)
def test_gain_is_the_smallest_range_that_fits(max_current: float, pga_bits: int) -> None:
    drv, _, _, _ = make(max_current=max_current)  # 0.1 ohm: 40, 80, 160, 320 mV ranges
    assert (drv.config_word(0) >> 11) & 0b11 == pga_bits


def test_decode_by_hand() -> None:
    drv, _, bus, _ = opened(SimINA219(env(voltage=12.0, current=0.5)))
    values = drv.read().values
    reads = [t.data for t in bus.log if t.kind == "read"]
    # bus 12 V / 4 mV = 3000 = 0x0BB8, << 3 = 0x5DC0, | CNVR (0x2) = 0x5DC2
    # shunt 0.5 A * 0.1 ohm / 10 µV = 5000 = 0x1388; current = 5000 * 4096 / 4096 = 5000
    # power = 5000 * 3000 / 5000 = 3000 = 0x0BB8
    assert reads[:4] == [b"\x5d\xc2", b"\x13\x88", b"\x13\x88", b"\x0b\xb8"]
    assert values == {
        "voltage": pytest.approx(3000 * 0.004),
        "current": pytest.approx(5000 * 100e-6),
        "power": pytest.approx(3000 * 0.002),
    }


def test_negative_current_is_twos_complement_and_power_takes_its_sign() -> None:
    drv, _, bus, _ = opened(SimINA219(env(voltage=12.0, current=-1.25)))
    values = drv.read().values
    reads = [t.data for t in bus.log if t.kind == "read"]
    # shunt -12500 -> 0x10000 - 12500 = 53036 = 0xCF2C; current the same (cal 4096);
    # power register |-12500| * 3000 / 5000 = 7500 = 0x1D4C (unsigned, as on the chip)
    assert reads[1:4] == [b"\xcf\x2c", b"\xcf\x2c", b"\x1d\x4c"]
    assert values["current"] == pytest.approx(-12500 * 100e-6)  # -1.25 A
    assert values["power"] == pytest.approx(-7500 * 0.002)  # -15 W: flowing back


@pytest.mark.parametrize(
    ("shunt_code", "bus_code", "volts", "amps"),
    [
        (0, 0, 0.0, 0.0),  # raw zero
        (0, 8000, 32.0, 0.0),  # the datasheet's full scale: 32 V = 8000 = 0x1F40
        (0, 0x1FFF, 8191 * 0.004, 0.0),  # the largest code BD12..BD0 can hold
        (-1, 2500, 10.0, -100e-6),  # one LSB below zero
        (31999, 2500, 10.0, 31999 * 100e-6),  # just inside the +-320 mV range
        (-31999, 2500, 10.0, -31999 * 100e-6),
    ],
)
def test_edges_from_raw_codes(shunt_code: int, bus_code: int, volts: float, amps: float) -> None:
    chip = SimINA219()
    chip.forced_raw = (shunt_code, bus_code)
    drv, _, _, _ = opened(chip)
    values = drv.read().values
    assert values["voltage"] == pytest.approx(volts)
    assert values["current"] == pytest.approx(amps)
    # power register = trunc(|current| * bus / 5000), LSB 2 mW, signed like the current
    power = int(abs(shunt_code) * bus_code / 5000) * 0.002
    assert values["power"] == pytest.approx(-power if amps < 0 else power)


@pytest.mark.parametrize("current", [-3.1, -0.75, -0.0001, 0.0, 0.0001, 0.42, 2.5, 3.19])
@pytest.mark.parametrize("voltage", [0.0, 3.3, 12.0, 26.0])
def test_round_trip_across_the_range(current: float, voltage: float) -> None:
    drv, _, _, _ = opened(SimINA219(env(voltage, current)))
    values = drv.read().values
    assert values["voltage"] == pytest.approx(voltage, abs=0.002)  # half of 4 mV
    assert values["current"] == pytest.approx(current, abs=50e-6)  # half of 100 µA
    assert values["power"] == pytest.approx(current * voltage, abs=0.003 + 0.01 * voltage)


def test_shunt_resistance_differs_from_the_breakout() -> None:
    # A 10 mOhm shunt for up to 10 A: 0.01 * 10 = 100 mV -> PGA /4, Cal 8192, LSB 500 µA.
    chip = SimINA219(env(voltage=24.0, current=-7.3), shunt_ohms=0.01)
    drv, _, _, _ = opened(chip, shunt_ohms=0.01, max_current=10.0)
    values = drv.read().values
    # shunt -73 mV = -7300; current = -7300 * 8192 / 4096 = -14600 -> * 500 µA = -7.3 A
    assert values["current"] == pytest.approx(-14600 * 500e-6)
    # power = 14600 * 6000 / 5000 = 17520 -> * 20 * 500 µA = 175.2 W
    assert values["power"] == pytest.approx(-17520 * 0.01)


def test_reading_power_clears_cnvr_as_the_datasheet_says() -> None:
    drv, _, bus, _ = opened()
    drv.read()  # read the power register after the bus register
    assert bus.read_i2c_block_data(ADDRESS, 0x02, 2)[1] & 0x02 == 0


def test_calibration_bit_0_does_not_exist() -> None:
    # Datasheet: FS0 is a void bit, always 0 (TI's forum: 0x7FFF written reads 0x7FFE).
    _, _, bus, _ = make()
    bus.write_i2c_block_data(ADDRESS, 0x05, [0x7F, 0xFF])
    assert bus.read_i2c_block_data(ADDRESS, 0x05, 2) == [0x7F, 0xFE]


def test_stuck_conversion_is_an_error_in_bounded_time() -> None:
    drv, chip, bus, clock = opened()
    chip.stuck = True
    with pytest.raises(DriverError, match="conversion never finished"):
        drv.read()
    # the datasheet's worst case, then at most the same again while polling CNVR
    assert sum(clock.sleeps) <= 2 * WAIT_1_SAMPLE + 1e-12
    assert len(clock.sleeps) == 11
    assert [t.data for t in bus.log if t.kind == "write"].count(b"\x02") == 11  # CNVR polls


def test_math_overflow_is_an_error() -> None:
    # max_current 0.81 A: Cal 16384 (current = 4 x shunt), PGA /4 (+-160 mV). At 1 A the shunt
    # reads 10000 and the current 40000, beyond 16 bits: the chip sets OVF.
    drv, _, _, _ = opened(SimINA219(env(current=1.0)), max_current=0.81)
    with pytest.raises(DriverError, match="overflow"):
        drv.read()


def test_current_beyond_the_shunt_range_is_an_error_not_a_clipped_value() -> None:
    # 5 A through 0.1 ohm is 500 mV: the shunt register stops at 32000 (320 mV) and, with
    # Cal 4096, the current register at 32000 without any overflow flag.
    drv, _, _, _ = opened(SimINA219(env(current=5.0)))
    with pytest.raises(DriverError, match="320 mV"):
        drv.read()


def test_out_of_range_voltage_is_still_decoded() -> None:
    # 30 V is beyond the INA219's 26 V rating but inside its 32 V scale: reported as measured,
    # for the agent to judge.
    drv, _, _, _ = opened(SimINA219(env(voltage=30.0)))
    assert drv.read().values["voltage"] == pytest.approx(30.0)


def test_chip_that_reset_is_detected_and_reopen_recovers() -> None:
    drv, chip, _, _ = opened()
    drv.read()
    chip.reset()  # brown-out: calibration back to 0, configuration to 0x399F
    with pytest.raises(DriverError, match="reads 0x0000, not 0x1000: the chip was reset"):
        drv.read()
    drv.open()
    assert drv.read().values["current"] == pytest.approx(0.5)


def test_absent_or_silent_chip_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="no chip answers at 0x40"):
        DRIVERS["ina219"](SimBus(), sleep=VirtualClock().sleep).open()
    drv, chip, _, _ = make()
    chip.nack = True
    with pytest.raises(DriverError, match="no chip answers at 0x40"):
        drv.open()


def test_an_ina226_is_named() -> None:
    drv, _, _, _ = make(SimINA226())
    with pytest.raises(DriverError, match=r"reads 0x4127 after a reset.*use driver 'ina226'"):
        drv.open()


def test_read_before_open() -> None:
    drv, _, _, _ = make()
    with pytest.raises(DriverError, match="before open"):
        drv.read()


def test_close_powers_the_adc_down_and_swallows_bus_errors() -> None:
    drv, chip, bus, _ = opened()
    drv.close()
    assert data_writes(bus) == [b"\x00\x39\x98"]  # MODE 000: power-down
    chip.nack = True
    drv.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shunt_ohms": 0.0}, "shunt_ohms must be a positive number"),
        ({"shunt_ohms": float("nan")}, "shunt_ohms must be a positive number"),
        ({"max_current": -1.0}, "max_current must be a positive number"),
        ({"bus_voltage_range": 24}, r"bus_voltage_range must be one of \[16, 32\]"),
        ({"averaging": 3}, "averaging must be one of"),
        ({"max_current": 5.0}, "500 mV is more than the 320 mV"),  # 5 A x 0.1 ohm
        ({"shunt_ohms": 0.001, "max_current": 0.1}, "needs calibration 8192000"),
        ({"shunt_ohms": "0.1"}, "must be float"),
        ({"gain": 8}, "unknown option 'gain'"),
    ],
)
def test_bad_options_are_rejected_before_any_bus_io(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DRIVERS["ina219"].validate_options(options)


def test_interval_must_cover_the_slowest_reading() -> None:
    DRIVERS["ina219"].validate_interval(1.0, {"averaging": 128})  # up to 2 x 150 ms
    with pytest.raises(ValueError, match=r"longer than the 0\.2 s interval"):
        DRIVERS["ina219"].validate_interval(0.2, {"averaging": 128})
    assert DRIVERS["ina219"].worst_read_time({"averaging": 128}) == 1.0  # the base's floor


def test_identify() -> None:
    drv, _, bus, _ = make()
    assert DRIVERS["ina219"].identify(bus, ADDRESS) == "INA219?"
    assert data_writes(bus) == []  # only the register pointer was written
    drv.open()  # now configured (power-down 0x3998): no longer recognisable
    assert DRIVERS["ina219"].identify(bus, ADDRESS) is None
    assert DRIVERS["ina219"].identify(SimBus({ADDRESS: SimINA226()}), ADDRESS) is None
    assert DRIVERS["ina219"].identify(SimBus(), ADDRESS) is None

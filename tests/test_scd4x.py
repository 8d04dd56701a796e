"""SCD4x driver against the simulated chip.

Expected values come from the SCD4x datasheet's examples: set_ambient_pressure 98'700 Pa =
0x03db CRC 0x42 and the serial 0xf896 0x9f07 0x3bbe (v1.1, read in full); read_measurement 0x01f4
0x6667 0x5eb9 = 500 ppm, 25 °C, 37 %RH, set_temperature_offset 5.4 °C = 0x07e6 CRC 0x48 and
set_sensor_altitude 1950 m = 0x079e CRC 0x09 (the same datasheet's examples as quoted, their
CRCs consistent with CRC-8); from Sensirion's embedded-i2c-scd4x (default offset word 1498); and
from hand arithmetic with the published formulas T = -45 + 175 * w / 65535, RH = 100 * w / 65535.
"""

from __future__ import annotations

import pytest

from drivers import DRIVERS, CRCError, DriverError
from drivers.sensirion import crc8
from drivers.sim import SimBus, VirtualClock
from drivers.sim.bme280 import SimBME280
from drivers.sim.bus import NACK_ERRNO, Transfer
from drivers.sim.environment import Environment
from drivers.sim.scd4x import IDLE, LOW_POWER, PERIODIC, SimSCD4x

ADDR = 0x62
SERIAL_BYTES = bytes([0xF8, 0x96, 0x31, 0x9F, 0x07, 0xC2, 0x3B, 0xBE, 0x89])  # datasheet


def word(value: int) -> bytes:
    """A word as sent on the wire, for words the datasheet gives no example of."""
    pair = value.to_bytes(2, "big")
    return pair + bytes([crc8(pair)])


def make(chip: SimSCD4x | None = None, **options: object):
    clock = VirtualClock()
    chip = chip or SimSCD4x()
    bus = SimBus({ADDR: chip}, clock=clock)
    drv = DRIVERS["scd4x"](bus, sleep=clock.sleep, **options)
    return drv, chip, bus, clock


def opened(chip: SimSCD4x | None = None, **options: object):
    drv, chip, bus, clock = make(chip, **options)
    drv.open()
    return drv, chip, bus, clock


def writes(bus: SimBus) -> list[bytes]:
    return [t.data for t in bus.log if t.kind == "write"]


# --- decoding -----------------------------------------------------------------------------------


def test_datasheet_read_measurement_example() -> None:
    chip = SimSCD4x()
    chip.forced_raw = (0x01F4, 0x6667, 0x5EB9)
    drv, _, bus, _ = opened(chip)
    values = drv.read().values
    # Quoted copies of this example carry CRC 0x7b after 0x01f4, which CRC-8 does not give: CRC-8
    # (poly 0x31, init 0xff) of 0x01 0xf4 is 0x33, as other drivers' tests of it use.
    assert bus.log[-1] == Transfer(
        ADDR, "read", bytes([0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C])
    )
    assert values["co2"] == 500
    # -45 + 175 * 26215 / 65535 = 25.00267; 100 * 24249 / 65535 = 37.00160 (datasheet: 25, 37)
    assert values["temperature"] == pytest.approx(25.00267, abs=1e-5)
    assert values["humidity"] == pytest.approx(37.00160, abs=1e-5)


@pytest.mark.parametrize(
    ("raw", "co2", "temperature", "humidity"),
    [
        ((1, 0x0000, 0x0000), 1, -45.0, 0.0),  # code 0: the bottom of both scales
        ((0xFFFF, 0xFFFF, 0xFFFF), 65535, 130.0, 100.0),  # full scale: -45 + 175, 100
        # 0x3333 = 13107 = 65535 / 5: -45 + 175 / 5 = -10 exactly; 100 * 32768 / 65535
        ((400, 0x3333, 0x8000), 400, -10.0, 50.000763),
        # 175 * 4096 / 65535 = 10.937667 -> -34.062333; 100 * 16384 / 65535 = 25.000381
        ((2000, 0x1000, 0x4000), 2000, -34.062333, 25.000381),
    ],
)
def test_decoding_edges_and_negative_temperatures(
    raw: tuple[int, int, int], co2: int, temperature: float, humidity: float
) -> None:
    chip = SimSCD4x()
    chip.forced_raw = raw
    drv, _, _, _ = opened(chip)
    values = drv.read().values
    assert values == {
        "co2": co2,
        "temperature": pytest.approx(temperature, abs=1e-6),
        "humidity": pytest.approx(humidity, abs=1e-6),
    }


@pytest.mark.parametrize("temperature", [-10.0, 0.0, 21.0, 45.5])
def test_round_trip_through_the_chip(temperature: float) -> None:
    env = Environment(temperature=temperature, humidity=62.5, co2=1234.0)
    drv, _, _, _ = opened(SimSCD4x(lambda: env))
    values = drv.read().values
    # one tick is 175 / 65535 = 0.0027 °C and 100 / 65535 = 0.0015 %RH
    assert values["temperature"] == pytest.approx(temperature, abs=0.0014)
    assert values["humidity"] == pytest.approx(62.5, abs=0.0008)
    assert values["co2"] == 1234


def test_out_of_range_environment_is_reported_as_the_chip_says() -> None:
    env = Environment(temperature=100.0, humidity=45.0, co2=45000.0)
    drv, chip, _, _ = opened(SimSCD4x(lambda: env))
    values = drv.read().values
    assert values["temperature"] == pytest.approx(100.0, abs=0.0014)  # the agent rejects it
    assert values["co2"] == 45000
    # Beyond the converter's range the chip can only say full scale: 130 °C.
    chip.environment = lambda: Environment(temperature=200.0)
    assert drv.read().values["temperature"] == 130.0


def test_the_temperature_offset_is_subtracted_by_the_chip() -> None:
    # The sim's sensor runs 4 °C warm; the default offset (4 °C) cancels it, 6 °C reads 2 lower.
    env = Environment(temperature=21.0)
    default, _, _, _ = opened(SimSCD4x(lambda: env))
    warmer, chip, _, _ = opened(SimSCD4x(lambda: env), temperature_offset=6.0)
    assert default.read().values["temperature"] == pytest.approx(21.0, abs=0.003)
    assert warmer.read().values["temperature"] == pytest.approx(19.0, abs=0.003)
    assert chip.temperature_offset == pytest.approx(6.0, abs=0.003)


# --- the conversation ---------------------------------------------------------------------------


def test_open_follows_the_datasheet_with_its_example_words() -> None:
    drv, chip, bus, clock = make(temperature_offset=5.4, altitude=1950, ambient_pressure=987.0)
    drv.open()
    assert bus.log == [
        Transfer(ADDR, "write", b"\x3f\x86"),  # stop: it may be measuring since another run
        Transfer(ADDR, "write", b"\x36\x82"),  # get_serial_number
        Transfer(ADDR, "read", SERIAL_BYTES),
        Transfer(ADDR, "write", b"\x24\x1d\x07\xe6\x48"),  # offset 5.4 °C (datasheet example)
        Transfer(ADDR, "write", b"\x24\x27\x07\x9e\x09"),  # altitude 1950 m (datasheet example)
        Transfer(ADDR, "write", b"\xe0\x00\x03\xdb\x42"),  # 98'700 Pa (datasheet example)
        Transfer(ADDR, "write", b"\x21\xb1"),  # start_periodic_measurement
    ]
    # 500 ms after stop, then each command's 1 ms; start has no execution time.
    assert clock.sleeps == [0.5, 0.001, 0.001, 0.001, 0.001]
    assert drv.serial == 273_325_796_834_238  # the datasheet's decimal value of that serial
    assert chip.mode == PERIODIC and chip.altitude == 1950 and chip.ambient_pressure == 987


def test_open_defaults_and_low_power() -> None:
    _, chip, bus, _ = opened(low_power=True)
    # 4 °C * 65535 / 175 = 1497.94 -> 1498 = 0x05da (Sensirion's example value for 4 °C)
    assert writes(bus)[2:] == [
        b"\x24\x1d" + word(0x05DA),
        b"\x24\x27" + word(0),
        b"\x21\xac",  # start_low_power_periodic_measurement; no ambient pressure written
    ]
    assert chip.mode == LOW_POWER and chip.ambient_pressure is None


def test_read_polls_data_ready_then_reads_once() -> None:
    drv, _, bus, clock = opened()
    started = clock.now
    bus.log.clear()
    clock.sleeps.clear()
    drv.read()
    w = writes(bus)
    assert set(w[:-1]) == {b"\xe4\xb8"} and w[-1] == b"\xec\x05"
    reads = [t.data for t in bus.log if t.kind == "read"]
    assert all(len(r) == 3 for r in reads[:-1]) and len(reads[-1]) == 9
    assert reads[-2] == word(0x8006)  # ready: low 11 bits non-zero (the high bits mean nothing)
    assert all(r == word(0x8000) for r in reads[:-2])  # not ready: only high bits set
    # 1 ms after each command, 100 ms between polls; the sample came 5 s after the start.
    assert clock.sleeps[:4] == [0.001, 0.1, 0.001, 0.1]
    assert clock.sleeps[-2:] == [0.001, 0.001]
    assert 5.0 <= clock.now - started < 5.11


def test_low_power_read_waits_for_the_30_s_sample() -> None:
    drv, _, _, clock = opened(low_power=True)
    started = clock.now
    drv.read()
    assert 30.0 <= clock.now - started < 30.6
    assert 0.5 in clock.sleeps  # a slower poll for a slower chip


def test_compensate_sends_pressure_only_when_it_changed() -> None:
    drv, chip, bus, clock = opened()
    bus.log.clear()
    clock.sleeps.clear()
    drv.compensate({"pressure": 987.4})
    assert writes(bus) == [b"\xe0\x00\x03\xdb\x42"]  # 987 hPa = 98'700 Pa: datasheet bytes
    assert clock.sleeps == [0.001] and chip.ambient_pressure == 987
    drv.compensate({"pressure": 988.1})  # moved 0.7 hPa: not worth a write
    assert len(writes(bus)) == 1
    drv.compensate({"pressure": 988.6})  # 1.2 hPa from what was sent
    assert writes(bus)[-1] == b"\xe0\x00" + word(989)
    assert chip.ambient_pressure == 989
    drv.read()  # accepted while measuring: the chip is still running
    assert chip.mode == PERIODIC


def test_compensate_rounds_to_the_nearest_hpa() -> None:
    drv, chip, bus, _ = opened()
    drv.compensate({"pressure": 1002.6})
    assert writes(bus)[-1] == b"\xe0\x00" + word(1003)
    assert chip.ambient_pressure == 1003


def test_without_a_fresh_pressure_it_falls_back_to_the_altitude() -> None:
    drv, chip, bus, _ = opened(altitude=1950)
    drv.compensate({})  # nothing sent yet: the chip already uses the altitude from open()
    assert writes(bus)[-1] == b"\x21\xb1"
    drv.compensate({"pressure": 810.0})
    drv.compensate({})
    # The altitude is refused while measuring, so its standard-atmosphere pressure is sent:
    # 1013.25 * (1 - 2.25577e-5 * 1950) ** 5.25588 = 1013.25 * 0.956013 ** 5.25588 = 799.9 hPa
    assert writes(bus)[-2:] == [b"\xe0\x00" + word(810), b"\xe0\x00" + word(800)]
    assert chip.mode == PERIODIC and chip.ambient_pressure == 800
    drv.compensate({})  # only once
    # A pressure the chip cannot take (valid: 700..1200 hPa) counts as none.
    drv.compensate({"pressure": 650.0})
    assert writes(bus)[-1] == b"\xe0\x00" + word(800)
    drv.compensate({"pressure": 1013.0})
    drv.compensate({"pressure": 1213.0})
    assert writes(bus)[-2:] == [b"\xe0\x00" + word(1013), b"\xe0\x00" + word(800)]


def test_the_ambient_pressure_option_is_the_fallback_when_set() -> None:
    drv, _, bus, _ = opened(ambient_pressure=950.0)
    drv.compensate({})
    assert writes(bus)[-1] == b"\x21\xb1"  # 950 hPa already sent in open()
    drv.compensate({"pressure": 960.0})
    drv.compensate({})
    assert writes(bus)[-2:] == [b"\xe0\x00" + word(960), b"\xe0\x00" + word(950)]


def test_close_stops_measuring_and_waits_for_the_chip() -> None:
    drv, chip, bus, clock = opened()
    drv.close()
    assert writes(bus)[-1] == b"\x3f\x86" and clock.sleeps[-1] == 0.5
    assert chip.mode == IDLE
    chip.nack = True
    drv.close()  # swallowed: close must not fail


def test_settings_are_never_persisted_to_eeprom() -> None:
    drv, chip, _, _ = opened(temperature_offset=6.0, altitude=500)
    drv.compensate({"pressure": 990.0})
    drv.read()
    drv.close()
    assert chip.persist_count == 0 and 0x3615 not in chip.commands


# --- faults -------------------------------------------------------------------------------------


def test_absent_chip() -> None:
    drv = DRIVERS["scd4x"](SimBus(), sleep=VirtualClock().sleep)
    with pytest.raises(DriverError, match="no chip answers at 0x62"):
        drv.open()


def test_read_before_open_and_after_close_is_an_error() -> None:
    drv, _, bus, _ = make()
    with pytest.raises(DriverError, match="before open"):
        drv.read()
    drv.open()
    drv.close()
    drv.compensate({"pressure": 990.0})  # closed: nothing is sent
    assert writes(bus)[-1] == b"\x3f\x86"
    with pytest.raises(DriverError, match="before open"):
        drv.read()


def test_nack_during_read_is_an_os_error_for_the_runtime() -> None:
    drv, chip, _, _ = opened()
    chip.nack = True
    with pytest.raises(OSError) as e:
        drv.read()
    assert e.value.errno == NACK_ERRNO


def test_bad_crc_is_a_crc_error() -> None:
    drv, chip, _, _ = opened()
    chip.corrupt_checksum = True
    with pytest.raises(CRCError, match="CRC mismatch"):
        drv.read()
    with pytest.raises(CRCError, match="an SCD4x"):
        drv.open()  # the serial is the identity check


def test_stuck_data_ready_fails_in_bounded_time() -> None:
    drv, chip, _, clock = opened()
    chip.stuck = True
    started = clock.now
    with pytest.raises(DriverError, match=r"may have reset .* or be stuck"):
        drv.read()
    assert 5.0 < clock.now - started <= 6.1  # a little over one 5 s period, never a hang


def test_a_chip_that_reset_is_detected_and_reopen_recovers() -> None:
    drv, chip, _, _ = opened(temperature_offset=6.0)
    drv.read()
    chip.reset()  # brown-out: idle, offset back to 4 °C, never data-ready
    assert chip.mode == IDLE and chip.temperature_offset == pytest.approx(4.0, abs=0.003)
    with pytest.raises(DriverError, match="reset"):
        drv.read()
    drv.open()
    assert chip.temperature_offset == pytest.approx(6.0, abs=0.003)
    assert drv.read().values["co2"] == 600


def test_open_takes_over_a_chip_left_measuring() -> None:
    _, chip, bus, clock = opened(temperature_offset=10.0)
    # The chip refuses settings and the serial while measuring: open() must stop it first.
    bus.log.clear()
    with pytest.raises(OSError):
        bus.i2c_rdwr(_write_msg(b"\x36\x82"))
    drv = DRIVERS["scd4x"](bus, sleep=clock.sleep)
    drv.open()
    assert chip.mode == PERIODIC
    assert chip.temperature_offset == pytest.approx(4.0, abs=0.003)


def test_the_chip_refuses_commands_for_500_ms_after_stop() -> None:
    _, _, bus, clock = opened()
    bus.i2c_rdwr(_write_msg(b"\x3f\x86"))
    clock.sleep(0.499)
    with pytest.raises(OSError):
        bus.i2c_rdwr(_write_msg(b"\x36\x82"))
    clock.sleep(0.001)
    bus.i2c_rdwr(_write_msg(b"\x36\x82"))


def test_an_invalid_first_sample_is_skipped() -> None:
    chip = SimSCD4x()
    chip.invalid_first_sample = True  # CO2 = 0: Sensirion's example skips such samples
    drv, _, _, clock = opened(chip)
    started = clock.now
    assert drv.read().values["co2"] == 600
    assert 10.0 <= clock.now - started < 10.2  # the second sample, 10 s after the start


def test_co2_zero_twice_is_a_fault() -> None:
    chip = SimSCD4x()
    chip.forced_raw = (0, 0x6667, 0x5EB9)
    drv, _, _, _ = opened(chip)
    with pytest.raises(DriverError, match=r"CO2 = 0 ppm.*VDDH"):
        drv.read()


# --- options, interval, identify ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature_offset": -1.0}, "temperature_offset must be 0..20"),
        ({"temperature_offset": 25.0}, "temperature_offset must be 0..20"),
        ({"altitude": 3001}, "altitude must be 0..3000"),
        ({"altitude": -5}, "altitude must be 0..3000"),
        ({"ambient_pressure": 500.0}, "ambient_pressure must be 700..1200"),
        ({"ambient_pressure": 1300.0}, "ambient_pressure must be 700..1200"),
        ({"low_power": "yes"}, "low_power"),
        ({"altitude": 12.5}, "altitude"),
        ({"interval": 5}, "unknown option 'interval'"),
    ],
)
def test_bad_options_are_rejected(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DRIVERS["scd4x"].validate_options(options)


def test_good_options_pass() -> None:
    DRIVERS["scd4x"].validate_options(
        {"temperature_offset": 0.0, "altitude": 3000, "ambient_pressure": 700.0, "low_power": True}
    )


def test_validate_interval() -> None:
    cls = DRIVERS["scd4x"]
    cls.validate_interval(5.0, {})
    cls.validate_interval(30.0, {"low_power": True})
    with pytest.raises(ValueError, match="every 5 s in periodic mode"):
        cls.validate_interval(2.0, {})
    with pytest.raises(ValueError, match="every 30 s in low-power periodic mode"):
        cls.validate_interval(10.0, {"low_power": True})


def test_identify_idle_chip_gives_its_serial() -> None:
    clock = VirtualClock()
    bus = SimBus({ADDR: SimSCD4x()}, clock=clock)
    assert DRIVERS["scd4x"].identify(bus, ADDR, sleep=clock.sleep) == "SCD4x serial 0xf8969f073bbe"


def test_identify_does_not_disturb_a_measuring_chip() -> None:
    drv, chip, bus, clock = opened()
    description = DRIVERS["scd4x"].identify(bus, ADDR, sleep=clock.sleep)
    assert description == "SCD4x (measuring; CRC-valid reply)"
    assert chip.mode == PERIODIC and 0x3F86 not in chip.commands[1:]
    assert drv.read().values["co2"] == 600


def test_identify_says_none_for_other_chips_and_silence() -> None:
    clock = VirtualClock()
    bus = SimBus({ADDR: SimBME280()}, clock=clock)
    assert DRIVERS["scd4x"].identify(bus, ADDR, sleep=clock.sleep) is None
    assert DRIVERS["scd4x"].identify(SimBus(), ADDR, sleep=clock.sleep) is None


def _write_msg(data: bytes):  # type: ignore[no-untyped-def]
    from smbus2 import i2c_msg

    return i2c_msg.write(ADDR, data)

"""SHT4x driver against the simulated chip.

Expected values are computed by hand from the SHT4x datasheet (v6.x, section 4.6:
T = -45 + 175 * S_T / 65535, RH = -6 + 125 * S_RH / 65535 cropped to 0..100), written below as
literal arithmetic; the CRC example is the datasheet's (CRC(0xBEEF) = 0x92); command codes and
waits are the datasheet's command table and table 4, and Sensirion's drivers for the serial
number's 1 ms.
"""

from __future__ import annotations

import pytest

from drivers import DRIVERS, CRCError, DriverError
from drivers.sensirion import crc8
from drivers.sim import RegisterChip, SimBus, VirtualClock
from drivers.sim.bus import Transfer
from drivers.sim.environment import Environment
from drivers.sim.sht3x import SimSHT3x
from drivers.sim.sht4x import SimSHT4x

ADDR = 0x44
SERIAL = 0x0C4F2E81  # the simulated chip's default


def open_driver(chip: SimSHT4x, address: int = ADDR, **options: str):
    clock = VirtualClock()
    bus = SimBus({address: chip}, clock=clock)
    drv = DRIVERS["sht4x"](bus, address, sleep=clock.sleep, **options)
    drv.open()
    return drv, bus, clock


def read_raw(s_t: int, s_rh: int) -> dict[str, float]:
    chip = SimSHT4x()
    chip.forced_raw = (s_t, s_rh)
    drv, _, _ = open_driver(chip)
    return dict(drv.read().values)


def test_crc_is_the_datasheet_example_and_on_every_word() -> None:
    assert crc8(b"\xbe\xef") == 0x92
    chip = SimSHT4x()
    chip.forced_raw = (0xBEEF, 0xBEEF)
    drv, bus, _ = open_driver(chip)
    values = drv.read().values
    assert bus.log[-1] == Transfer(ADDR, "read", b"\xbe\xef\x92\xbe\xef\x92")
    assert values["temperature"] == pytest.approx(-45 + 175 * 48879 / 65535)  # 85.523 °C
    assert values["humidity"] == pytest.approx(-6 + 125 * 48879 / 65535)  # 87.231 %RH


@pytest.mark.parametrize(
    ("s_t", "celsius", "tolerance"),
    [
        (0x0000, -45.0, 1e-9),
        (0xFFFF, 130.0, 1e-9),
        (0x6666, 25.0, 1e-9),  # 26214 = 65535 * 2/5, so -45 + 70 exactly (2^16 would give 24.997)
        (0x3333, -10.0, 1e-9),  # 13107 = 65535 / 5: -45 + 35
        (9362, -20.00038, 1e-5),  # 175 * 9362 = 1638350; / 65535 = 24.99962; - 45
    ],
)
def test_temperature_decoding_by_hand(s_t: int, celsius: float, tolerance: float) -> None:
    assert read_raw(s_t, 0x8000)["temperature"] == pytest.approx(celsius, abs=tolerance)


@pytest.mark.parametrize(
    ("s_rh", "percent", "tolerance"),
    [
        (0x0000, 0.0, 1e-9),  # -6 %RH, cropped
        (0xFFFF, 100.0, 1e-9),  # 119 %RH, cropped
        (0x3333, 19.0, 1e-9),  # 13107 = 65535 / 5: -6 + 25
        (0x6666, 44.0, 1e-9),  # -6 + 50
        (0xCCCC, 94.0, 1e-9),  # -6 + 100
        (3145, 0.0, 1e-9),  # 125 * 3145 = 393125; / 65535 = 5.99870; -6 = -0.0013: cropped
        (3146, 0.00061, 1e-5),  # 125 * 3146 = 393250; / 65535 = 6.00061; -6
        (55573, 99.99870, 1e-5),  # 125 * 55573 = 6946625; / 65535 = 105.99870; -6
        (55574, 100.0, 1e-9),  # 125 * 55574 = 6946750; / 65535 = 106.00061; -6 = 100.0006: cropped
    ],
)
def test_humidity_decoding_and_cropping_by_hand(
    s_rh: int, percent: float, tolerance: float
) -> None:
    assert read_raw(0x6666, s_rh)["humidity"] == pytest.approx(percent, abs=tolerance)


@pytest.mark.parametrize("temperature", [-40.0, -20.5, -0.25, 0.0, 22.5, 84.0, 124.0])
@pytest.mark.parametrize("humidity", [0.0, 35.0, 100.0])
def test_round_trip_across_the_range(temperature: float, humidity: float) -> None:
    env = Environment(temperature=temperature, humidity=humidity)
    drv, _, _ = open_driver(SimSHT4x(lambda: env))
    values = drv.read().values
    # Half a code: 175 / 65535 / 2 = 0.0013 °C, 125 / 65535 / 2 = 0.00095 %RH.
    assert values["temperature"] == pytest.approx(temperature, abs=0.0014)
    assert values["humidity"] == pytest.approx(humidity, abs=0.001)


def test_out_of_range_environment_is_decoded_as_the_chip_reports_it() -> None:
    # 200 °C saturates the code at 130 °C; 110 %RH is a valid code (-6..119) cropped to 100.
    hot = Environment(temperature=200.0, humidity=110.0)
    drv, _, _ = open_driver(SimSHT4x(lambda: hot))
    assert dict(drv.read().values) == {"temperature": 130.0, "humidity": 100.0}
    cold = Environment(temperature=-60.0, humidity=-3.0)
    drv, _, _ = open_driver(SimSHT4x(lambda: cold))
    assert dict(drv.read().values) == {"temperature": -45.0, "humidity": 0.0}


def test_open_conversation_follows_the_datasheet() -> None:
    drv, bus, clock = open_driver(SimSHT4x())
    serial_words = bytes([0x0C, 0x4F, crc8(b"\x0c\x4f"), 0x2E, 0x81, crc8(b"\x2e\x81")])
    assert bus.log == [
        Transfer(ADDR, "write", b"\x94"),  # soft reset
        Transfer(ADDR, "write", b"\x89"),  # read serial number
        Transfer(ADDR, "read", serial_words),
    ]
    assert clock.sleeps == [0.010, 0.010]  # reset and serial: Sensirion's reference, 10 ms
    assert drv.serial == SERIAL


@pytest.mark.parametrize(
    ("precision", "command", "wait"),
    [("high", b"\xfd", 0.0083), ("medium", b"\xf6", 0.0045), ("low", b"\xe0", 0.0016)],
)
def test_read_conversation_follows_the_datasheet(
    precision: str, command: bytes, wait: float
) -> None:
    drv, bus, clock = open_driver(SimSHT4x(), precision=precision)
    bus.log.clear()
    clock.sleeps.clear()
    drv.read()
    assert [(t.kind, t.data if t.kind == "write" else len(t.data)) for t in bus.log] == [
        ("write", command),
        ("read", 6),  # T, CRC, RH, CRC: both from the one measurement
    ]
    assert clock.sleeps == [wait]  # the maximum of table 4


def test_the_driver_never_heats() -> None:
    chip = SimSHT4x()
    clock = VirtualClock()
    bus = SimBus({ADDR: chip}, clock=clock)
    for precision in ("high", "medium", "low"):
        drv = DRIVERS["sht4x"](bus, sleep=clock.sleep, precision=precision)
        drv.open()
        drv.read()
    assert set(chip.commands) == {0x94, 0x89, 0xFD, 0xF6, 0xE0}


def test_the_simulated_chip_enforces_the_measurement_time() -> None:
    # What makes the conversation tests worth something: a driver waiting less would fail.
    clock = VirtualClock()
    bus = SimBus({ADDR: SimSHT4x()}, clock=clock)
    drv = DRIVERS["sht4x"](bus, sleep=clock.sleep)
    drv.command(0xFD)
    clock.sleep(0.0082)
    with pytest.raises(OSError):
        drv.receive(6)  # read header NACKed: not ready
    with pytest.raises(OSError):
        drv.command(0x89)  # no command taken while measuring
    clock.sleep(0.0001)
    assert len(drv.receive(6)) == 6


def test_absent_chip_is_a_driver_error() -> None:
    clock = VirtualClock()
    with pytest.raises(DriverError, match="no chip answers at 0x44"):
        DRIVERS["sht4x"](SimBus(clock=clock), sleep=clock.sleep).open()
    chip = SimSHT4x()
    chip.nack = True
    with pytest.raises(DriverError, match="no chip answers at 0x46"):
        open_driver(chip, address=0x46)


def test_bad_crc_is_a_crc_error() -> None:
    chip = SimSHT4x()
    drv, _, _ = open_driver(chip)
    chip.corrupt_checksum = True
    with pytest.raises(CRCError, match="CRC mismatch"):
        drv.read()
    with pytest.raises(CRCError):  # and at open, on the serial number
        drv.open()


def test_measurement_that_never_completes_is_an_error_not_a_hang() -> None:
    chip = SimSHT4x()
    drv, _, clock = open_driver(chip)
    chip.stuck = True
    clock.sleeps.clear()
    with pytest.raises(DriverError, match=r"no result 10\.3 ms after the measurement command"):
        drv.read()
    assert clock.sleeps == [0.0083, 0.001, 0.001]  # bounded: two 1 ms retries


def test_chip_reset_between_reads_loses_nothing() -> None:
    # No configuration to lose: the next measurement is as good as before the reset.
    chip = SimSHT4x()
    drv, _, _ = open_driver(chip)
    chip.reset()
    assert drv.read().values["temperature"] == pytest.approx(21.0, abs=0.002)


def test_reset_during_a_measurement_is_an_error_and_reopen_recovers() -> None:
    chip = SimSHT4x()
    clock = VirtualClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if seconds == 0.0083:
            chip.reset()  # brown-out while measuring: the result is gone

    drv = DRIVERS["sht4x"](SimBus({ADDR: chip}, clock=clock), sleep=sleep)
    drv.open()
    with pytest.raises(DriverError, match="no result"):
        drv.read()
    drv.sleep = clock.sleep
    drv.open()
    assert drv.read().values["humidity"] == pytest.approx(45.0, abs=0.001)


def test_an_sht3x_where_an_sht4x_is_expected_is_named() -> None:
    sht3x = SimSHT3x()
    clock = VirtualClock()
    drv = DRIVERS["sht4x"](SimBus({ADDR: sht3x}, clock=clock), sleep=clock.sleep)
    with pytest.raises(DriverError, match=r"SHT3x serial 0x1a2b3c4d answers.*use driver 'sht3x'"):
        drv.open()
    assert sht3x.measurements == 0


def test_read_before_open_is_an_error() -> None:
    drv = DRIVERS["sht4x"](SimBus(), sleep=VirtualClock().sleep)
    with pytest.raises(DriverError, match="before open"):
        drv.read()


def test_bad_options_are_rejected_before_any_bus_io() -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        DRIVERS["sht4x"].validate_options({"precision": "highest"})
    with pytest.raises(ValueError, match="must be str"):
        DRIVERS["sht4x"].validate_options({"precision": 1})
    with pytest.raises(ValueError, match="unknown option 'repeatability'"):
        DRIVERS["sht4x"].validate_options({"repeatability": "high"})
    DRIVERS["sht4x"].validate_options({"precision": "medium"})


def test_identify() -> None:
    # identify() sleeps in real time (it has no clock to be given): the bus runs on real time.
    identify = DRIVERS["sht4x"].identify
    assert identify(SimBus({ADDR: SimSHT4x()}), ADDR) == "SHT4x serial 0x0c4f2e81"
    assert identify(SimBus({0x46: SimSHT4x(serial=0xDEADBEEF)}), 0x46) == "SHT4x serial 0xdeadbeef"
    assert identify(SimBus({ADDR: SimSHT3x()}), ADDR) is None
    assert identify(SimBus({ADDR: RegisterChip()}), ADDR) is None  # CRC of 00 00 is not 00
    assert identify(SimBus(), ADDR) is None


def test_identify_leaves_a_running_chip_as_it_was() -> None:
    chip = SimSHT4x()
    bus = SimBus({ADDR: chip})
    drv = DRIVERS["sht4x"](bus)  # real time, like the agent
    drv.open()
    assert DRIVERS["sht4x"].identify(bus, ADDR) == "SHT4x serial 0x0c4f2e81"
    assert drv.read().values["temperature"] == pytest.approx(21.0, abs=0.002)


def test_close_sends_nothing() -> None:
    drv, bus, _ = open_driver(SimSHT4x())
    before = list(bus.log)
    drv.close()
    assert bus.log == before

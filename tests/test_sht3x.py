"""SHT3x driver against the simulated chip.

Expected values are computed by hand from the SHT3x-DIS datasheet (v6, section 4.13:
T = -45 + 175 * S_T / 65535, RH = 100 * S_RH / 65535), written below as literal arithmetic;
the CRC example is the datasheet's own (table 20: CRC(0xBEEF) = 0x92); the command codes and
waits are the datasheet's tables 4 and 9-19 and Sensirion's embedded-i2c-sht3x.
"""

from __future__ import annotations

import pytest

from drivers import DRIVERS, CRCError, DriverError
from drivers.sensirion import crc8
from drivers.sim import RegisterChip, SimBus, VirtualClock
from drivers.sim.bus import Transfer
from drivers.sim.environment import Environment
from drivers.sim.sensirion import SensirionChip
from drivers.sim.sht3x import SimSHT3x
from drivers.sim.sht4x import SimSHT4x

ADDR = 0x44


def open_driver(chip: SimSHT3x, address: int = ADDR, **options: str):
    clock = VirtualClock()
    bus = SimBus({address: chip}, clock=clock)
    drv = DRIVERS["sht3x"](bus, address, sleep=clock.sleep, **options)
    drv.open()
    return drv, bus, clock


def read_raw(s_t: int, s_rh: int) -> dict[str, float]:
    chip = SimSHT3x()
    chip.forced_raw = (s_t, s_rh)
    drv, _, _ = open_driver(chip)
    return dict(drv.read().values)


def test_crc_is_the_datasheet_example_and_on_every_word() -> None:
    assert crc8(b"\xbe\xef") == 0x92
    chip = SimSHT3x()
    chip.forced_raw = (0xBEEF, 0xBEEF)
    drv, bus, _ = open_driver(chip)
    values = drv.read().values
    assert bus.log[-1] == Transfer(ADDR, "read", b"\xbe\xef\x92\xbe\xef\x92")
    assert values["temperature"] == pytest.approx(-45 + 175 * 48879 / 65535)  # 85.523 °C
    assert values["humidity"] == pytest.approx(100 * 48879 / 65535)  # 74.585 %RH


@pytest.mark.parametrize(
    ("s_t", "celsius", "tolerance"),
    [
        (0x0000, -45.0, 1e-9),  # bottom of the code range
        (0xFFFF, 130.0, 1e-9),  # -45 + 175: top of the code range
        (0x6666, 25.0, 1e-9),  # 26214 = 65535 * 2/5, so -45 + 70 exactly (2^16 would give 24.997)
        (0x3333, -10.0, 1e-9),  # 13107 = 65535 / 5: -45 + 35
        (9362, -20.00038, 1e-5),  # 175 * 9362 = 1638350; / 65535 = 24.99962; - 45
        (0x8000, 42.50134, 1e-5),  # 175 * 32768 / 65535 = 87.50134; - 45
    ],
)
def test_temperature_decoding_by_hand(s_t: int, celsius: float, tolerance: float) -> None:
    assert read_raw(s_t, 0x8000)["temperature"] == pytest.approx(celsius, abs=tolerance)


@pytest.mark.parametrize(
    ("s_rh", "percent", "tolerance"),
    [
        (0x0000, 0.0, 1e-9),
        (0xFFFF, 100.0, 1e-9),
        (0x3333, 20.0, 1e-9),  # 13107 = 65535 / 5
        (0xCCCC, 80.0, 1e-9),  # 52428 = 65535 * 4/5
        (0x8000, 50.00076, 1e-5),  # 100 * 32768 / 65535
    ],
)
def test_humidity_decoding_by_hand(s_rh: int, percent: float, tolerance: float) -> None:
    assert read_raw(0x6666, s_rh)["humidity"] == pytest.approx(percent, abs=tolerance)


@pytest.mark.parametrize("temperature", [-40.0, -20.5, -0.25, 0.0, 22.5, 84.0, 124.0])
@pytest.mark.parametrize("humidity", [0.0, 35.0, 100.0])
def test_round_trip_across_the_range(temperature: float, humidity: float) -> None:
    env = Environment(temperature=temperature, humidity=humidity)
    drv, _, _ = open_driver(SimSHT3x(lambda: env))
    values = drv.read().values
    # Half a code: 175 / 65535 / 2 = 0.0013 °C, 100 / 65535 / 2 = 0.00076 %RH.
    assert values["temperature"] == pytest.approx(temperature, abs=0.0014)
    assert values["humidity"] == pytest.approx(humidity, abs=0.0008)


def test_out_of_range_environment_is_decoded_as_the_chip_reports_it() -> None:
    # The chip's codes end at -45 and 130 °C, 0 and 100 %RH; the agent rejects such values.
    hot = Environment(temperature=200.0, humidity=120.0)
    drv, _, _ = open_driver(SimSHT3x(lambda: hot))
    assert dict(drv.read().values) == {"temperature": 130.0, "humidity": 100.0}
    cold = Environment(temperature=-60.0, humidity=-5.0)
    drv, _, _ = open_driver(SimSHT3x(lambda: cold))
    assert dict(drv.read().values) == {"temperature": -45.0, "humidity": 0.0}


def test_open_conversation_follows_the_datasheet() -> None:
    _, bus, clock = open_driver(SimSHT3x())
    assert [(t.kind, t.data) for t in bus.log] == [
        ("write", b"\x30\x93"),  # break: stop periodic mode if another program left it on
        ("write", b"\x30\xa2"),  # soft reset: heater off, power-on state
        ("write", b"\x30\x41"),  # clear status: reset flag (bit 4) and alert flag (bit 15)
        ("write", b"\xf3\x2d"),  # read status
        ("read", bytes([0x00, 0x00, crc8(b"\x00\x00")])),  # all clear, CRC 0x81
    ]
    # Break takes 1 ms, soft reset 1.5 ms at most, then tIDLE = 1 ms after each command.
    # break 1 ms (4.8); soft reset and status: the reference driver's 2 ms and 10 ms
    assert clock.sleeps == [0.001, 0.002, 0.001, 0.010]


@pytest.mark.parametrize(
    ("repeatability", "command", "wait"),
    [("high", b"\x24\x00", 0.0155), ("medium", b"\x24\x0b", 0.0065), ("low", b"\x24\x16", 0.0045)],
)
def test_read_conversation_follows_the_datasheet(
    repeatability: str, command: bytes, wait: float
) -> None:
    drv, bus, clock = open_driver(SimSHT3x(), repeatability=repeatability)
    bus.log.clear()
    clock.sleeps.clear()
    drv.read()
    assert [(t.kind, t.data[:2] if t.kind == "write" else len(t.data)) for t in bus.log] == [
        ("write", b"\xf3\x2d"),  # status first: has the chip reset since open()?
        ("read", 3),
        ("write", command),  # single shot, clock stretching disabled
        ("read", 6),  # T, CRC, RH, CRC: both from the one measurement
    ]
    assert clock.sleeps == [0.010, wait]  # status (reference driver); table 4's maximum


def test_the_simulated_chip_enforces_the_measurement_time() -> None:
    # What makes the conversation tests worth something: a driver waiting less would fail.
    clock = VirtualClock()
    bus = SimBus({ADDR: SimSHT3x()}, clock=clock)
    drv = DRIVERS["sht3x"](bus, sleep=clock.sleep)
    drv.command(0x2400)
    clock.sleep(0.0154)
    with pytest.raises(OSError):
        drv.receive(6)  # read header NACKed: not ready
    with pytest.raises(OSError):
        drv.command(0xF32D)  # no command taken while measuring
    clock.sleep(0.0001)
    assert len(drv.receive(6)) == 6


def test_absent_chip_is_a_driver_error() -> None:
    clock = VirtualClock()
    with pytest.raises(DriverError, match="no chip answers at 0x44"):
        DRIVERS["sht3x"](SimBus(clock=clock), sleep=clock.sleep).open()
    chip = SimSHT3x()
    chip.nack = True
    with pytest.raises(DriverError, match="no chip answers at 0x45"):
        open_driver(chip, address=0x45)


def test_bad_crc_is_a_crc_error() -> None:
    chip = SimSHT3x()
    drv, _, _ = open_driver(chip)
    chip.corrupt_checksum = True
    with pytest.raises(CRCError, match="CRC mismatch"):
        drv.read()
    with pytest.raises(CRCError):  # and at open, on the status word
        drv.open()


def test_measurement_that_never_completes_is_an_error_not_a_hang() -> None:
    chip = SimSHT3x()
    drv, _, clock = open_driver(chip)
    chip.stuck = True
    clock.sleeps.clear()
    with pytest.raises(DriverError, match=r"no result 17\.5 ms after the measurement command"):
        drv.read()
    assert clock.sleeps == [0.010, 0.0155, 0.001, 0.001]  # bounded: two 1 ms retries


def test_chip_reset_is_detected_through_the_status_register_and_reopen_recovers() -> None:
    chip = SimSHT3x()
    drv, _, _ = open_driver(chip)
    drv.read()
    chip.reset()  # brown-out: the status register's reset flag is back (power-on 0x8010)
    measured = chip.measurements
    with pytest.raises(DriverError, match=r"reset since open\(\) \(status 0x8010\)"):
        drv.read()
    assert chip.measurements == measured  # nothing measured on a chip in an unknown state
    drv.open()
    assert drv.read().values["temperature"] == pytest.approx(21.0, abs=0.002)


def test_reset_during_a_measurement_loses_it_and_reopen_recovers() -> None:
    chip = SimSHT3x()
    clock = VirtualClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if seconds == 0.0155:
            chip.reset()

    bus = SimBus({ADDR: chip}, clock=clock)
    drv = DRIVERS["sht3x"](bus, sleep=sleep)
    drv.open()
    with pytest.raises(DriverError, match="no result"):
        drv.read()
    with pytest.raises(DriverError, match="reset since open"):
        drv.read()
    drv.sleep = clock.sleep
    drv.open()
    assert drv.read().values["humidity"] == pytest.approx(45.0, abs=0.001)


def test_periodic_mode_left_running_is_stopped_by_open() -> None:
    clock = VirtualClock()
    chip = SimSHT3x()
    bus = SimBus({ADDR: chip}, clock=clock)
    other = DRIVERS["sht3x"](bus, sleep=clock.sleep)
    other.command(0x2130)  # another program: periodic, 1 measurement per second, high
    clock.sleep(1.5)
    with pytest.raises(OSError):
        other.command(0x2400)  # in periodic mode a single-shot command is refused
    bus.log.clear()
    drv = DRIVERS["sht3x"](bus, sleep=clock.sleep)
    drv.open()
    assert bus.log[0] == Transfer(ADDR, "write", b"\x30\x93")
    assert chip.periodic is None
    assert drv.read().values["humidity"] == pytest.approx(45.0, abs=0.001)


def test_heater_switched_on_by_someone_else_is_detected_and_reopen_turns_it_off() -> None:
    chip = SimSHT3x()
    drv, _, _ = open_driver(chip)
    drv.command(0x306D)  # heater enable, as another program might
    drv.sleep(0.001)
    with pytest.raises(DriverError, match="heater switched on"):
        drv.read()
    drv.open()
    assert not chip.status & (1 << 13)
    drv.read()


def test_an_sht4x_where_an_sht3x_is_expected_is_named() -> None:
    sht4x = SimSHT4x()
    clock = VirtualClock()
    drv = DRIVERS["sht3x"](SimBus({ADDR: sht4x}, clock=clock), sleep=clock.sleep)
    with pytest.raises(DriverError, match=r"SHT4x serial 0x0c4f2e81 answers.*use driver 'sht4x'"):
        drv.open()
    # 0x24 is an SHT4x heater command: no measurement command may ever have reached it.
    assert sht4x.measurements == 0


class _NotAStatus(SensirionChip):
    """A Sensirion-like chip whose status word has reserved bits set."""

    def execute(self, command: int, args: object) -> tuple[list[int], float] | None:
        return ([0x5000], 0.0) if command == 0xF32D else None

    def reset(self) -> None:
        pass


def test_status_with_reserved_bits_set_is_not_an_sht3x() -> None:
    clock = VirtualClock()
    drv = DRIVERS["sht3x"](SimBus({ADDR: _NotAStatus()}, clock=clock), sleep=clock.sleep)
    with pytest.raises(DriverError, match="reserved bits set: not an SHT3x"):
        drv.open()
    assert DRIVERS["sht3x"].identify(SimBus({ADDR: _NotAStatus()}), ADDR) is None


def test_bad_options_are_rejected_before_any_bus_io() -> None:
    with pytest.raises(ValueError, match="repeatability must be one of"):
        DRIVERS["sht3x"].validate_options({"repeatability": "ultra"})
    with pytest.raises(ValueError, match="must be str"):
        DRIVERS["sht3x"].validate_options({"repeatability": 2})
    with pytest.raises(ValueError, match="unknown option 'precision'"):
        DRIVERS["sht3x"].validate_options({"precision": "high"})
    DRIVERS["sht3x"].validate_options({"repeatability": "low"})


def test_identify() -> None:
    # identify() sleeps in real time (it has no clock to be given): the bus runs on real time.
    identify = DRIVERS["sht3x"].identify
    assert identify(SimBus({ADDR: SimSHT3x()}), ADDR) == "SHT3x serial 0x1a2b3c4d"
    no_serial = SimSHT3x(serial=None)
    assert identify(SimBus({0x45: no_serial}), 0x45) == "SHT3x status 0x8010"
    assert identify(SimBus({ADDR: SimSHT4x()}), ADDR) is None
    assert identify(SimBus({ADDR: RegisterChip()}), ADDR) is None  # CRC of 00 00 is not 00
    assert identify(SimBus(), ADDR) is None
    bus = SimBus({ADDR: SimSHT3x()})
    DRIVERS["sht3x"](bus).command(0x2130)  # another program runs it in periodic mode
    assert identify(bus, ADDR) is None  # would have to stop its owner's measurements


def test_identify_leaves_a_running_chip_as_it_was() -> None:
    chip = SimSHT3x()
    bus = SimBus({ADDR: chip})
    drv = DRIVERS["sht3x"](bus)  # real time, like the agent
    drv.open()
    status = chip.status
    assert DRIVERS["sht3x"].identify(bus, ADDR) == "SHT3x serial 0x1a2b3c4d"
    assert chip.status == status
    assert drv.read().values["temperature"] == pytest.approx(21.0, abs=0.002)


def test_close_sends_nothing() -> None:
    drv, bus, _ = open_driver(SimSHT3x())
    before = list(bus.log)
    drv.close()
    assert bus.log == before

"""BH1750 driver against the simulated chip.

Expected values come from the ROHM BH1750FVI datasheet (2011.11, Rev. D): the measurement
sequence example (High Byte 1000_0011, Low Byte 1001_0000 -> (2^15 + 2^9 + 2^8 + 2^7 +
2^4) / 1.2 = 28067 lx in H-resolution mode), the instruction codes on p. 5, and the sensitivity
adjustment on p. 11 (MTreg 31 / 69 / 138 / 254 = x0.45 / x1 / x2 / x3.68; lx per count =
1 / 1.2 * (69 / MTreg), halved in H-resolution mode 2; 180 ms / 24 ms maximum at MTreg 69),
worked by hand below.
"""

from __future__ import annotations

from typing import Any

import pytest
from smbus2 import i2c_msg

from drivers import DRIVERS, DriverError
from drivers.bh1750 import (
    BRIGHT,
    DARK,
    NORMAL,
    Setting,
    illuminance,
    next_auto_setting,
)
from drivers.sim import SimBus, VirtualClock
from drivers.sim.bh1750 import SimBH1750
from drivers.sim.bus import NACK_ERRNO, Transfer
from drivers.sim.environment import Environment

ADDR = 0x23


def make(chip: SimBH1750 | None = None, address: int = ADDR, **options: Any):
    clock = VirtualClock()
    chip = chip or SimBH1750()
    bus = SimBus({address: chip}, clock=clock)
    drv = DRIVERS["bh1750"](bus, address, sleep=clock.sleep, **options)
    return drv, chip, bus, clock


def opened(chip: SimBH1750 | None = None, **options: Any):
    drv, chip, bus, clock = make(chip, **options)
    drv.open()
    bus.log.clear()
    return drv, chip, bus, clock


def lit(lx: float) -> SimBH1750:
    env = Environment(illuminance=lx)
    return SimBH1750(lambda: env)


def writes(bus: SimBus) -> list[bytes]:
    return [t.data for t in bus.log if t.kind == "write"]


# --- decoding -----------------------------------------------------------------------------------


def test_datasheet_measurement_example() -> None:
    chip = SimBH1750()
    chip.forced_count = 0b1000_0011_1001_0000
    drv, _, bus, _ = opened(chip)
    lx = drv.read().values["illuminance"]
    assert bus.log[-1] == Transfer(ADDR, "read", bytes([0b1000_0011, 0b1001_0000]))
    assert lx == pytest.approx((2**15 + 2**9 + 2**8 + 2**7 + 2**4) / 1.2)  # 28066.67
    assert round(lx) == 28067  # the datasheet's figure


@pytest.mark.parametrize(
    ("count", "mode", "mtreg", "lx"),
    [
        (0, "high", 69, 0.0),  # count 0: darkness, in every setting
        (0, "high2", 254, 0.0),
        (65534, "high", 69, 65534 / 1.2),  # the last unsaturated count: 54611.67 lx
        (1, "high2", 254, 1 / 1.2 * 69 / 254 / 2),  # 0.1132 lx: the datasheet's "min. 0.11 lx"
        (100, "high", 138, 100 / 1.2 * 69 / 138),  # sensitivity x2: 41.67 lx
        (65534, "high", 31, 65534 / 1.2 * 69 / 31),  # sensitivity x0.45: 121555 lx
        (1000, "high2", 69, 1000 / 1.2 / 2),  # H-resolution mode 2: 416.67 lx
        (1000, "low", 69, 1000 / 1.2),  # L-resolution mode: same formula, 833.33 lx
    ],
)
def test_decoding_across_settings(count: int, mode: str, mtreg: int, lx: float) -> None:
    chip = SimBH1750()
    chip.forced_count = count
    drv, _, bus, _ = opened(chip, auto_range=False, mode=mode, mtreg=mtreg)
    assert drv.read().values["illuminance"] == pytest.approx(lx, rel=1e-12, abs=1e-12)
    assert bus.log[-1].data == count.to_bytes(2, "big")


def test_full_scale_count_decodes_to_54612_5_lx() -> None:
    assert illuminance(0xFFFF, NORMAL) == pytest.approx(65535 / 1.2)  # 54612.5
    assert illuminance(0xFFFF, BRIGHT) == pytest.approx(65535 / 1.2 * 69 / 31)  # 121557


def test_saturated_reading_is_refused_not_reported() -> None:
    chip = SimBH1750()
    chip.forced_count = 0xFFFF
    drv, _, _, _ = opened(chip, auto_range=False, mode="high", mtreg=69)
    with pytest.raises(DriverError, match=r"saturated.*54612 lx.*lower mtreg"):
        drv.read()


def test_round_trip_through_the_environment() -> None:
    drv, _, _, _ = opened(lit(350.0), auto_range=False)
    # 350 * 1.2 = 420 counts exactly, 420 / 1.2 = 350
    assert drv.read().values["illuminance"] == pytest.approx(350.0)


# --- the conversation ---------------------------------------------------------------------------


def test_open_powers_on_resets_and_powers_down() -> None:
    drv, _, bus, clock = make()
    drv.open()
    assert bus.log == [
        Transfer(ADDR, "write", b"\x01"),  # Power On
        Transfer(ADDR, "write", b"\x07"),  # Reset (only accepted when powered on)
        Transfer(ADDR, "write", b"\x00"),  # Power Down: also ends a continuous mode
    ]
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("mode", "mtreg", "commands", "wait"),
    [
        # MTreg 69 = 010_00101: 01000_010 = 0x42, 011_00101 = 0x65; 180 ms
        ("high", 69, [0x01, 0x42, 0x65, 0x20], 0.180),
        # the datasheet's x2 example, MTreg 138 = 100_01010: 0x44, 0x6A; 180 * 2 = 360 ms
        ("high", 138, [0x01, 0x44, 0x6A, 0x20], 0.360),
        # MTreg 254 = 111_11110: 0x47, 0x7E; 180 * 254 / 69 = 662.6 -> 663 ms
        ("high2", 254, [0x01, 0x47, 0x7E, 0x21], 0.663),
        # MTreg 31 = 000_11111: 0x40, 0x7F; 24 * 31 / 69 = 10.8 -> 11 ms
        ("low", 31, [0x01, 0x40, 0x7F, 0x23], 0.011),
    ],
)
def test_one_time_measurement_conversation(
    mode: str, mtreg: int, commands: list[int], wait: float
) -> None:
    drv, chip, bus, clock = opened(lit(100.0), auto_range=False, mode=mode, mtreg=mtreg)
    drv.read()
    assert writes(bus) == [bytes([c]) for c in commands]
    assert [t.kind for t in bus.log] == ["write"] * 4 + ["read"]
    assert len(bus.log[-1].data) == 2
    assert clock.sleeps == [pytest.approx(wait)]
    assert chip.mtreg == mtreg
    assert not chip.powered  # one-time mode ends in power-down


def result(bus: SimBus) -> int:
    """A two-byte read as the driver does it (one i2c_rdwr transfer)."""
    msg = i2c_msg.read(ADDR, 2)
    bus.i2c_rdwr(msg)
    return int.from_bytes(bytes(msg), "big")


def test_reading_before_the_maximum_time_gets_the_previous_result() -> None:
    # The chip has no ready flag and answers a read at once with its data register: what the
    # driver's full wait protects against.
    env = {"lx": 100.0}
    chip = SimBH1750(lambda: Environment(illuminance=env["lx"]))
    clock = VirtualClock()
    bus = SimBus({ADDR: chip}, clock=clock)
    bus.write_byte(ADDR, 0x01)
    bus.write_byte(ADDR, 0x20)
    assert result(bus) == 0  # nothing measured yet: the register's initial value
    clock.sleep(0.180)
    assert result(bus) == 120  # 100 lx * 1.2
    env["lx"] = 1000.0
    bus.write_byte(ADDR, 0x01)
    bus.write_byte(ADDR, 0x20)
    clock.sleep(0.170)
    assert result(bus) == 120  # 170 ms < 180 ms: still the previous result
    clock.sleep(0.010)
    assert result(bus) == 1200


# --- auto-ranging -------------------------------------------------------------------------------


def test_auto_range_in_a_dark_room_ends_at_h2_mtreg_254() -> None:
    drv, _, bus, clock = opened(lit(0.5))
    first = drv.read().values["illuminance"]
    # Starts at H, MTreg 69: round(0.5 * 1.2) = 1 count = 0.833 lx, below 7418 / 8 lx
    assert first == pytest.approx(1 / 1.2)
    assert drv.setting == DARK
    bus.log.clear()
    clock.sleeps.clear()
    second = drv.read().values["illuminance"]
    assert writes(bus) == [b"\x01", b"\x47", b"\x7e", b"\x21"]
    assert clock.sleeps == [pytest.approx(0.663)]
    # round(0.5 * 1.2 * 254 / 69 * 2) = round(4.417) = 4 counts = 4 / 1.2 * 69 / 254 / 2
    assert second == pytest.approx(4 / 1.2 * 69 / 254 / 2)  # 0.4528 lx
    assert drv.setting == DARK


def test_auto_range_in_sunlight_saturates_once_then_reads_at_mtreg_31() -> None:
    drv, _, bus, clock = opened(lit(80000.0))
    # 80000 * 1.2 = 96000 counts at MTreg 69: clipped to 65535
    with pytest.raises(DriverError, match=r"saturated.*next reading uses mode high, mtreg 31"):
        drv.read()
    assert drv.setting == BRIGHT
    drv.open()  # what the runtime does after a failed read
    bus.log.clear()
    clock.sleeps.clear()
    lx = drv.read().values["illuminance"]
    assert writes(bus) == [b"\x01", b"\x40", b"\x7f", b"\x20"]
    assert clock.sleeps == [pytest.approx(0.081)]  # 180 * 31 / 69 = 80.9 ms
    # round(80000 * 1.2 * 31 / 69) = round(43130.4) = 43130 counts
    assert lx == pytest.approx(43130 / 1.2 * 69 / 31)  # 79999.2 lx
    assert drv.setting == BRIGHT


@pytest.mark.parametrize(
    ("current", "count", "expected"),
    [
        (NORMAL, 1080, DARK),  # 900 lx < 7418 / 8 = 927 lx
        (NORMAL, 1200, NORMAL),  # 1000 lx: stays (0.83 lx/count is enough)
        (DARK, 49151, DARK),  # 75 % of 65535 = 49151.25: not above it
        (DARK, 49152, NORMAL),  # 5563.5 lx: above 75 % of dark's range
        (NORMAL, 49152, BRIGHT),  # 40960 lx
        (BRIGHT, 3235, NORMAL),  # 3235 / 1.2 * 69 / 31 = 6000 lx < 54612.5 / 8 = 6827
        (BRIGHT, 3700, BRIGHT),  # 6863 lx: stays
        (BRIGHT, 300, DARK),  # 556 lx: straight to the most sensitive that fits
        (DARK, 0xFFFF, BRIGHT),  # saturated: a lower bound, jump to the least sensitive
    ],
)
def test_auto_range_thresholds_and_hysteresis(
    current: Setting, count: int, expected: Setting
) -> None:
    assert next_auto_setting(current, count) == expected


# --- faults -------------------------------------------------------------------------------------


def test_absent_chip_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="no chip answers at 0x23"):
        DRIVERS["bh1750"](SimBus()).open()


def test_addr_high_address() -> None:
    drv, _, bus, _ = make(lit(350.0), address=0x5C)
    drv.open()
    assert drv.read().values["illuminance"] == pytest.approx(350.0)
    assert {t.address for t in bus.log} == {0x5C}


def test_chip_that_stops_answering_raises_oserror() -> None:
    drv, chip, _, _ = opened(lit(350.0))
    chip.nack = True
    with pytest.raises(OSError) as e:
        drv.read()
    assert e.value.errno == NACK_ERRNO
    drv.close()  # swallows the NACK


def test_chip_reset_costs_nothing_because_mtreg_is_written_every_time() -> None:
    # A brown-out cannot be detected (no readable state), but it cannot mislead either.
    drv, chip, _, _ = opened(lit(500.0), auto_range=False, mtreg=138)
    assert drv.read().values["illuminance"] == pytest.approx(500.0)
    chip.reset()
    assert (chip.mtreg, chip.powered, chip.data) == (69, False, 0)
    # 500 * 1.2 * 2 = 1200 counts at MTreg 138; at the reset's 69 it would read 250 lx
    assert drv.read().values["illuminance"] == pytest.approx(500.0)
    assert chip.mtreg == 138
    drv.open()  # and the runtime's re-open works on a reset chip
    assert drv.read().values["illuminance"] == pytest.approx(500.0)


def test_close_powers_down() -> None:
    drv, _, bus, _ = opened()
    drv.close()
    assert writes(bus) == [b"\x00"]


def test_read_before_open_is_an_error() -> None:
    drv, _, _, _ = make()
    with pytest.raises(DriverError, match="before open"):
        drv.read()


# --- the simulated chip itself ------------------------------------------------------------------


def test_sim_ignores_reset_in_power_down_and_nacks_unknown_opcodes() -> None:
    clock = VirtualClock()
    bus = SimBus({ADDR: lit(100.0)}, clock=clock)
    bus.write_byte(ADDR, 0x20)
    clock.sleep(0.18)
    assert result(bus) == 120
    bus.write_byte(ADDR, 0x07)  # powered down after the one-time measurement: ignored
    assert result(bus) == 120
    bus.write_byte(ADDR, 0x01)
    bus.write_byte(ADDR, 0x07)
    assert result(bus) == 0
    with pytest.raises(OSError):
        bus.write_byte(ADDR, 0x05)


# --- options and identify -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "medium", "auto_range": False}, "mode must be one of"),
        ({"mtreg": 30, "auto_range": False}, r"mtreg must be 31\.\.254"),
        ({"mtreg": 255, "auto_range": False}, r"mtreg must be 31\.\.254"),
        ({"mtreg": True, "auto_range": False}, "mtreg must be an integer"),
        ({"mtreg": 69.0, "auto_range": False}, "option 'mtreg' must be int"),
        ({"auto_range": "yes"}, "option 'auto_range' must be bool"),
        ({"mode": "high2"}, "auto_range chooses mode and mtreg"),
        ({"gain": 2}, "unknown option 'gain'"),
    ],
)
def test_bad_options_are_rejected_before_any_bus_io(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DRIVERS["bh1750"].validate_options(options)


def test_good_options_pass() -> None:
    DRIVERS["bh1750"].validate_options({"auto_range": False, "mode": "low", "mtreg": 254})
    DRIVERS["bh1750"].validate_options({})


def test_worst_read_time_covers_the_slowest_setting() -> None:
    assert DRIVERS["bh1750"].worst_read_time({}) == pytest.approx(0.663 + 0.05)
    manual = {"auto_range": False, "mode": "low", "mtreg": 69}
    assert DRIVERS["bh1750"].worst_read_time(manual) == pytest.approx(0.024 + 0.05)


def test_identify_has_nothing_to_read() -> None:
    # No id register, and every instruction changes the chip's state: scan-i2c names it by
    # address (the base class's identify, which scan treats as "cannot tell").
    chip = SimBH1750()
    bus = SimBus({ADDR: chip})
    assert DRIVERS["bh1750"].identify(bus, ADDR) is None
    assert "identify" not in vars(DRIVERS["bh1750"])
    assert bus.log == []

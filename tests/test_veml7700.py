"""VEML7700 driver against the simulated chip.

Expected values come from the Vishay VEML7700 datasheet (doc. 84286, rev. 1.7, 29-Nov-2023:
ALS_CONF bit fields of table 1, power-on value 0x0001, ID register 0xC481) and the application
note "Designing the VEML7700 Into an Application" (doc. 84323, rev. 17-Jan-2024): the table of
resolutions (0.0042 lx/count at gain 2, 800 ms ... 2.1504 lx/count at gain 1/8, 25 ms), the
non-linearity correction 6.0135e-13 x^4 - 9.3924e-9 x^3 + 8.1488e-5 x^2 + 1.0023 x, and the
auto-range flow (start at gain 1/8, 100 ms; counts <= 100: raise gain, then integration time;
counts > 10000: shorten integration time), worked by hand below.
"""

from __future__ import annotations

from typing import Any

import pytest

from drivers import DRIVERS, DriverError
from drivers.sim import SimBus, VirtualClock
from drivers.sim.bh1750 import SimBH1750
from drivers.sim.bme280 import SimBME280
from drivers.sim.bus import NACK_ERRNO, Transfer
from drivers.sim.environment import Environment
from drivers.sim.veml7700 import SimVEML7700, linear_reading
from drivers.veml7700 import auto_setting, conf_word, resolution

ADDR = 0x10

# The app note's table, as printed: integration time (ms) -> {gain: lx per count}.
APP_NOTE_RESOLUTION = {
    800: {2.0: 0.0042, 1.0: 0.0084, 0.25: 0.0336, 0.125: 0.0672},
    400: {2.0: 0.0084, 1.0: 0.0168, 0.25: 0.0672, 0.125: 0.1344},
    200: {2.0: 0.0168, 1.0: 0.0336, 0.25: 0.1344, 0.125: 0.2688},
    100: {2.0: 0.0336, 1.0: 0.0672, 0.25: 0.2688, 0.125: 0.5376},
    50: {2.0: 0.0672, 1.0: 0.1344, 0.25: 0.5376, 0.125: 1.0752},
    25: {2.0: 0.1344, 1.0: 0.2688, 0.25: 1.0752, 0.125: 2.1504},
}


def corrected(x: float) -> float:
    """The app note's correction, written out term by term."""
    return 6.0135e-13 * x**4 - 9.3924e-9 * x**3 + 8.1488e-5 * x**2 + 1.0023 * x


def make(chip: Any = None, **options: Any):
    clock = VirtualClock()
    chip = SimVEML7700() if chip is None else chip
    bus = SimBus({ADDR: chip}, clock=clock)
    drv = DRIVERS["veml7700"](bus, sleep=clock.sleep, **options)
    return drv, chip, bus, clock


def opened(chip: Any = None, **options: Any):
    drv, chip, bus, clock = make(chip, **options)
    drv.open()
    bus.log.clear()
    clock.sleeps.clear()
    return drv, chip, bus, clock


def lit(lx: float) -> SimVEML7700:
    env = Environment(illuminance=lx)
    return SimVEML7700(lambda: env)


def writes(bus: SimBus) -> list[bytes]:
    return [t.data for t in bus.log if t.kind == "write" and len(t.data) > 1]


def conf(chip: SimVEML7700) -> int:
    return chip.registers[0]


# --- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("integration_ms", sorted(APP_NOTE_RESOLUTION))
@pytest.mark.parametrize("gain", [0.125, 0.25, 1.0, 2.0])
def test_resolution_matches_the_app_note_table(gain: float, integration_ms: int) -> None:
    assert resolution(gain, integration_ms) == pytest.approx(
        APP_NOTE_RESOLUTION[integration_ms][gain], rel=1e-12
    )


@pytest.mark.parametrize(
    ("gain", "integration_ms", "count", "lx"),
    [
        (1.0, 100, 0, 0.0),  # count 0
        (0.125, 25, 0, 0.0),
        (2.0, 800, 1000, 1000 * 0.0042),  # 4.2 lx, gains 1 and 2 are linear
        (2.0, 800, 65534, 65534 * 0.0042),  # 275.24 lx: the last count below saturation
        (1.0, 25, 5000, 5000 * 0.2688),  # 1344 lx, no correction at gain 1
        (0.25, 100, 1000, corrected(1000 * 0.2688)),  # 268.8 -> 275.1 lx
        (0.125, 100, 10000, corrected(10000 * 0.5376)),  # 5376 -> 6786.4 lx
        (0.125, 25, 65534, corrected(65534 * 2.1504)),  # 140924 -> the top of the range
    ],
)
def test_decoding(gain: float, integration_ms: int, count: int, lx: float) -> None:
    chip = SimVEML7700()
    chip.forced_als = count
    drv, _, bus, _ = opened(chip, auto_range=False, gain=gain, integration_time=integration_ms)
    assert drv.read().values["illuminance"] == pytest.approx(lx, rel=1e-12, abs=1e-12)
    assert bus.log[1] == Transfer(ADDR, "read", count.to_bytes(2, "little"))


def test_correction_by_hand() -> None:
    # 5376 lx: 5376^2 = 28901376, ^3 = 1.553741e11, ^4 = 8.352904e14;
    # 6.0135e-13 * 8.352904e14 = 502.30; -9.3924e-9 * 1.553741e11 = -1459.33;
    # 8.1488e-5 * 28901376 = 2355.12; 1.0023 * 5376 = 5388.36; sum 6786.45 lx
    assert corrected(5376) == pytest.approx(502.30 - 1459.33 + 2355.12 + 5388.36, abs=0.02)


def test_saturated_count_is_refused_not_reported() -> None:
    chip = SimVEML7700()
    chip.forced_als = 0xFFFF
    drv, _, _, _ = opened(chip, auto_range=False, gain=2.0, integration_time=800)
    with pytest.raises(DriverError, match=r"saturated \(count 65535 at gain 2, 800 ms\).*lower"):
        drv.read()


@pytest.mark.parametrize("lx", [0.05, 3.0, 80.0, 350.0, 4000.0, 60000.0])
def test_round_trip_through_the_environment(lx: float) -> None:
    drv, _, _, _ = opened(lit(lx))
    drv.read()  # the first reading picks the range
    assert drv.read().values["illuminance"] == pytest.approx(lx, rel=0.01, abs=0.005)


# --- the conversation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gain", "integration_ms", "word"),
    [
        (0.125, 100, 0x1000),  # gain 10 << 11, IT 0000
        (0.25, 100, 0x1800),  # gain 11
        (1.0, 25, 0x0300),  # IT 1100 << 6
        (2.0, 800, 0x08C0),  # gain 01 << 11, IT 0011 << 6
        (0.125, 50, 0x1200),  # gain 10 << 11, IT 1000 << 6
    ],
)
def test_conf_words(gain: float, integration_ms: int, word: int) -> None:
    assert conf_word((gain, integration_ms)) == word
    assert conf_word((gain, integration_ms), shutdown=True) == word | 1


def test_open_checks_the_id_and_configures_in_shutdown() -> None:
    drv, chip, bus, clock = make(auto_range=False)  # gain 1/4, 100 ms
    drv.open()
    assert bus.log == [
        Transfer(ADDR, "write", b"\x07"),  # ID register
        Transfer(ADDR, "read", b"\x81\xc4"),  # 0xC481, low byte first
        Transfer(ADDR, "write", b"\x00\x01\x18"),  # ALS_CONF 0x1801: gain 1/4, shut down
        Transfer(ADDR, "write", b"\x03\x00\x00"),  # PSM off
        Transfer(ADDR, "write", b"\x00\x00\x18"),  # ALS_CONF 0x1800: power on
    ]
    assert clock.sleeps == [pytest.approx(0.004 + 2 * 0.100)]
    assert conf(chip) == 0x1800


def test_read_is_the_result_then_a_config_check() -> None:
    drv, _, bus, clock = opened(lit(350.0), auto_range=False)
    drv.read()
    assert [(t.kind, t.data) for t in bus.log] == [
        ("write", b"\x04"),
        ("read", bus.log[1].data),
        ("write", b"\x00"),
        ("read", b"\x00\x18"),
    ]
    assert clock.sleeps == []  # the chip converts continuously: nothing to wait for


def test_sim_keeps_the_previous_result_until_a_conversion_ends() -> None:
    # Why the driver waits after every configuration: no data-ready flag, and ALS keeps its
    # previous value (0 after power-on) until the first conversion with the new setting.
    clock = VirtualClock()
    bus = SimBus({ADDR: lit(100.0)}, clock=clock)

    def als() -> int:
        data = bus.read_i2c_block_data(ADDR, 0x04, 2)
        return data[0] | data[1] << 8

    bus.write_i2c_block_data(ADDR, 0x00, [0x00, 0x10])  # gain 1/8, 100 ms, power on
    assert als() == 0
    clock.sleep(0.0025 + 0.099)
    assert als() == 0
    clock.sleep(0.001)
    first = als()
    assert first == round(linear_reading(100.0) / 0.5376)  # 184: gain 1/8 is not linear
    bus.write_i2c_block_data(ADDR, 0x00, [0x00, 0x08])  # gain 2, 100 ms: restarts
    clock.sleep(0.099)
    assert als() == first  # still the gain-1/8 count
    clock.sleep(0.001)
    assert als() == round(100.0 / 0.0336)  # 2976


# --- auto-ranging -------------------------------------------------------------------------------


def test_auto_range_in_a_dark_room() -> None:
    drv, chip, bus, clock = opened(lit(2.0))
    assert drv.setting == (0.125, 100)  # the app note's start
    first = drv.read().values["illuminance"]
    # 2 lx at 0.5376 lx/count: 3.7 counts, read as 4 -> corrected(2.1504) = 2.1557 lx
    assert bus.log[1].data == b"\x04\x00"
    assert first == pytest.approx(corrected(4 * 0.5376))
    # 2.1504 lx predicts 8, 32, 64, 128 counts at gain 1/4, 1, 2 (100 ms) and gain 2, 200 ms
    assert drv.setting == (2.0, 200)
    bus.log.clear()
    lx = drv.read().values["illuminance"]
    assert writes(bus)[:3] == [b"\x00\x41\x08", b"\x03\x00\x00", b"\x00\x40\x08"]  # 0x0840
    assert clock.sleeps == [pytest.approx(0.004 + 2 * 0.200)]
    assert lx == pytest.approx(119 * 0.0168)  # round(2 / 0.0168) = 119 counts: 1.9992 lx
    assert drv.setting == (2.0, 200)
    assert conf(chip) == 0x0840


def test_auto_range_in_darkness_ends_at_the_most_sensitive_setting() -> None:
    drv, _, _, _ = opened(lit(0.0))
    assert drv.read().values["illuminance"] == 0.0
    assert drv.setting == (2.0, 800)
    assert drv.read().values["illuminance"] == 0.0


def test_auto_range_in_a_bright_room() -> None:
    drv, _, bus, clock = opened(lit(50000.0))
    drv.read()
    # The sensor's linear reading of 50 klx is ~17.5 klx: ~32600 counts at 1/8, 100 ms,
    # > 10000, so 50 ms (~16300) and 25 ms (~8150)
    assert drv.setting == (0.125, 25)
    bus.log.clear()
    lx = drv.read().values["illuminance"]
    count = int.from_bytes(bus.log[-3].data, "little")
    assert 8000 < count < 8300
    assert lx == pytest.approx(corrected(count * 2.1504))
    assert lx == pytest.approx(50000.0, rel=2e-4)
    assert clock.sleeps[-1] == pytest.approx(0.004 + 2 * 0.025)


def test_light_coming_on_saturates_once_then_recovers() -> None:
    env = {"lx": 0.5}
    chip = SimVEML7700(lambda: Environment(illuminance=env["lx"]))
    drv, _, _, _ = opened(chip)
    drv.read()
    drv.read()
    assert drv.setting == (2.0, 800)
    env["lx"] = 50000.0
    with pytest.raises(DriverError, match=r"saturated.*next reading uses gain 0\.125, 100 ms"):
        drv.read()
    # 65535 counts at 0.0042 lx/count = 275 lx at least: 512 counts at 1/8, 100 ms
    drv.open()  # what the runtime does after a failed read
    assert drv.read().values["illuminance"] == pytest.approx(50000.0, rel=1e-3)
    assert drv.setting == (0.125, 25)


@pytest.mark.parametrize(
    ("linear_lx", "expected"),
    [
        (0.0, (2.0, 800)),
        (0.83, (2.0, 800)),  # 98.8 counts at 2/400 ms: still <= 100
        (0.85, (2.0, 400)),  # 101.2 counts at 2/400 ms
        (3.0, (2.0, 200)),  # 44.6 counts at gain 1, 89.3 at gain 2 (100 ms), 178.6 at 200 ms
        (3.5, (2.0, 100)),  # 104.2 counts at gain 2, 100 ms
        (26.0, (1.0, 100)),  # 96.7 counts at 1/4, 386.9 at 1
        (53.7, (0.25, 100)),  # 99.9 counts at the start: raise the gain once
        (53.8, (0.125, 100)),  # 100.07 counts at the start: stay
        (5370.0, (0.125, 100)),  # 9989 counts
        (5380.0, (0.125, 50)),  # 10007 counts: shorten once (5004 at 50 ms)
        (10760.0, (0.125, 25)),  # 20015, 10007, 5004 counts
        (140000.0, (0.125, 25)),  # the shortest time is the end of the flow
    ],
)
def test_auto_range_follows_the_app_note_flow(
    linear_lx: float, expected: tuple[float, int]
) -> None:
    assert auto_setting(linear_lx) == expected


# --- faults -------------------------------------------------------------------------------------


def test_absent_chip_is_a_driver_error() -> None:
    with pytest.raises(DriverError, match="no chip answers at 0x10"):
        DRIVERS["veml7700"](SimBus()).open()


def test_wrong_chip_is_named() -> None:
    drv, _, _, _ = make(SimBME280())
    with pytest.raises(DriverError, match=r"ID register reads 0x0000.*not a VEML7700"):
        drv.open()


def test_chip_that_stops_answering_raises_oserror() -> None:
    drv, chip, _, _ = opened(lit(350.0))
    chip.nack = True
    with pytest.raises(OSError) as e:
        drv.read()
    assert e.value.errno == NACK_ERRNO
    drv.close()  # swallows the NACK


def test_chip_reset_is_detected_and_reopen_recovers() -> None:
    drv, chip, _, _ = opened(lit(350.0), auto_range=False)
    assert drv.read().values["illuminance"] == pytest.approx(350.0, rel=0.01)
    chip.reset()
    with pytest.raises(DriverError, match=r"ALS_CONF reads 0x0001, expected 0x1800 \(chip shut"):
        drv.read()
    drv.open()
    assert drv.read().values["illuminance"] == pytest.approx(350.0, rel=0.01)


def test_reset_is_detected_before_a_range_change_would_hide_it() -> None:
    drv, chip, bus, _ = opened(lit(2.0))
    drv.read()
    assert drv.setting != (0.125, 100)  # a range change is due
    chip.reset()
    bus.log.clear()
    with pytest.raises(DriverError, match="ALS_CONF reads 0x0001"):
        drv.read()
    assert writes(bus) == []  # nothing written over the evidence


def test_close_shuts_down() -> None:
    drv, chip, bus, _ = opened(auto_range=False)
    drv.close()
    assert writes(bus) == [b"\x00\x01\x18"]
    assert conf(chip) & 1


def test_read_before_open_is_an_error() -> None:
    drv, _, _, _ = make()
    with pytest.raises(DriverError, match="before open"):
        drv.read()


def test_sim_nacks_unknown_command_codes() -> None:
    bus = SimBus({ADDR: SimVEML7700()})
    with pytest.raises(OSError):
        bus.read_i2c_block_data(ADDR, 0x08, 2)


# --- options and identify -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gain": 0.5, "auto_range": False}, "gain must be one of"),
        ({"gain": 4.0, "auto_range": False}, "gain must be one of"),
        ({"integration_time": 150, "auto_range": False}, "integration_time must be one of"),
        ({"integration_time": 100.0, "auto_range": False}, "option 'integration_time' must"),
        ({"gain": "2", "auto_range": False}, "option 'gain' must be float"),
        ({"auto_range": 1}, "option 'auto_range' must be bool"),
        ({"gain": 0.125}, "auto_range chooses gain and integration_time"),
        ({"mtreg": 69}, "unknown option 'mtreg'"),
    ],
)
def test_bad_options_are_rejected_before_any_bus_io(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DRIVERS["veml7700"].validate_options(options)


def test_good_options_pass() -> None:
    DRIVERS["veml7700"].validate_options({"auto_range": False, "gain": 2, "integration_time": 25})
    DRIVERS["veml7700"].validate_options({})


def test_worst_read_time_is_the_longest_settle() -> None:
    assert DRIVERS["veml7700"].worst_read_time({}) == pytest.approx(0.004 + 1.6 + 0.05)
    manual = {"auto_range": False, "integration_time": 50}
    assert DRIVERS["veml7700"].worst_read_time(manual) == pytest.approx(0.004 + 0.1 + 0.05)


def test_identify_reads_the_id_register_only() -> None:
    drv, chip, bus, _ = opened(lit(350.0))
    before = dict(chip.registers)
    assert DRIVERS["veml7700"].identify(bus, ADDR) == "VEML7700 id 0xc481"
    assert bus.log == [Transfer(ADDR, "write", b"\x07"), Transfer(ADDR, "read", b"\x81\xc4")]
    assert chip.registers == before
    drv.read()  # the running driver did not notice


def test_identify_is_none_for_another_chip_or_nothing() -> None:
    assert DRIVERS["veml7700"].identify(SimBus({ADDR: SimBME280()}), ADDR) is None
    assert DRIVERS["veml7700"].identify(SimBus({ADDR: SimBH1750()}), ADDR) is None
    assert DRIVERS["veml7700"].identify(SimBus(), ADDR) is None

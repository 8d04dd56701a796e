"""SGP40 driver against the simulated chip.

Expected values come from the SGP40 datasheet (v1.0, tables 9-13: the measure command with its
default argument bytes 26 0F 80 00 A2 66 66 93, the tick formulas RH * 65535 / 100 and
(T + 45) * 65535 / 175 and their minimum/maximum words with CRCs, self-test words 0xD400/0x4B00),
from Sensirion's reference driver embedded-i2c-sgp40 (delays 30 ms, 320 ms, 1 ms) and low-power
example (170 ms warm-up), and, for the VOC index, from an independent instance of Sensirion's own
VocAlgorithm fed the same raw signals: the library is the reference, not our code.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from sensirion_gas_index_algorithm import sensirion_gas_index_algorithm_wrap as gia
from sensirion_gas_index_algorithm.voc_algorithm import VocAlgorithm
from smbus2 import i2c_msg

from drivers import DRIVERS, CRCError, DriverError
from drivers.sensirion import crc8
from drivers.sgp40 import SGP40
from drivers.sim import SimBus, VirtualClock
from drivers.sim.bme280 import SimBME280
from drivers.sim.bus import Transfer
from drivers.sim.environment import Environment
from drivers.sim.sgp40 import SimSGP40

DEFAULT_MEASURE = bytes.fromhex("260F 8000A2 666693")  # datasheet table 9, verbatim


def make(chip: SimSGP40 | None = None, **options: int):
    clock = VirtualClock()
    chip = chip or SimSGP40()
    bus = SimBus({0x59: chip}, clock=clock)
    drv = SGP40(bus, sleep=clock.sleep, clock=clock, **options)
    return drv, bus, chip, clock


def opened(chip: SimSGP40 | None = None, **options: int):
    drv, bus, chip, clock = make(chip, **options)
    drv.open()
    bus.log.clear()
    clock.sleeps.clear()
    return drv, bus, chip, clock


def raw_write(bus: SimBus, data: bytes) -> None:
    bus.i2c_rdwr(i2c_msg.write(0x59, data))


def raw_read(bus: SimBus, length: int) -> bytes:
    msg = i2c_msg.read(0x59, length)
    bus.i2c_rdwr(msg)
    return bytes(msg)


def writes(bus: SimBus) -> list[bytes]:
    return [t.data for t in bus.log if t.kind == "write"]


def feed(drv: SGP40, chip: SimSGP40, raws: list[int]) -> list[float]:
    out = []
    for raw in raws:
        chip.forced_raw = raw
        values = drv.read().values
        # The library's 0 (its blackout) is published as no value at all.
        out.append(values["voc_index"] if values else 0.0)
    return out


def room_signal(n: int) -> list[int]:
    """Clean air with a little wobble, then a VOC event (more VOCs lower SRAW), then recovery."""
    clean = [30000 + (i * 37) % 61 - 30 for i in range(n)]
    event = [26000 + (i * 13) % 41 for i in range(n // 3)]
    return clean + event + clean[: n // 3]


# --- the argument words -------------------------------------------------------------------------


def test_datasheet_crcs_of_the_argument_words() -> None:
    # Table 10: default 0x8000 -> 0xA2, 0x6666 -> 0x93; minimum 0x0000 -> 0x81; max 0xFFFF -> 0xAC.
    assert [crc8(bytes.fromhex(w)) for w in ("8000", "6666", "0000", "FFFF")] == [
        0xA2, 0x93, 0x81, 0xAC,
    ]  # fmt: skip


def test_25_degrees_50_percent_are_exactly_the_datasheet_defaults() -> None:
    drv, bus, chip, _ = opened()
    drv.compensate({"temperature": 25.0, "humidity": 50.0})
    drv.read()
    # 50 * 65535 / 100 = 32767.5 -> 0x8000 (rounded half up, as the datasheet's default shows);
    # (25 + 45) * 65535 / 175 = 26214 = 0x6666.
    assert chip.compensation_words[-1] == (0x8000, 0x6666)
    assert writes(bus)[-1] == DEFAULT_MEASURE


def test_30_percent_minus_10_degrees_hand_computed() -> None:
    drv, bus, chip, _ = opened()
    drv.compensate({"temperature": -10.0, "humidity": 30.0})
    drv.read()
    rh = 19661  # 30 * 65535 / 100 = 19660.5, rounded half up = 0x4CCD
    t = 13107  # (-10 + 45) * 65535 / 175 = 35 * 374.485... = 13107 exactly = 0x3333
    assert (rh, t) == (0x4CCD, 0x3333)
    assert chip.compensation_words[-1] == (rh, t)
    assert writes(bus)[-1] == bytes([0x26, 0x0F, 0x4C, 0xCD, crc8(b"\x4c\xcd"),
                                     0x33, 0x33, crc8(b"\x33\x33")])  # fmt: skip


@pytest.mark.parametrize(
    ("temperature", "humidity", "expected"),
    [
        (-45.0, 0.0, bytes.fromhex("0000 81 0000 81")),  # table 10 minima
        (130.0, 100.0, bytes.fromhex("FFFF AC FFFF AC")),  # table 10 maxima
        (-60.0, -3.0, bytes.fromhex("0000 81 0000 81")),  # beyond the scale: clamped
        (200.0, 150.0, bytes.fromhex("FFFF AC FFFF AC")),
    ],
)
def test_compensation_is_clamped_to_the_tick_scale(
    temperature: float, humidity: float, expected: bytes
) -> None:
    drv, bus, _, _ = opened()
    drv.compensate({"temperature": temperature, "humidity": humidity})
    drv.read()
    assert writes(bus)[-1] == b"\x26\x0f" + expected


@pytest.mark.parametrize(
    "values",
    [
        {},  # no fresh sibling reading
        {"temperature": 22.0},  # humidity missing: one real value next to a default is wrong
        {"humidity": 40.0},
        {"temperature": float("nan"), "humidity": 40.0},
    ],
)
def test_without_both_sibling_values_the_defaults_are_sent(values: dict[str, float]) -> None:
    drv, bus, chip, _ = opened()
    drv.compensate({"temperature": -10.0, "humidity": 30.0})
    drv.compensate(values)  # a later call without both values falls back, not sticks
    drv.read()
    assert chip.compensation_words[-1] == (0x8000, 0x6666)
    assert writes(bus)[-1] == DEFAULT_MEASURE


# --- the conversation ---------------------------------------------------------------------------


def test_open_reads_the_serial_idles_the_chip_and_runs_the_self_test() -> None:
    drv, bus, chip, clock = make(SimSGP40(serial=(0x0000, 0x0365, 0x3A1F)))
    drv.open()
    # Serial words 0x0000 (datasheet CRC 0x81), 0x0365, 0x3A1F, each with its CRC.
    serial_reply = b"\x00\x00\x81" + b"\x03\x65" + bytes([crc8(b"\x03\x65")])
    serial_reply += b"\x3a\x1f" + bytes([crc8(b"\x3a\x1f")])
    assert bus.log == [
        Transfer(0x59, "write", b"\x36\x82"),
        Transfer(0x59, "read", serial_reply),
        Transfer(0x59, "write", b"\x36\x15"),  # heater off: a known, idle start
        Transfer(0x59, "write", b"\x28\x0e"),
        Transfer(0x59, "read", bytes([0xD4, 0x00, crc8(b"\xd4\x00")])),
    ]
    assert clock.sleeps == [0.001, 0.001, 0.320]
    assert drv.serial_number == 0x0000_0365_3A1F
    assert not chip.heater_on


def test_first_read_warms_the_plate_then_measures_each_second() -> None:
    drv, bus, chip, clock = opened()
    drv.read()
    # The first measurement after idle switches the hotplate on; it is discarded and the real
    # one follows 170 ms later (Sensirion's low-power example).
    assert writes(bus) == [DEFAULT_MEASURE, DEFAULT_MEASURE]
    assert clock.sleeps == [0.030, 0.170, 0.030]
    bus.log.clear()
    clock.sleeps.clear()
    drv.read()
    assert writes(bus) == [DEFAULT_MEASURE]  # the plate stays hot at 1 s: one measurement
    assert clock.sleeps == [0.030]
    assert chip.heater_on


def test_low_power_pulses_the_heater_for_each_sample() -> None:
    drv, bus, chip, clock = opened(sampling_interval=10)
    for _ in range(2):
        bus.log.clear()
        clock.sleeps.clear()
        drv.read()
        assert writes(bus) == [DEFAULT_MEASURE, DEFAULT_MEASURE, b"\x36\x15"]
        assert clock.sleeps == [0.030, 0.170, 0.030, 0.001]
        assert not chip.heater_on


def test_close_turns_the_heater_off_and_swallows_a_missing_chip() -> None:
    drv, bus, chip, _ = opened()
    drv.read()
    drv.close()
    assert writes(bus)[-1] == b"\x36\x15" and not chip.heater_on
    chip.nack = True
    drv.close()  # no exception


def test_a_chip_left_measuring_by_another_process_is_idled_on_open() -> None:
    drv, bus, chip, clock = make()
    raw_write(bus, DEFAULT_MEASURE)  # another process started the measurement mode
    clock.sleep(0.030)
    assert chip.heater_on
    drv.open()
    assert not chip.heater_on


# --- the simulated chip -------------------------------------------------------------------------


def test_sim_nacks_a_read_before_the_measurement_is_done() -> None:
    clock = VirtualClock()
    chip = SimSGP40(lambda: Environment(voc_raw=28000))
    bus = SimBus({0x59: chip}, clock=clock)
    raw_write(bus, DEFAULT_MEASURE)
    clock.sleep(0.029)
    with pytest.raises(OSError) as e:
        raw_read(bus, 3)
    assert e.value.errno == errno.EREMOTEIO
    clock.sleep(0.001)
    assert raw_read(bus, 3) == bytes([0x6D, 0x60, crc8(b"\x6d\x60")])  # 28000 = 0x6D60


def test_sim_drops_a_command_with_a_bad_argument_crc() -> None:
    chip = SimSGP40()
    bus = SimBus({0x59: chip})
    raw_write(bus, bytes.fromhex("260F 8000A3 666693"))  # RH word's CRC is 0xA2, not 0xA3
    assert chip.commands == [] and chip.compensation_words == []
    with pytest.raises(OSError):
        raw_read(bus, 3)  # nothing to read: the command never ran


@pytest.mark.parametrize("data", [b"\x26\x0f", b"\x20\x32", b"\x36\x82" + bytes.fromhex("8000A2")])
def test_sim_nacks_unknown_commands_and_missing_or_extra_arguments(data: bytes) -> None:
    bus = SimBus({0x59: SimSGP40()})
    with pytest.raises(OSError):
        raw_write(bus, data)


# --- the VOC index ------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 10])
def test_voc_index_is_what_sensirions_algorithm_gives_for_the_same_signal(interval: int) -> None:
    drv, _, chip, _ = opened(sampling_interval=interval)
    raws = room_signal(90)
    reference = VocAlgorithm(interval)
    expected = [float(reference.process(raw)) for raw in raws]
    assert feed(drv, chip, raws) == expected
    assert max(expected) > 150  # the event shows: the comparison covers more than the blackout


@pytest.mark.parametrize("interval", [1, 10])
def test_blackout_publishes_nothing_then_the_index(interval: int) -> None:
    # gas index "Zero during initial blackout period and 1..500 afterwards" (library header).
    # Its uptime starts at 0 and grows by the sampling interval while uptime <= 45 s, so the
    # blackout is 45 // 1 + 1 = 46 samples at 1 s and 45 // 10 + 1 = 5 samples at 10 s.
    assert gia.GasIndexAlgorithm_INITIAL_BLACKOUT == 45.0
    blackout = 45 // interval + 1
    drv, _, chip, _ = opened(sampling_interval=interval)
    chip.forced_raw = 30000
    out = [drv.read().values for _ in range(blackout + 5)]
    assert out[:blackout] == [{}] * blackout
    assert all(1 <= v["voc_index"] <= 500 for v in out[blackout:])


@pytest.mark.parametrize("raw", [0, 1, 0x8000, 64999, 0xFFFF])
def test_raw_signal_edges_are_decoded_and_passed_on_faithfully(raw: int) -> None:
    drv, _, chip, _ = opened()
    raws = [30000] * 50 + [raw] * 3
    reference = VocAlgorithm()
    expected = [float(reference.process(r)) for r in raws]
    assert feed(drv, chip, raws) == expected
    assert drv.last_sraw == raw


def test_an_out_of_range_room_is_clamped_by_the_16_bit_word_only() -> None:
    chip = SimSGP40(lambda: Environment(voc_raw=70000))
    drv, _, _, _ = opened(chip)
    drv.read()
    assert drv.last_sraw == 0xFFFF


def test_a_reopen_after_a_fault_keeps_the_learned_baseline() -> None:
    drv, _, chip, _ = opened()
    raws = room_signal(60)
    reference = VocAlgorithm()
    expected = [float(reference.process(raw)) for raw in raws]
    got = feed(drv, chip, raws[:50])
    chip.nack = True  # the chip drops off the bus for a moment...
    with pytest.raises(OSError):
        drv.read()
    chip.nack = False
    chip.reset()  # ...and browns out (nothing to lose but the hotplate's heat)
    drv.open()  # the runtime re-opens after any failure
    got += feed(drv, chip, raws[50:])
    assert got == expected  # no new blackout: the same algorithm carried on


def test_a_gap_of_more_than_ten_minutes_starts_learning_afresh() -> None:
    drv, _, chip, clock = opened()
    feed(drv, chip, [30000] * 50)
    clock.sleep(601)  # Sensirion: do not carry states over an interruption > 10 minutes
    fresh = VocAlgorithm()
    expected = [float(fresh.process(r)) for r in [29000] * 50]
    assert feed(drv, chip, [29000] * 50) == expected
    assert expected[0] == 0.0  # blackout again


def test_states_can_be_taken_and_restored() -> None:
    drv, _, chip, _ = opened()
    feed(drv, chip, room_signal(60))
    reference = VocAlgorithm()
    for raw in room_signal(60):
        reference.process(raw)
    state0, state1 = drv.get_states()
    assert (state0, state1) == tuple(reference.get_states())
    later, _, later_chip, _ = opened()
    later.set_states(state0, state1)
    restored = VocAlgorithm()
    restored.set_states(state0, state1)
    raws = [29500] * 10
    assert feed(later, later_chip, raws) == [float(restored.process(r)) for r in raws]


# --- faults -------------------------------------------------------------------------------------


def test_self_test_failure_is_an_error() -> None:
    chip = SimSGP40()
    chip.self_test_fails = True
    drv, _, _, _ = make(chip)
    with pytest.raises(DriverError, match=r"self-test answered 0x4b00, one or more tests failed"):
        drv.open()


class OtherSensirionChip(SimSGP40):
    """A different Sensirion part at 0x59 that answers the serial but not with an SGP40's test."""

    def execute(self, command, args):  # type: ignore[no-untyped-def]
        if command == 0x280E:
            return [0x0000], 0.320
        return super().execute(command, args)


def test_a_self_test_word_no_sgp40_gives_names_the_doubt() -> None:
    drv, _, _, _ = make(OtherSensirionChip())
    with pytest.raises(DriverError, match=r"answered 0x0000, expected 0xd400: is this an SGP40"):
        drv.open()


def test_bad_crc_in_a_measurement_is_a_crc_error() -> None:
    drv, _, chip, _ = opened()
    drv.read()
    chip.corrupt_checksum = True
    with pytest.raises(CRCError, match="CRC mismatch"):
        drv.read()


def test_bad_crc_in_the_serial_number_is_a_crc_error_from_open() -> None:
    chip = SimSGP40()
    chip.corrupt_checksum = True
    drv, _, _, _ = make(chip)
    with pytest.raises(CRCError, match="serial number is garbled"):
        drv.open()


def test_absent_chip_is_a_driver_error() -> None:
    clock = VirtualClock()
    drv = SGP40(SimBus(clock=clock), sleep=clock.sleep)
    with pytest.raises(DriverError, match="no chip answers at 0x59"):
        drv.open()


def test_read_before_open_is_an_error() -> None:
    drv, _, _, _ = make()
    with pytest.raises(DriverError, match=r"read\(\) before open\(\)"):
        drv.read()


# --- identify -----------------------------------------------------------------------------------


def test_identify_names_the_serial_without_disturbing_a_running_chip() -> None:
    chip = SimSGP40(serial=(0x0000, 0x0365, 0x3A1F))
    chip.heater_on = True  # an agent has it in measurement mode
    bus = SimBus({0x59: chip})  # real clock: identify() waits its 1 ms with time.sleep
    assert SGP40.identify(bus, 0x59) == "SGP40 serial 0x000003653a1f"
    assert chip.commands == [0x3682]  # an ID query only: no measurement, no heater command
    assert chip.heater_on


def test_identify_is_none_for_a_chip_that_is_not_sensirion() -> None:
    assert SGP40.identify(SimBus({0x59: SimBME280()}), 0x59) is None
    chip = SimSGP40()
    chip.corrupt_checksum = True
    assert SGP40.identify(SimBus({0x59: chip}), 0x59) is None


# --- configuration ------------------------------------------------------------------------------


def test_interval_must_match_the_algorithms_sampling_interval() -> None:
    cls = DRIVERS["sgp40"]
    cls.validate_interval(1.0, {})
    cls.validate_interval(10.0, {"sampling_interval": 10})
    with pytest.raises(ValueError, match=r"interval must be 1, not 5"):
        cls.validate_interval(5.0, {})
    with pytest.raises(ValueError, match=r"interval must be 10, not 1"):
        cls.validate_interval(1.0, {"sampling_interval": 10})
    with pytest.raises(ValueError, match=r"interval must be 1, not 10"):
        cls.validate_interval(10.0, {})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sampling_interval": 5}, r"sampling_interval must be one of \[1, 10\]"),
        ({"sampling_interval": 0}, r"sampling_interval must be one of \[1, 10\]"),
        ({"sampling_interval": True}, r"sampling_interval must be one of"),
        ({"sampling_interval": 1.0}, r"option 'sampling_interval' must be int"),
        ({"gain": 2}, r"unknown option 'gain'"),
    ],
)
def test_bad_options_are_rejected_before_any_bus_io(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DRIVERS["sgp40"].validate_options(options)


def test_a_missing_algorithm_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sensirion_gas_index_algorithm.voc_algorithm", None)
    with pytest.raises(ValueError, match=r"pip install 'sensirion-gas-index-algorithm>=3.2,<4'"):
        DRIVERS["sgp40"].validate_options({})


def test_the_algorithm_is_loaded_only_when_an_sgp40_is_built() -> None:
    code = (
        "import sys, drivers.sgp40\n"
        "assert 'sensirion_gas_index_algorithm' not in sys.modules\n"
        "drivers.sgp40.SGP40(None)\n"
        "assert 'sensirion_gas_index_algorithm' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)

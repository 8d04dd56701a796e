"""PMSA003I driver against the simulated sensor.

Expected values are read off real frames by hand (each frame's source is given where it is used)
and check words are summed by hand in the comments: the check word is the 16-bit sum of bytes
0..29 (Plantower PMS5003 manual V2.3 appendix; Adafruit_CircuitPython_PM25 and ESPHome agree).
"""

from __future__ import annotations

import pytest

from drivers import DRIVERS, CRCError, DriverError
from drivers.pmsa003i import PMSA003I, Frame
from drivers.sim import SimBus, VirtualClock
from drivers.sim.bus import NACK_ERRNO, RegisterChip, Transfer
from drivers.sim.pmsa003i import BOOT_S, WARM_UP_S, Environment, SimPMSA003I, pack_frame

ADDRESS = 0x12

# A real PMSA003I read over I2C in clean air: the "sample output" comment in
# Bucknalla/PMSA003I-driver, drivers/pmsa003i/pmsa003i.c (a Zephyr driver).
REAL_PMSA003I = bytes.fromhex(
    "42 4D 00 1C 00 01 00 01 00 01 00 01 00 01 00 01 "
    "01 92 00 4E 00 03 00 00 00 00 00 00 71 00 02 06"
)
# A real Plantower frame (same 32-byte layout) where CF=1 and atmospheric PM1.0 differ: Realtek's
# Ameba Arduino API documentation, "PMS3003 Class", update_cache(), which also works out its
# check word (0x0446).
REAL_AMEBA = bytes.fromhex(
    "42 4d 00 1c 00 1b 00 21 00 29 00 1a 00 21 00 29 "
    "2b fb 04 be 00 6b 00 10 00 04 00 04 67 00 04 46"
)
# A real PMS5003T capture where PM2.5 differs (35 atmospheric, 39 CF=1): the first line of the
# PMS5003T hexdump in avaldebe/PyPMS, docs/sensors/Plantower.md. Same layout for the PM words
# (the T model puts temperature and humidity where the last counts are; only PM is checked).
REAL_PMS5003T = bytes.fromhex(
    "42 4d 00 1c 00 17 00 27 00 29 00 16 00 23 00 29 "
    "10 08 04 a9 01 16 00 0c 00 d4 00 e0 9a 00 04 aa"
)
# A real read that lost a byte on the way, so the next frame's "BM" sits where the check word
# should be: forums.pimoroni.com, "PMS5003 sensor appears to be sending truncated messages".
REAL_SHIFTED = bytes(
    [66, 77, 0, 28, 0, 4, 0, 5, 0, 5, 0, 4, 0, 5, 0, 3, 126, 0, 226, 0, 23, 0, 2, 0, 0, 0, 0, 151,
     0, 2, 66, 77]
)  # fmt: skip


def make(
    chip: SimPMSA003I, concentration: str = "atmospheric"
) -> tuple[PMSA003I, SimBus, VirtualClock]:
    clock = VirtualClock()
    bus = SimBus({ADDRESS: chip}, clock=clock)
    drv = DRIVERS["pmsa003i"](bus, sleep=clock.sleep, concentration=concentration)
    assert isinstance(drv, PMSA003I)
    return drv, bus, clock


def opened(
    chip: SimPMSA003I, concentration: str = "atmospheric"
) -> tuple[PMSA003I, SimBus, VirtualClock]:
    drv, bus, clock = make(chip, concentration)
    drv.open()
    return drv, bus, clock


def values(drv: PMSA003I) -> tuple[float, float, float]:
    v = drv.read().values
    return v["pm1_0"], v["pm2_5"], v["pm10"]


# Decoding -------------------------------------------------------------------------------------


def test_real_pmsa003i_frame_decodes_by_hand() -> None:
    # Check word by hand: 0x42+0x4D+0x00+0x1C = 171; six PM words of 0x0001 = 6; counts
    # 0x01+0x92 = 147, 0x4E = 78, 0x03 = 3; version 0x71 = 113; error 0.
    # 171 + 6 + 147 + 78 + 3 + 113 = 518 = 0x0206, the last two bytes of the frame.
    assert 171 + 6 + 147 + 78 + 3 + 113 == 0x0206 == int.from_bytes(REAL_PMSA003I[30:], "big")
    frame = Frame.parse(REAL_PMSA003I)
    assert frame.pm_cf1 == (1, 1, 1)
    assert frame.pm_atmospheric == (1, 1, 1)
    assert frame.counts == (0x0192, 0x004E, 3, 0, 0, 0) == (402, 78, 3, 0, 0, 0)
    assert (frame.version, frame.error) == (0x71, 0)

    chip = SimPMSA003I()
    chip.forced_frame = REAL_PMSA003I
    drv, _, _ = opened(chip)
    assert values(drv) == (1.0, 1.0, 1.0)


def test_real_frame_cf1_and_atmospheric_are_picked_by_the_option() -> None:
    # Check word by hand: 171 (header) + 27+33+41+26+33+41 (PM) + 43+251 + 4+190 + 107 + 16 + 4
    # + 4 (counts) + 103 (version 0x67) = 1094 = 0x0446, as the Ameba documentation has it.
    assert 171 + 201 + 294 + 194 + 107 + 16 + 8 + 103 == 0x0446
    frame = Frame.parse(REAL_AMEBA)
    assert frame.pm_cf1 == (0x1B, 0x21, 0x29) == (27, 33, 41)
    assert frame.pm_atmospheric == (0x1A, 0x21, 0x29) == (26, 33, 41)
    assert frame.counts == (0x2BFB, 0x04BE, 0x6B, 0x10, 4, 4) == (11259, 1214, 107, 16, 4, 4)

    chip = SimPMSA003I()
    chip.forced_frame = REAL_AMEBA
    assert values(opened(chip)[0]) == (26.0, 33.0, 41.0)  # default: atmospheric
    assert values(opened(chip, "cf1")[0]) == (27.0, 33.0, 41.0)

    # PMS5003T: CF=1 0x17, 0x27, 0x29 = 23, 39, 41; atmospheric 0x16, 0x23, 0x29 = 22, 35, 41.
    # Check word: 171 + 201 + (0x10+0x08) + (0x04+0xa9) + (0x01+0x16) + 0x0c + 0xd4 + 0xe0
    # + 0x9a = 171 + 201 + 24 + 173 + 23 + 12 + 212 + 224 + 154 = 1194 = 0x04aa.
    assert 171 + 201 + 24 + 173 + 23 + 12 + 212 + 224 + 154 == 0x04AA
    chip.forced_frame = REAL_PMS5003T
    assert values(opened(chip)[0]) == (22.0, 35.0, 41.0)
    assert values(opened(chip, "cf1")[0]) == (23.0, 39.0, 41.0)


@pytest.mark.parametrize(
    ("pm_bytes", "check", "expected"),
    [
        # Zero mass with one particle > 0.3 µm counted (count word 1): header 171 + count 1
        # + version 0x71 (113) = 285 = 0x011D.
        ("00 00 " * 6, "01 1D", 0.0),
        # 1000 = 0x03E8, the top of the plausible range: 171 + 6 * (0x03 + 0xE8) + 113
        # = 171 + 6 * 235 + 113 = 1694 = 0x069E.
        ("03 E8 " * 6, "06 9E", 1000.0),
        # Full scale 0xFFFF: 171 + 6 * 510 + 113 = 3344 = 0x0D10.
        ("FF FF " * 6, "0D 10", 65535.0),
    ],
)
def test_edges_with_hand_made_frames(pm_bytes: str, check: str, expected: float) -> None:
    counts = [1 if expected == 0 else 0] + [0] * 5
    frame = bytes.fromhex(
        "42 4D 00 1C " + pm_bytes + " ".join(f"{c:04x}" for c in counts) + " 71 00 " + check
    )
    chip = SimPMSA003I()
    chip.forced_frame = frame
    assert values(opened(chip)[0]) == (expected, expected, expected)
    assert values(opened(chip, "cf1")[0]) == (expected, expected, expected)
    # The sim's own check word agrees with the hand-made one.
    word = int(expected)
    assert pack_frame([word] * 6 + counts) == frame


def test_an_all_zero_frame_is_the_fan_spinning_up_and_publishes_nothing() -> None:
    # Every word zero, counts included: 171 + 113 = 284 = 0x011C. Real air always has some
    # particles above 0.3 µm, so this is the warm-up after power-on, not clean air.
    chip = SimPMSA003I()
    chip.forced_frame = bytes.fromhex("42 4D 00 1C " + "00 00 " * 12 + "71 00 01 1C")
    drv = opened(chip)[0]
    assert drv.read().values == {}


def test_environment_round_trip_and_out_of_range_values() -> None:
    env = Environment(pm1_0=12.4, pm2_5=35.6, pm10=1500.0)  # PM10 above the plausible 1000
    chip = SimPMSA003I(lambda: env)
    assert values(opened(chip)[0]) == (12.0, 36.0, 1500.0)  # decoded faithfully
    # The sim's CF=1 model: equal up to 30, then 30 + 1.5 * (x - 30):
    # 35.6 -> 38.4 -> 38; 1500 -> 2235.
    assert values(opened(chip, "cf1")[0]) == (12.0, 38.0, 2235.0)


def test_a_steady_frame_is_not_a_fault() -> None:
    drv, _, _ = opened(SimPMSA003I())
    readings = {values(drv) for _ in range(50)}
    assert readings == {(4.0, 6.0, 8.0)}  # Environment's defaults


# Checksum and framing faults -----------------------------------------------------------------


def test_checksum_failure_is_a_crc_error() -> None:
    chip = SimPMSA003I()
    drv, _, _ = opened(chip)
    chip.corrupt_checksum = True
    with pytest.raises(CRCError, match="check word"):
        drv.read()
    chip.forced_frame = REAL_SHIFTED  # 0x424D where the check word should be; bytes sum 0x02D7
    chip.corrupt_checksum = False
    with pytest.raises(CRCError, match=r"check word 0x424d, bytes 0\.\.29 sum to 0x02d7"):
        drv.read()
    with pytest.raises(CRCError):
        make(chip)[0].open()


def test_truncated_frame_is_a_crc_error() -> None:
    chip = SimPMSA003I()
    drv, _, _ = opened(chip)
    chip.truncate_after = 20  # the rest reads 0xFF, check word 0xFFFF
    with pytest.raises(CRCError, match="check word 0xffff"):
        drv.read()


def test_bad_start_is_a_driver_error_naming_what_was_read() -> None:
    chip = SimPMSA003I()
    drv, _, _ = opened(chip)
    chip.bad_start = True
    with pytest.raises(DriverError, match="frame starts 0x00 0x4d, expected 0x42 0x4d") as e:
        drv.read()
    assert not isinstance(e.value, CRCError)
    with pytest.raises(DriverError, match="frame starts 0x00 0x4d"):
        make(chip)[0].open()


def test_wrong_frame_length_is_a_driver_error() -> None:
    # A PMS3003-style header (frame length 2*9+2 = 20) with a correct check word.
    frame = bytearray(REAL_PMSA003I)
    frame[3] = 0x14
    frame[30:] = (sum(frame[:30])).to_bytes(2, "big")
    chip = SimPMSA003I()
    chip.forced_frame = bytes(frame)
    with pytest.raises(DriverError, match="frame length word 20, expected 28"):
        make(chip)[0].open()


def test_an_error_byte_is_logged_once_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    # No error codes are published (the PMS5003 V2.3 manual calls the byte reserved), so a
    # value there must not make every reading fail.
    chip = SimPMSA003I()
    drv, _, _ = opened(chip)
    chip.error_code = 0x02
    assert values(drv) == (4.0, 6.0, 8.0)
    assert values(drv) == (4.0, 6.0, 8.0)
    assert [r.getMessage() for r in caplog.records].count(
        "pmsa003i at 0x12: sensor reports error byte 0x02"
    ) == 1


# Bus faults, power cycles -----------------------------------------------------------------------


def test_absent_chip_is_a_driver_error_after_a_bounded_wait() -> None:
    clock = VirtualClock()
    drv = DRIVERS["pmsa003i"](SimBus(clock=clock), sleep=clock.sleep)
    with pytest.raises(DriverError, match="no chip answers at 0x12"):
        drv.open()
    assert sum(clock.sleeps) == pytest.approx(3.0)  # waited out a boot, then gave up


def test_nack_while_running_reaches_the_runtime() -> None:
    chip = SimPMSA003I()
    drv, _, _ = opened(chip)
    chip.nack = True
    with pytest.raises(OSError) as e:
        drv.read()
    assert e.value.errno == NACK_ERRNO


def test_power_cycle_then_warm_up_then_real_values() -> None:
    chip = SimPMSA003I()
    drv, _, clock = opened(chip)
    assert values(drv) == (4.0, 6.0, 8.0)
    chip.reset()
    with pytest.raises(OSError):  # booting: NACKs, the runtime re-opens
        drv.read()
    drv.open()  # waits out the boot window
    assert BOOT_S <= sum(clock.sleeps) <= 3.0
    # Warming up: all-zero frames with a valid check word, published as nothing yet.
    assert drv.read().values == {}
    clock.sleep(WARM_UP_S)
    assert values(drv) == (4.0, 6.0, 8.0)


def test_cold_start_open_succeeds_once_the_chip_boots() -> None:
    chip = SimPMSA003I()
    drv, bus, clock = make(chip)
    chip.reset()
    drv.open()
    reads = [t for t in bus.log if t.kind == "read"]
    assert len(reads) == 1 and len(reads[0].data) == 32  # NACKed attempts log nothing
    assert clock.sleeps and all(s == 0.25 for s in clock.sleeps)


# The conversation -------------------------------------------------------------------------------


def test_conversation_is_one_32_byte_read_per_reading() -> None:
    chip = SimPMSA003I()
    drv, bus, clock = make(chip)
    drv.open()
    assert bus.log == [Transfer(ADDRESS, "read", bus.log[0].data)]
    assert bus.log[0].data[:2] == b"BM" and len(bus.log[0].data) == 32
    bus.log.clear()
    drv.read()
    assert bus.log == [Transfer(ADDRESS, "read", bus.log[0].data)]
    assert len(bus.log[0].data) == 32
    assert clock.sleeps == []  # nothing to wait for: the frame is always there
    drv.close()
    assert len(bus.log) == 1  # close() has nothing to say over I2C


def test_sim_nacks_commands() -> None:
    # The I2C side takes no commands: anything but a pointer-0 write is refused.
    chip = SimPMSA003I()
    drv, _, _ = opened(chip)
    with pytest.raises(OSError):
        drv.send(b"\xe4\x00")  # the UART models' sleep command
    drv.send(b"\x00")
    assert values(drv) == (4.0, 6.0, 8.0)


# Options and identify ------------------------------------------------------------------------


def test_options() -> None:
    cls = DRIVERS["pmsa003i"]
    cls.validate_options({})
    cls.validate_options({"concentration": "cf1"})
    with pytest.raises(ValueError, match=r"concentration must be one of \['atmospheric', 'cf1'\]"):
        cls.validate_options({"concentration": "standard"})
    with pytest.raises(ValueError, match="option 'concentration' must be str"):
        cls.validate_options({"concentration": 1})
    with pytest.raises(ValueError, match="unknown option 'standard_units'"):
        cls.validate_options({"standard_units": True})
    assert cls(None).options == {"concentration": "atmospheric"}


def test_identify() -> None:
    clock = VirtualClock()
    chip = SimPMSA003I()
    bus = SimBus({ADDRESS: chip}, clock=clock)
    assert PMSA003I.identify(bus, ADDRESS) == "PMSA003I (frame version 0x71)"
    assert [t.kind for t in bus.log] == ["read"]  # one read, nothing written
    chip.error_code = 0x02  # still a PMSA003I, even when it reports a fault
    assert PMSA003I.identify(bus, ADDRESS) == "PMSA003I (frame version 0x71)"
    chip.forced_frame = REAL_AMEBA
    assert PMSA003I.identify(bus, ADDRESS) == "PMSA003I (frame version 0x67)"
    chip.corrupt_checksum = True
    assert PMSA003I.identify(bus, ADDRESS) is None
    chip.reset()  # booting: NACKs
    assert PMSA003I.identify(bus, ADDRESS) is None
    other = SimBus({ADDRESS: RegisterChip()})  # some register chip at 0x12 reads zeros
    assert PMSA003I.identify(other, ADDRESS) is None
    assert PMSA003I.identify(SimBus(), ADDRESS) is None

"""Sensirion SGP40 VOC sensor: raw signal from the chip, VOC index from Sensirion's algorithm.

The chip only measures a raw signal (SRAW_VOC, ticks); the VOC index is computed on the host by
Sensirion's gas index algorithm, used as published in the `sensirion-gas-index-algorithm` package
(not re-implemented here). The algorithm learns the room's baseline over hours and must be fed at
a fixed sampling interval, so the device interval has to match (validate_interval).

Checked against the SGP40 datasheet (v1.0 July 2020 tables 9-15: commands, argument ticks and
their CRCs, self-test result words; v1.1 September 2021: idle after turn-heater-off), Sensirion's
reference driver embedded-i2c-sgp40 (sgp40_i2c.c: execution times 30 ms, 320 ms, 1 ms, 1 ms) and
the gas-index-algorithm sources (sampling interval "tested for 1s and 10s"; the low-power sequence
of examples/raspberry-pi/low_power_example.c: heater on, 170 ms, measure, heater off).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import time
from collections.abc import Mapping
from typing import Any, Callable, ClassVar, Optional

from smbus2 import i2c_msg

from drivers.base import CRCError, DriverError, Measurement, Sleep
from drivers.sensirion import SensirionDriver, unpack_words

SGP40_ADDRESS = 0x59  # fixed, datasheet 4.2

CMD_MEASURE_RAW_SIGNAL = 0x260F  # args: RH ticks, T ticks; reply: SRAW_VOC
CMD_EXECUTE_SELF_TEST = 0x280E
CMD_TURN_HEATER_OFF = 0x3615
CMD_GET_SERIAL_NUMBER = 0x3682

# Execution times, s (maxima of the reference driver; the datasheet says 30 ms for a measurement).
MEASURE_RAW_TIME = 0.030
SELF_TEST_TIME = 0.320
HEATER_OFF_TIME = 0.001
SERIAL_NUMBER_TIME = 0.001
# A measurement straight after the hotplate was off reads a plate still heating up; Sensirion's
# low-power example discards it and measures again 170 ms later.
HEATER_WARM_UP_TIME = 0.170

SELF_TEST_PASSED = 0xD400
SELF_TEST_FAILED = 0x4B00  # "one or more tests have failed" (hotplate or MOX material)

# Sent when the room's temperature/humidity is unknown: the datasheet's "compensation disabled".
DEFAULT_HUMIDITY_TICKS = 0x8000  # 50 %RH
DEFAULT_TEMPERATURE_TICKS = 0x6666  # 25 °C
# The tick scales span exactly these ranges (datasheet table 10: 0x0000..0xFFFF).
HUMIDITY_RANGE = (0.0, 100.0)  # %RH
TEMPERATURE_RANGE = (-45.0, 130.0)  # °C

# Sampling intervals (s) Sensirion tested the algorithm with. At 1 s the hotplate stays on (the
# datasheet's continuous operation); at 10 s it is pulsed for each sample and off in between.
SAMPLING_INTERVALS = (1, 10)
LOW_POWER_FROM = 10
# Sensirion: learned states must not be carried over an interruption longer than 10 minutes;
# after such a gap the algorithm starts learning afresh.
MAX_GAP = 600.0  # s

ALGORITHM_MODULE = "sensirion_gas_index_algorithm.voc_algorithm"
ALGORITHM_REQUIREMENT = "sensirion-gas-index-algorithm>=3.2,<4"


def humidity_ticks(relative_humidity: float) -> int:
    """%RH to the chip's argument word: RH * 65535 / 100, clamped to 0..100 %RH, rounded."""
    rh = min(max(relative_humidity, HUMIDITY_RANGE[0]), HUMIDITY_RANGE[1])
    return int(rh * 65535 / 100 + 0.5)


def temperature_ticks(temperature: float) -> int:
    """°C to the chip's argument word: (T + 45) * 65535 / 175, clamped to -45..130 °C, rounded."""
    t = min(max(temperature, TEMPERATURE_RANGE[0]), TEMPERATURE_RANGE[1])
    return int((t + 45) * 65535 / 175 + 0.5)


def _load_algorithm() -> Any:
    """The VocAlgorithm class, imported only when an SGP40 is configured."""
    try:
        module = importlib.import_module(ALGORITHM_MODULE)
    except ImportError as e:
        raise ValueError(
            f"sgp40 needs Sensirion's gas index algorithm: pip install '{ALGORITHM_REQUIREMENT}' "
            f"({e})"
        ) from None
    return module.VocAlgorithm


class SGP40(SensirionDriver):
    name: ClassVar[str] = "sgp40"
    label: ClassVar[str] = "Sensirion SGP40"
    simulated: ClassVar[str] = "drivers.sim.sgp40:SimSGP40"
    default_address: ClassVar[int] = SGP40_ADDRESS
    addresses: ClassVar[tuple[int, ...]] = (SGP40_ADDRESS,)
    quantities: ClassVar[tuple[str, ...]] = ("voc_index",)
    compensation: ClassVar[tuple[str, ...]] = ("temperature", "humidity")
    fixed_cadence: ClassVar[bool] = True  # the gas index algorithm's sampling interval
    options_schema: ClassVar[Mapping[str, tuple[type, Any]]] = {
        # Seconds between samples fed to the algorithm; the device interval must equal it.
        "sampling_interval": (int, 1),
    }

    def __init__(
        self,
        bus: Any,
        address: Optional[int] = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(bus, address, **kwargs)
        interval = self.options["sampling_interval"]
        if isinstance(interval, bool) or interval not in SAMPLING_INTERVALS:
            raise ValueError(
                f"sampling_interval must be one of {list(SAMPLING_INTERVALS)} (seconds), "
                f"got {interval!r}"
            )
        self.sampling_interval: int = interval
        self.low_power = interval >= LOW_POWER_FROM
        self.clock = clock
        self._algorithm_class = _load_algorithm()
        # Lives as long as the driver, across re-opens: a transient fault keeps the baseline.
        self._algorithm: Any = self._algorithm_class(self.sampling_interval)
        self._last_sample: Optional[float] = None
        self._arguments = (DEFAULT_HUMIDITY_TICKS, DEFAULT_TEMPERATURE_TICKS)
        self._heating = False  # hotplate known to be hot (a measurement ran, no heater-off since)
        self.serial_number: Optional[int] = None
        self.last_sraw: Optional[int] = None  # the raw signal behind the last index, for debugging

    @classmethod
    def validate_interval(cls, interval: float, options: Mapping[str, Any]) -> None:
        sampling = options.get("sampling_interval", cls.options_schema["sampling_interval"][1])
        if interval != sampling:
            raise ValueError(
                f"sgp40: the VOC index algorithm must get one sample every sampling_interval "
                f"({sampling} s), so interval must be {sampling}, not {interval:g}; "
                f"options.sampling_interval may be {' or '.join(map(str, SAMPLING_INTERVALS))}"
            )

    @classmethod
    def identify(cls, bus: Any, address: int, sleep: Sleep = time.sleep) -> Optional[str]:
        # get_serial_number only reads an ID: it starts no measurement, and the chip measures
        # only on command, so nothing running is stopped. (It cannot tell an SGP40 from an
        # SGP41, which answers it alike.)
        bus.i2c_rdwr(i2c_msg.write(address, CMD_GET_SERIAL_NUMBER.to_bytes(2, "big")))
        sleep(SERIAL_NUMBER_TIME)
        msg = i2c_msg.read(address, 9)
        bus.i2c_rdwr(msg)
        try:
            words = unpack_words(bytes(msg))
        except DriverError:
            return None
        return f"SGP40 serial 0x{_serial(words):012x}"

    def open(self) -> None:
        try:
            words = self.query(CMD_GET_SERIAL_NUMBER, 3, SERIAL_NUMBER_TIME)
        except OSError as e:
            raise self.no_answer(e) from e
        except CRCError as e:
            raise CRCError(f"{e}: the serial number is garbled (bus noise, or not an SGP40)") from e
        # Idle first, whatever a previous process left running: the self-test then returns to
        # idle too (datasheet 3.3), and the first read() knows the plate is cold.
        self._heater_off()
        result = self.query(CMD_EXECUTE_SELF_TEST, 1, SELF_TEST_TIME)[0]
        if result != SELF_TEST_PASSED:
            what = (
                "one or more tests failed (hotplate or MOX material)"
                if result == SELF_TEST_FAILED
                else f"expected 0x{SELF_TEST_PASSED:04x}: is this an SGP40?"
            )
            raise DriverError(
                f"{self.name} at 0x{self.address:02x}: self-test answered 0x{result:04x}, {what}"
            )
        self.serial_number = _serial(words)

    def compensate(self, values: Mapping[str, float]) -> None:
        t, rh = values.get("temperature"), values.get("humidity")
        # The chip compensates with both or neither: one real value next to a default would
        # describe air that is not there, so a missing sibling value means the defaults.
        if t is None or rh is None or not (math.isfinite(t) and math.isfinite(rh)):
            self._arguments = (DEFAULT_HUMIDITY_TICKS, DEFAULT_TEMPERATURE_TICKS)
        else:
            self._arguments = (humidity_ticks(rh), temperature_ticks(t))

    @classmethod
    def worst_read_time(cls, options: Mapping[str, Any]) -> float:
        # open() runs the 320 ms self-test; a read from a cold plate measures twice (2 x 30 ms
        # around a 170 ms warm-up).
        return SERIAL_NUMBER_TIME + HEATER_OFF_TIME + SELF_TEST_TIME + 0.1

    def read(self) -> Measurement:
        if self.serial_number is None:
            raise DriverError(f"{self.name}: read() before open()")
        now = self.clock()
        if self._last_sample is not None and now - self._last_sample > MAX_GAP:
            self._algorithm = self._algorithm_class(self.sampling_interval)
        if not self._heating:
            self._measure_raw()  # switches the hotplate on; this sample is from a cold plate
            self.sleep(HEATER_WARM_UP_TIME)
        sraw = self._measure_raw()
        if self.low_power:
            self._heater_off()
        self.last_sraw = sraw
        index = self._algorithm.process(sraw)
        self._last_sample = now
        if index == 0:
            # The algorithm's blackout (its first 45 s): 0 means "not yet", not "clean air", so
            # nothing is published rather than a value a dashboard would take for excellent air.
            return Measurement({})
        return Measurement({"voc_index": float(index)})

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._heater_off()

    # For persisting the learned baseline across restarts (the caller decides where). Sensirion:
    # states are meaningful after 3 h of continuous operation; restore them only after an
    # interruption shorter than 10 minutes, before the first read().
    def get_states(self) -> tuple[float, float]:
        state0, state1 = self._algorithm.get_states()
        return float(state0), float(state1)

    def set_states(self, state0: float, state1: float) -> None:
        self._algorithm.set_states(state0, state1)

    def _measure_raw(self) -> int:
        words = self.query(CMD_MEASURE_RAW_SIGNAL, 1, MEASURE_RAW_TIME, args=self._arguments)
        self._heating = True
        return words[0]

    def _heater_off(self) -> None:
        self._heating = False
        self.command(CMD_TURN_HEATER_OFF)
        self.sleep(HEATER_OFF_TIME)


def _serial(words: list[int]) -> int:
    return (words[0] << 32) | (words[1] << 16) | words[2]

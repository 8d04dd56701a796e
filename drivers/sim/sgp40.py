"""A simulated Sensirion SGP40 that answers at command level.

Commands and timings as in the SGP40 datasheet and Sensirion's reference driver: measure raw
signal (two argument words, 30 ms, one word back), self-test (320 ms, 0xD400, or 0x4B00 on a
fault), turn heater off (1 ms, no reply), serial number (1 ms, three words). Reads NACK while a
command executes or when there is nothing to read; unknown commands NACK.

The raw signal comes from Environment.voc_raw as is: the chip's on-chip humidity compensation is
not published, so the sim only records the compensation words it was sent (for tests). There is
no data-ready flag on this chip, hence no `stuck` fault: a measurement either answers after its
execution time or the read NACKs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional

from drivers.sim.bus import RecentList, nack
from drivers.sim.environment import Environment
from drivers.sim.sensirion import SensirionChip

MEASURE_RAW_SIGNAL = 0x260F
EXECUTE_SELF_TEST = 0x280E
TURN_HEATER_OFF = 0x3615
GET_SERIAL_NUMBER = 0x3682

TEST_PASSED = 0xD400
TEST_FAILED = 0x4B00


class SimSGP40(SensirionChip):
    def __init__(
        self,
        environment: Callable[[], Environment] = Environment,
        serial: tuple[int, int, int] = (0x0000, 0x0365, 0x3A1F),
    ) -> None:
        super().__init__()
        self.environment = environment
        self.serial = serial
        self.self_test_fails = False  # fault: the hotplate or MOX layer is damaged
        self.forced_raw: Optional[int] = None  # SRAW_VOC ticks for tests, instead of the room
        # (RH, T) ticks of each measurement
        self.compensation_words: RecentList[tuple[int, int]] = RecentList()
        self.heater_on = False
        self.measurements = 0

    def reset(self) -> None:
        """Power-on: idle with the hotplate off. The chip keeps no other state to lose."""
        self.heater_on = False
        self._reply = b""
        self._ready_at = 0.0

    def execute(self, command: int, args: Sequence[int]) -> Optional[tuple[Sequence[int], float]]:
        if command == MEASURE_RAW_SIGNAL:
            if len(args) != 2:
                raise nack()  # the command requires both compensation words
            self.compensation_words.append((args[0], args[1]))
            self.heater_on = True  # starts or continues the VOC measurement mode
            self.measurements += 1
            return [self._sraw()], 0.030
        if args:
            raise nack()  # no other command takes arguments
        if command == EXECUTE_SELF_TEST:
            # From idle the chip returns to idle afterwards; in measurement mode the hotplate
            # stays on (datasheet 3.3): heater_on is left as it was.
            return [TEST_FAILED if self.self_test_fails else TEST_PASSED], 0.320
        if command == TURN_HEATER_OFF:
            self.heater_on = False
            return (), 0.001
        if command == GET_SERIAL_NUMBER:
            return list(self.serial), 0.001
        raise nack()

    def _sraw(self) -> int:
        raw = self.forced_raw if self.forced_raw is not None else self.environment().voc_raw
        return min(max(int(raw), 0), 0xFFFF)

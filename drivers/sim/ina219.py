"""A simulated TI INA219 that answers at register level, plus the parts the INA226 shares.

The chip measures Environment.current through its own shunt resistance (`shunt_ohms`, which
need not match what the driver is told) and Environment.voltage as the bus, quantises both to
the register LSBs, clips them to the ADC ranges, and derives the current and power registers with
the datasheet's integer arithmetic (INA219 SBOS448G: current = shunt x cal / 4096, power =
|current| x bus / 5000; the power register is unsigned). Conversions take the typical times of
the ADC settings table on the bus's clock. Written from the datasheet, not from the driver.

Assumptions where the datasheet is silent: pointers to registers that do not exist are NACKed;
the shunt register saturates at the PGA's full scale (e.g. +-32000 = +-320 mV) and the bus
register at its largest code; OVF is set when the current or power arithmetic leaves 16 bits.
"""

from __future__ import annotations

from typing import Callable, Optional

from drivers.sim.bus import SimChip, nack
from drivers.sim.environment import Environment

CONFIG, SHUNT, BUS, POWER, CURRENT, CALIBRATION = range(6)


def quantise(value: float, lsb: float, low: int, high: int) -> int:
    return min(high, max(low, round(value / lsb)))


class SimINA2xx(SimChip):
    """16-bit big-endian registers behind an 8-bit pointer; a conversion on a clock."""

    valid_registers: frozenset[int] = frozenset(range(6))
    # The chip's arithmetic: current = shunt x cal / current_divisor,
    # power = |current| x bus / power_divisor.
    current_divisor: int
    power_divisor: int

    def __init__(self, environment: Callable[[], Environment], shunt_ohms: float) -> None:
        self.environment = environment
        self.shunt_ohms = shunt_ohms
        self.stuck = False  # conversions never complete: no ready flag, no new data
        # (shunt register code, bus voltage code) to convert instead of the environment
        self.forced_raw: Optional[tuple[int, int]] = None
        self.conversions = 0
        self.pointer = 0
        self._power_on_reset()

    # Chip-specific --------------------------------------------------------------------------
    def _power_on_reset(self) -> None:
        raise NotImplementedError

    def _conversion_time(self) -> float:
        """Seconds one conversion cycle of the configured mode takes (typical)."""
        raise NotImplementedError

    def _store(self, register: int, value: int) -> None:
        raise NotImplementedError

    def _load(self, register: int) -> int:
        raise NotImplementedError

    def _measure(self, env: Environment) -> tuple[int, int]:
        raise NotImplementedError

    # Shared ---------------------------------------------------------------------------------
    def reset(self) -> None:
        self._power_on_reset()

    def _reset_state(self, config: int) -> None:
        self.config = config
        self.calibration = 0
        self.shunt = self.bus = self.current = self.power = 0
        self.ready = self.overflow = False
        # At power-on the chip converts continuously; the first cycle starts at the next access
        # (the bus's clock is not attached yet when __init__ runs).
        self._due: Optional[float] = None
        self._idle = False

    def _mode(self) -> int:
        return self.config & 0b111

    def _start(self) -> None:
        """A write to the configuration register: an active mode restarts conversion."""
        if self._mode() in (0b000, 0b100):  # power-down (INA219: also ADC off)
            self._due, self._idle = None, True
            return
        self.ready = False
        self._due, self._idle = self.clock() + self._conversion_time(), False

    def _advance(self) -> None:
        if self._idle:
            return
        now = self.clock()
        if self._due is None:
            self._due = now + self._conversion_time()
            return
        if now < self._due or self.stuck:
            return
        self._convert()
        if self._mode() & 0b100:  # continuous: the next cycle follows at once
            while self._due <= now:
                self._due += self._conversion_time()
        else:
            self._due, self._idle = None, True

    def _convert(self) -> None:
        self.conversions += 1
        shunt, bus = self.forced_raw or self._measure(self.environment())
        mode = self._mode()
        if mode & 0b001:
            self.shunt = shunt
        if mode & 0b010:
            self.bus = bus
        current = int(self.shunt * self.calibration / self.current_divisor)  # truncates to 0
        power = int(abs(current) * self.bus / self.power_divisor)
        self.overflow = not -0x8000 <= current <= 0x7FFF or power > 0xFFFF
        self.current = min(0x7FFF, max(-0x8000, current))
        self.power = min(0xFFFF, power)
        self.ready = True

    def write(self, data: bytes) -> None:
        if not data:
            return
        if data[0] not in self.valid_registers:
            raise nack()
        self._advance()
        self.pointer = data[0]
        if len(data) >= 3:  # pointer, MSB, LSB; a lone data byte is not a complete write
            self._store(self.pointer, (data[1] << 8) | data[2])

    def read(self, length: int) -> bytes:
        self._advance()
        word = self._load(self.pointer) & 0xFFFF
        return bytes([word >> 8, word & 0xFF] * ((length + 1) // 2))[:length]


class SimINA219(SimINA2xx):
    """Register-level INA219 (power-on configuration 0x399F, no id register)."""

    current_divisor = 4096
    power_divisor = 5000

    def __init__(
        self, environment: Callable[[], Environment] = Environment, shunt_ohms: float = 0.1
    ) -> None:
        super().__init__(environment, shunt_ohms)

    def _power_on_reset(self) -> None:
        self._reset_state(0x399F)

    def _adc_time(self, code: int) -> float:
        """BADC/SADC setting -> typical conversion time (ADC settings table)."""
        if code & 0b1000:  # 12-bit, 2^n samples averaged
            return 532e-6 * (1 << (code & 0b111))
        return {0b00: 84e-6, 0b01: 148e-6, 0b10: 276e-6, 0b11: 532e-6}[code & 0b11]

    def _conversion_time(self) -> float:
        mode = self._mode()
        shunt = self._adc_time((self.config >> 3) & 0xF) if mode & 0b001 else 0.0
        bus = self._adc_time((self.config >> 7) & 0xF) if mode & 0b010 else 0.0
        return shunt + bus

    def _measure(self, env: Environment) -> tuple[int, int]:
        full_scale = 4000 << ((self.config >> 11) & 0b11)  # 40 mV x PGA divider, in 10 µV
        shunt = quantise(env.current * self.shunt_ohms, 10e-6, -full_scale, full_scale)
        bus_max = 0x1FFF if self.config & 0x2000 else 0x0FFF  # 32 V range: BD12; 16 V: BD11
        return shunt, quantise(env.voltage, 0.004, 0, bus_max)

    def _store(self, register: int, value: int) -> None:
        if register == CONFIG:
            if value & 0x8000:
                self._power_on_reset()
                return
            self.config = value & 0x3FFF  # bit 14 is unused
            self._start()
        elif register == CALIBRATION:
            self.calibration = value & 0xFFFE  # FS0 is void
        # the data registers are read-only: writes are acknowledged and ignored

    def _load(self, register: int) -> int:
        if register == CONFIG:
            return self.config
        if register == SHUNT:
            return self.shunt
        if register == BUS:
            return self.bus << 3 | self.ready << 1 | self.overflow
        if register == POWER:
            self.ready = False  # reading the power register clears CNVR
            return self.power
        if register == CURRENT:
            return self.current
        return self.calibration

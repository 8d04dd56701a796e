"""Simulated I2C hardware: a bus with smbus2.SMBus's methods, chips that answer like real ones.

Chips are modelled at transaction level (a write of bytes, a read of n bytes), which is what goes
over the wire; smbus2's register helpers are expressed in those terms exactly as the kernel does.
"""

from drivers.sim.bus import NACK_ERRNO, RegisterChip, SimBus, SimChip, VirtualClock, nack
from drivers.sim.environment import Environment

__all__ = [
    "NACK_ERRNO", "Environment", "RegisterChip", "SimBus", "SimChip", "VirtualClock", "nack",
]  # fmt: skip

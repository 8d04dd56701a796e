"""A driver on a simulated bus with a virtual clock: the setup most driver tests share."""

from __future__ import annotations

from typing import Any, Callable

from drivers import DRIVERS
from drivers.sim import Environment, SimBus, VirtualClock


def make(
    driver: str, default_chip: Callable[[], Any], chip: Any = None, **options: Any
) -> tuple[Any, Any, SimBus, VirtualClock]:
    """(driver, chip, bus, clock), the chip at the driver's default address."""
    clock = VirtualClock()
    chip = default_chip() if chip is None else chip
    bus = SimBus({DRIVERS[driver].default_address: chip}, clock=clock)
    return DRIVERS[driver](bus, sleep=clock.sleep, **options), chip, bus, clock


def opened(
    driver: str, default_chip: Callable[[], Any], chip: Any = None, **options: Any
) -> tuple[Any, Any, SimBus, VirtualClock]:
    """As make(), opened, with the bus log and the sleeps of open() cleared."""
    drv, chip, bus, clock = make(driver, default_chip, chip, **options)
    drv.open()
    bus.log.clear()
    clock.sleeps.clear()
    return drv, chip, bus, clock


def env(**values: float) -> Callable[[], Environment]:
    e = Environment(**values)  # type: ignore[arg-type]
    return lambda: e


def data_writes(bus: SimBus) -> list[bytes]:
    """Register writes (pointer + data), leaving out the pointer-only writes of reads."""
    return [t.data for t in bus.log if t.kind == "write" and len(t.data) > 1]

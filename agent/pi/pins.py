"""Which gpiozero pin factory drives the relays and inputs: chosen here, in one function.

On Raspberry Pi OS Bookworm and Trixie (Pi 3, 4, 5, Zero 2 W) that is lgpio: it talks to the
kernel's /dev/gpiochip* character devices, the one GPIO interface every model and kernel has
(the Pi 5's RP1 has no /dev/gpiomem registers for RPi.GPIO or gpiozero's native factory).

Two things stand between gpiozero's own LGPIOFactory and the hardened unit:
- it learns the board from the revision code in /proc/device-tree or /proc/cpuinfo, both
  hidden by ProcSubset=pid. The same device tree is readable at /sys/firmware/devicetree/base
  (what /proc/device-tree links to), so our subclass reads it there;
- lgpio's edge callbacks go through a FIFO it creates in its working directory, which under
  ProtectSystem=strict must be a writable one: the unit gives it /run/roomagent.

GPIOZERO_PIN_FACTORY is honoured as gpiozero honours it (names from its entry points), so an
installer can still pick another library; an unknown name is an error that says so.
"""

from __future__ import annotations

import errno
import importlib
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = "GPIOZERO_PIN_FACTORY"
DEVICE_TREE = Path("/sys/firmware/devicetree/base")
ENTRY_POINTS = "gpiozero_pin_factories"


@dataclass(frozen=True)
class PinChoice:
    """The factory in use (None when none could be opened), its name, and why."""

    name: str
    reason: str
    factory: Any = field(default=None, compare=False)
    error: str = ""  # why no factory could be opened: every relay and input is unavailable

    def describe(self) -> str:
        if self.error:
            return f"no pin factory ({self.reason}): {self.error}"
        return f"{self.name} ({self.reason})"


def revision(device_tree: Path = DEVICE_TREE) -> int:
    """The board's revision code from the device tree's system/linux,revision: a big-endian
    32-bit word, as the firmware writes it (Raspberry Pi's 'revision codes' documentation)."""
    raw = (device_tree / "system" / "linux,revision").read_bytes()
    if len(raw) != 4:
        raise OSError(f"{device_tree}/system/linux,revision: {len(raw)} bytes, expected 4")
    return int(struct.unpack(">L", raw)[0])


def _lgpio_factory(device_tree: Path) -> Any:
    from gpiozero.pins.lgpio import LGPIOFactory

    class SandboxedLGPIOFactory(LGPIOFactory):
        """gpiozero's lgpio factory, reading the revision where the hardened unit can."""

        def _get_revision(self) -> int:
            try:
                return revision(device_tree)
            except FileNotFoundError:
                pass
            try:
                return int(super()._get_revision())  # /proc, for a caller outside the unit
            except OSError:
                raise OSError(
                    errno.ENOENT, "no Raspberry Pi revision code (not a Raspberry Pi?)",
                    str(device_tree / "system" / "linux,revision"),
                ) from None  # fmt: skip

    return SandboxedLGPIOFactory()


def _named_factory(name: str) -> Any:
    from importlib.metadata import entry_points

    eps = entry_points()
    # Python 3.9 returns a dict of groups; 3.10+ an EntryPoints with select().
    select = getattr(eps, "select", None)
    found = list(select(group=ENTRY_POINTS) if select else eps.get(ENTRY_POINTS, []))  # type: ignore[union-attr,unused-ignore]
    for wanted in (name, name.lower()):
        for ep in found:
            if ep.name == wanted:
                return ep.load()()
    known = ", ".join(sorted({ep.name for ep in found}))
    raise LookupError(f"{ENV}={name} is no pin factory gpiozero knows (it knows {known})")


def choose(
    simulate: bool,
    environ: Mapping[str, str] = os.environ,
    device_tree: Path = DEVICE_TREE,
) -> PinChoice:
    """The pin factory for this run, never raising: a factory that cannot be opened comes back
    as a PinChoice with `error` set, and the relays and inputs are then unavailable with it."""
    if simulate:
        from gpiozero.pins.mock import MockFactory

        return PinChoice("mock", "simulating: gpiozero's MockFactory", MockFactory())
    name = environ.get(ENV, "")
    if name:
        reason = f"{ENV}={name}"
        if name.lower() != "lgpio":
            try:
                return PinChoice(name, reason, _named_factory(name))
            except Exception as e:
                return PinChoice(name, reason, error=_words(e))
    else:
        reason = "the default: lgpio drives /dev/gpiochip* on every Pi model"
    try:
        # The C library's binding, a dependency on ARM Linux: said here, before gpiozero
        # would fall back through every other factory to "Unable to load any default".
        importlib.import_module("lgpio")
    except ImportError as e:
        return PinChoice("lgpio", reason, error=f"the lgpio library cannot be imported ({e}); "
                         "reinstall with install.sh, which installs it")  # fmt: skip
    try:
        return PinChoice("lgpio", reason, _lgpio_factory(device_tree))
    except Exception as e:
        return PinChoice("lgpio", reason, error=_words(e))


def _words(e: BaseException) -> str:
    """lgpio raises its own error type whose text is all there is; OSError gets its path."""
    if isinstance(e, OSError) and e.filename:
        return f"{e.strerror or e}: {e.filename}"
    return str(e) or type(e).__name__


class NoPins:
    """Stands in for a pin factory that could not be opened: every pin fails with the reason,
    so each relay and input is unavailable with it (like MissingBus for I2C)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def release_all(self, reserver: Any) -> None:  # gpiozero's close() path: nothing held
        pass

    def release_pins(self, reserver: Any, *pins: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        from gpiozero import BadPinFactory

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise BadPinFactory(self.reason)

        return fail

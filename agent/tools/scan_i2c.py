"""`roomagent scan-i2c`: what answers on a bus, what it is, and what the config misses.

Probing follows i2cdetect's defaults: a zero-length write (SMBus quick write) everywhere except
0x30-0x37 and 0x50-0x5F, where a one-byte read is used because a quick write can corrupt some
EEPROMs living there. Only addresses 0x03-0x77 are probed (the rest are reserved by the spec).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from agent.config.schema import DeviceConfig
from drivers import DRIVERS, Driver, DriverError

FIRST_ADDRESS, LAST_ADDRESS = 0x03, 0x77


@dataclass(frozen=True)
class Finding:
    address: int
    answers: bool
    identified: tuple[tuple[str, str], ...]  # (driver, description) for chips that said who
    # they are
    candidates: tuple[str, ...]  # drivers for this address whose chips have no id to check
    expected: tuple[DeviceConfig, ...]  # config devices wired here

    @property
    def problem(self) -> Optional[str]:
        if not self.expected:
            return None
        if not self.answers:
            return "MISSING: nothing answers"
        found = {driver for driver, _ in self.identified}
        for device in self.expected:
            if found and device.driver not in found and _can_identify(DRIVERS[device.driver]):
                return f"WRONG CHIP: config expects {device.driver}"
        return None


def _can_identify(cls: type[Driver]) -> bool:
    return cls.identify.__func__ is not Driver.identify.__func__  # type: ignore[attr-defined]


def _i2c(cls: type[Driver]) -> bool:
    return getattr(cls, "transport", "i2c") == "i2c"  # Modbus meters: agent.tools.scan_modbus


def _identifiable_addresses() -> frozenset[int]:
    return frozenset(
        a
        for name in DRIVERS
        if _i2c(DRIVERS[name]) and _can_identify(DRIVERS[name])
        for a in DRIVERS[name].addresses
    )


def answers(bus: Any, address: int) -> bool:
    try:
        if 0x30 <= address <= 0x37 or 0x50 <= address <= 0x5F:
            bus.read_byte(address)
        else:
            bus.write_quick(address)
    except OSError as e:
        if e.errno in (errno.EREMOTEIO, errno.ENXIO, errno.EIO, errno.ETIMEDOUT):
            return False
        raise  # EBUSY (a kernel driver owns it) and friends are worth showing, not hiding
    return True


def identify(bus: Any, address: int) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    identified: list[tuple[str, str]] = []
    candidates: list[str] = []
    for name in sorted(DRIVERS):
        cls = DRIVERS[name]
        if address not in cls.addresses or not _i2c(cls):
            continue
        if not _can_identify(cls):
            candidates.append(name)
            continue
        try:
            description = cls.identify(bus, address)
        except (OSError, DriverError):
            description = None
        if description and description not in {d for _, d in identified}:
            identified.append((name, description))
    return tuple(identified), tuple(candidates)


def scan(
    bus: Any, expected: Iterable[DeviceConfig] = (), addresses: Optional[Sequence[int]] = None
) -> list[Finding]:
    """One Finding per address that answers or that the config expects, in address order."""
    wanted: dict[int, list[DeviceConfig]] = {}
    for device in expected:
        address = device.address
        if address is None:
            address = DRIVERS[device.driver].default_address
        wanted.setdefault(address, []).append(device)
    identifiable = _identifiable_addresses()
    findings = []
    for address in addresses or range(FIRST_ADDRESS, LAST_ADDRESS + 1):
        present = answers(bus, address)
        identified: tuple[tuple[str, str], ...] = ()
        candidates: tuple[str, ...] = ()
        if present:
            identified, candidates = identify(bus, address)
        elif address in identifiable:
            # Some command chips refuse i2cdetect's probe (an idle SGP40 NACKs a read of
            # 0x59): ask those in their own language before calling the address empty.
            identified, _ = identify(bus, address)
            present = bool(identified)
        if not present and address not in wanted:
            continue
        findings.append(
            Finding(address, present, identified, candidates, tuple(wanted.get(address, ())))
        )
    return findings


def grid(findings: Sequence[Finding]) -> str:
    """The i2cdetect table: '--' for silence, the address in hex where something answers."""
    present = {f.address for f in findings if f.answers}
    lines = ["     " + " ".join(f"{c:2x}" for c in range(16))]
    for row in range(0, 0x80, 0x10):
        cells = []
        for address in range(row, row + 16):
            if address < FIRST_ADDRESS or address > LAST_ADDRESS:
                cells.append("  ")
            else:
                cells.append(f"{address:02x}" if address in present else "--")
        lines.append((f"{row:02x}: " + " ".join(cells)).rstrip())
    return "\n".join(lines)


def report(bus_number: int, findings: Sequence[Finding]) -> str:
    lines = [f"I2C bus {bus_number}:", grid(findings), ""]
    for f in findings:
        what = ", ".join(description for _, description in f.identified)
        if not what and f.candidates:
            what = "maybe " + " or ".join(f.candidates) + " (no id to check)"
        if not what:
            what = "unknown chip" if f.answers else "-"
        config = ", ".join(f"{d.name} ({d.driver})" for d in f.expected)
        status = f.problem or ("ok" if f.expected else "not in config")
        lines.append(f"  0x{f.address:02x}  {what:<44} {config or '-':<24} {status}")
    if not findings:
        lines.append("  nothing answers: check power, SDA/SCL wiring and pull-ups")
    return "\n".join(lines)

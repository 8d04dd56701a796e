"""`roomagent scan-modbus`: which unit ids answer on a line, and which known meter each is.

Bounded and polite: at most the unit ids asked for (1..247 by default), one short request each
(one register, a timeout of SCAN_TIMEOUT), the line's silent interval between frames plus a
pause, so a scan shares a live line with a running agent's polls without flooding it. A unit
that answers with a Modbus exception still answers (it exists, but has nothing at address 0 for
function 4); identification then asks each known meter driver in turn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable

from drivers import DRIVERS, DriverError
from drivers.modbus_map import READ_INPUT, ExceptionResponse, ModbusError

SCAN_TIMEOUT = 0.2  # s: a meter answers in a few character times plus its processing
PAUSE_S = 0.02  # between probes, beyond the silent interval


@dataclass(frozen=True)
class UnitFinding:
    unit: int
    meters: tuple[str, ...]  # what the known drivers recognise (descriptions)
    note: str = ""


def meter_drivers() -> list[str]:
    return sorted(n for n in DRIVERS if getattr(DRIVERS[n], "transport", "i2c") == "modbus")


def probe(line: Any, unit: int) -> tuple[bool, str]:
    try:
        line.read_registers(unit, READ_INPUT, 0, 1)
    except ExceptionResponse as e:
        return True, f"answers with exception {e.code}"
    except ModbusError as e:
        return False, str(e)
    return True, ""


def identify(line: Any, unit: int) -> tuple[str, ...]:
    found = []
    for name in meter_drivers():
        try:
            what = DRIVERS[name].identify(line, unit)
        except (DriverError, OSError, ValueError):
            what = None
        if what:
            found.append(what)
    return tuple(found)


def scan(line: Any, units: Sequence[int], sleep: Callable[[float], None] = time.sleep) -> \
        list[UnitFinding]:  # fmt: skip
    findings = []
    for unit in units:
        answered, note = probe(line, unit)
        if answered:
            findings.append(UnitFinding(unit, identify(line, unit), note))
        sleep(PAUSE_S)
    return findings


def report(where: str, findings: Sequence[UnitFinding], scanned: int) -> str:
    lines = [f"Modbus line {where}: {len(findings)} of {scanned} unit ids answer"]
    for f in findings:
        what = " or ".join(f.meters) if f.meters else "unknown meter (use modbus_generic)"
        lines.append(f"  unit {f.unit:3d}: {what}" + (f" ({f.note})" if f.note else ""))
    return "\n".join(lines)


def parse_units(text: str) -> list[int]:
    """'1-10,20' -> [1..10, 20]; unit ids 1..247."""
    units: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"--units: expected e.g. 1-10,20, got {text!r}")
        a, b = int(lo), int(hi or lo)
        if not 1 <= a <= b <= 247:
            raise ValueError(f"--units: unit ids are 1..247, got {part.strip()!r}")
        units += range(a, b + 1)
    return sorted(set(units))


def run(cfg: Any, line_name: str, units: Sequence[int], simulate: bool) -> tuple[int, str]:
    """(exit status, text) of a scan of one configured line."""
    from agent.sensing.bus_choice import Hardware

    lines = {line.name: line for line in cfg.modbus}
    if line_name not in lines:
        known = ", ".join(lines) or "none: add a [[modbus]] table"
        return 2, f"roomagent: no [[modbus]] line {line_name!r} (lines: {known})"
    config = replace(lines[line_name], timeout=min(lines[line_name].timeout, SCAN_TIMEOUT))
    hardware = Hardware(
        cfg.devices, simulate, [config, *(c for c in cfg.modbus if c.name != line_name)]
    )
    try:
        line = hardware.bus(line_name)
        findings = scan(line, units)
        return 0, report(line.where(), findings, len(units))
    except OSError as e:
        return 1, f"roomagent: {e}"
    finally:
        hardware.close()

"""`roomagent doctor` for Modbus lines: the serial port, its permissions, and each meter.

A meter that does not answer, answers with damaged frames (CRC) or with an exception gets the
fix an installer can act on: wiring and termination, baud rate and parity, the unit id.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any, Callable, Optional

from agent.config.schema import Config
from agent.tools.doctor_checks import Host, Result, failed, passed
from drivers import DRIVERS, DriverError
from drivers.modbus_map import ExceptionResponse, FrameError, NoAnswer


def check_modbus(
    cfg: Config, open_bus: Callable[[Any], Any], host: Optional[Host], simulated: bool
) -> list[Result]:
    results: list[Result] = []
    for line in cfg.modbus:
        if line.serial is not None and not simulated and host is not None:
            port = check_port(line.serial, host)
            results.append(port)
            if port.ok is False:
                continue
        meters = [d for d in cfg.devices if d.bus == line.name]
        results += [check_meter(d, open_bus) for d in meters]
    return results


def check_port(device: str, host: Host, groups: Sequence[str] = ("dialout",)) -> Result:
    name = f"serial {device}"
    path = host.path(device)
    try:
        st = path.stat()
    except FileNotFoundError:
        return failed(
            name,
            f"{device} does not exist",
            "plug in the USB adapter (ls /dev/ttyUSB* /dev/ttyAMA*) or enable the "
            "HAT's UART (dtoverlay in config.txt), and check the path in [[modbus]]",
        )
    if not stat.S_ISCHR(st.st_mode):
        return failed(name, f"{device} is not a serial device", "check the path in [[modbus]]")
    ids = host.service_ids()
    if ids is not None:
        uid, gids = ids
        mode = st.st_mode
        allowed = (
            uid == 0
            or (st.st_uid == uid and mode & 0o600 == 0o600)
            or (st.st_gid in gids and mode & 0o060 == 0o060)
            or mode & 0o006 == 0o006
        )
        if not allowed:
            return failed(
                name,
                f"{device} is not readable and writable by the service user",
                f"add group {groups[0]} to the unit's SupplementaryGroups= "
                f"(and `usermod -aG {groups[0]} roomagent`)",
            )
    if not os.access(path, os.R_OK | os.W_OK) and ids is None:
        return failed(
            name,
            f"no permission to open {device}",
            "add the user to group dialout (usermod -aG dialout USER), log in again",
        )
    return passed(name, f"{device} present and usable")


def check_meter(d: Any, open_bus: Callable[[Any], Any]) -> Result:
    name = f"meter {d.name}"
    driver_cls = DRIVERS[d.driver]
    try:
        line = open_bus(d.bus)
        meter = driver_cls(line, d.address, **d.options)
        values = dict(meter.read().values)
    except NoAnswer as e:
        return failed(
            name,
            str(e),
            "check the unit id on the meter's display, A/B wiring "
            "(swap A and B if unsure), and the line's baudrate/parity",
        )
    except FrameError as e:
        return failed(
            name,
            str(e),
            "damaged frames: fit the 120 ohm terminator at both ends, "
            "use twisted pair with a common ground, check parity and stopbits",
        )
    except ExceptionResponse as e:
        return failed(
            name,
            str(e),
            f"the meter refuses {d.driver}'s registers: is it really a "
            f"{d.driver}? (roomagent scan-modbus)",
        )
    except (DriverError, OSError, ValueError) as e:
        return failed(name, str(e), "see docs/energy.md")
    power = values.get("power")
    shown = f", {power:.1f} W" if power is not None else ""
    return passed(name, f"{d.driver} unit {meter.address} answers{shown}")

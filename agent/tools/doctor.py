"""`roomagent doctor`: what is wired or set up wrong on this room's Pi, in plain words.

Runs every check (agent.tools.doctor_checks, agent.tools.doctor_hardware), prints a table with ✓ or
✗ and, under each ✗, one line saying what to do. Exit status: 0 when every check passed, 1 when one
failed, 2 when the config is not valid. `--json` prints the same for central collection.
`--simulate` checks the simulated chips and pins `roomagent run --simulate` uses; the rest
(broker, clock, disk, buffer, service) is always the real thing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from agent import __version__
from agent.config.schema import DEFAULT_CONFIG, Config, ConfigError
from agent.pi.bootconfig import read_boot_config
from agent.tools.doctor_broker import check_broker
from agent.tools.doctor_cadence import check_cadence
from agent.tools.doctor_checks import (
    Host,
    Result,
    check_buffer,
    check_clock,
    check_disk,
    check_service,
    failed,
    info,
    passed,
    service_state,
)
from agent.tools.doctor_hardware import (
    buses_of,
    check_bluetooth,
    check_gpio,
    check_i2c,
    check_sensor,
    uses_ble,
)
from agent.tools.doctor_pins import check_pin_factory

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
MARKS = {True: "✓", False: "✗", None: "–"}  # passed, failed, information or not applicable


def check_config(path: Path) -> tuple[Result, Optional[Config]]:
    from agent.config import schema as config_mod

    try:
        cfg = config_mod.load(path)
    except ConfigError as e:
        if e.message == "no such file":
            fix = f"give the node's config with --config (installed: {DEFAULT_CONFIG})"
        elif e.message.startswith("cannot read"):
            fix = "run the doctor as root (sudo): the config belongs to the service"
        else:
            fix = "correct that line of the config, then run roomagent check-config on it"
        more = len(e.errors) - 1
        detail = str(e.errors[0]) + (
            f" (and {more} more: roomagent check-config {path} lists them all)" if more else ""
        )
        return failed("config", detail, fix), None
    c = cfg.control
    detail = (
        f"{path} is valid: node {cfg.node.id!r}, {len(cfg.devices)} sensors, "
        f"{len(c.relays)} relays, {len(c.inputs)} inputs"
    )
    return passed("config", detail), cfg


@dataclass(frozen=True)
class Report:
    results: tuple[Result, ...]
    node: Optional[str]  # None when the config cannot be read
    simulated: bool


def run(
    config_path: Path,
    *,
    simulate: bool = False,
    host: Optional[Host] = None,
    open_bus: Optional[Callable[[int], Any]] = None,
) -> Report:
    """Every check, in the order an installer works through them. open_bus(number) gives the
    I2C bus (default: the real /dev/i2c-N, or simulated chips with simulate)."""
    host = host or Host()
    service = service_state(host)
    config_result, cfg = check_config(config_path)
    results = [config_result, check_service(service)]
    cadence = check_cadence(service)
    if cadence is not None:
        results.append(cadence)
    simulated = simulate or bool(cfg and cfg.node.simulate)
    boot = None if simulated else read_boot_config(host.root)
    if cfg is None:
        # Without a config: what needs none, on the Pi's usual bus.
        if boot is not None:
            results.append(check_i2c(1, boot, host))
        results += [check_bluetooth(False, boot, host), check_clock(None, host)]
        return Report(tuple(results), None, simulated)

    hardware = None
    if open_bus is None:
        from agent.sensing.bus_choice import Hardware

        hardware = Hardware(cfg.devices, simulated, cfg.modbus)
        open_bus = hardware.bus
    try:
        if simulated:
            results.append(info("i2c", "simulated chips: the Pi's I2C is not checked"))
        else:
            assert boot is not None
            results += [check_i2c(bus, boot, host) for bus in buses_of(cfg)]
        results += [check_sensor(d, open_bus) for d in cfg.devices if isinstance(d.bus, int)]
        if cfg.modbus:
            from agent.tools.doctor_modbus import check_modbus

            results += check_modbus(cfg, open_bus, None if simulated else host, simulated)
        factory = hardware.pin_factory() if hardware is not None and simulated else None
        if simulated and factory is None:
            from gpiozero.pins.mock import MockFactory

            factory = MockFactory()
        results.append(check_gpio(cfg, boot, host, pin_factory=factory))
        if cfg.control.relays or cfg.control.inputs:
            results.append(check_pin_factory(cfg, simulated))
    finally:
        if hardware is not None:
            hardware.close()
    if simulated:
        results.append(info("bluetooth", "simulated: the Pi's Bluetooth is not checked"))
    else:
        results.append(check_bluetooth(uses_ble(cfg), boot, host))
    results.append(check_broker(cfg, service))
    results.append(check_clock(cfg, host))
    buffer_result, backlog = check_buffer(cfg, host)
    results += [check_disk(cfg, host, backlog), buffer_result]
    from agent.tools.doctor_analytics import check_analytics

    results += check_analytics(cfg)
    return Report(tuple(results), cfg.node.id, simulated)


def exit_status(results: Sequence[Result]) -> int:
    if results and results[0].name == "config" and results[0].ok is False:
        return EXIT_CONFIG
    return EXIT_FAILED if any(r.ok is False for r in results) else EXIT_OK


def render(results: Sequence[Result], heading: str) -> str:
    width = max(len(r.name) for r in results)
    lines = [heading, ""]
    for r in results:
        lines.append(f"{MARKS[r.ok]} {r.name:<{width}}  {r.detail}")
        if r.ok is False:
            lines.append(f"  {'':<{width}}  fix: {r.fix}")
    bad = sum(1 for r in results if r.ok is False)
    lines.append("")
    if bad:  # one line: what failed, and what to do
        failed_names = ", ".join(r.name for r in results if r.ok is False)
        lines.append(
            f"{bad} of {sum(1 for r in results if r.ok is not None)} checks failed "
            f"({failed_names}): fix them from the top, then run roomagent doctor again."
        )
    else:
        lines.append("All checks passed.")
    return "\n".join(lines)


def as_json(report: Report, config_path: Path, now: datetime) -> str:
    return json.dumps(
        {
            "node": report.node,
            "config": str(config_path),
            "simulated": report.simulated,
            "version": __version__,
            "time": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
            "ok": exit_status(report.results) == EXIT_OK,
            "checks": [asdict(r) for r in report.results],
        },
        ensure_ascii=False,
        indent=1,
    )


def main(
    config_path: Path, simulate: bool, as_json_output: bool, host: Optional[Host] = None
) -> int:
    report = run(config_path, simulate=simulate, host=host)
    if as_json_output:
        print(as_json(report, config_path, datetime.now(timezone.utc)))
    else:
        print(render(report.results, heading(report)))
    return exit_status(report.results)


def heading(report: Report) -> str:
    where = "simulated hardware" if report.simulated else "this Pi"
    who = f"node {report.node!r}" if report.node else "no valid config"
    return f"roomagent doctor {__version__}: {who}, {where}"

"""The `roomagent` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import faulthandler
import signal
import sys
from pathlib import Path
from typing import Optional

from agent import __version__
from agent.config import schema as config_mod
from agent.config.schema import DEFAULT_CONFIG, Config, ConfigError

EXIT_CONFIG = 2
EXIT_HARDWARE = 1
EXIT_BUFFER = 3  # the buffer cannot be opened: state directory missing or unwritable
EXIT_LOCKED = 4  # another agent runs on this node's state directory


def _load(path: str) -> Config:
    return config_mod.load(path)


def _override(cfg: Config, broker: Optional[str], state_dir: Optional[str]) -> Config:
    if broker:
        host, _, port = broker.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("--broker", "", f"must be HOST:PORT, got {broker!r}")
        cfg = dataclasses.replace(
            cfg, broker=dataclasses.replace(cfg.broker, host=host, port=int(port))
        )
    if state_dir:
        path = Path(state_dir).resolve()
        cfg = dataclasses.replace(
            cfg,
            node=dataclasses.replace(cfg.node, state_dir=path),
            buffer=dataclasses.replace(cfg.buffer, path=path / "buffer.sqlite"),
        )
    return cfg


def cmd_check_config(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            cfg = _load(path)
        except ConfigError as e:
            for error in e.errors:  # every problem, one line each
                print(f"✗ {error}", file=sys.stderr)
            status = EXIT_CONFIG
            continue
        print(
            f"✓ {path}: node {cfg.node.id!r}, {len(cfg.devices)} devices, "
            f"broker {cfg.broker.host}:{cfg.broker.port}"
        )
    return status


def cmd_run(args: argparse.Namespace) -> int:
    # A stop asked for while the agent is still starting (systemd stopping it, a test) is kept
    # and honoured once the event loop runs, instead of killing the process half-started.
    early: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: early.append(signum))
    from agent.app import logs
    from agent.app.runtime import Agent

    logs.setup(args.log_level)
    # `kill -USR1 <pid>` dumps every thread's stack to the journal: how a hang is diagnosed.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    from agent.config.sources import effective

    def prepare(cfg: Config) -> Config:
        return _override(cfg, args.broker, args.state_dir)

    local = _load(args.config)
    cfg = prepare(local)
    from agent.app.node_lock import NodeLock, StateDirLocked, StateDirUnusable

    # One agent per state directory, taken before any hardware or the buffer is touched; the
    # lock lives as long as this process.
    try:
        lock = NodeLock(cfg.node.state_dir).acquire()
    except StateDirLocked as e:
        print(f"roomagent: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except StateDirUnusable as e:
        print(f"roomagent: {e}", file=sys.stderr)
        return EXIT_BUFFER
    # A config pushed from the central side since the file was last edited, if any; its
    # broker and other trust anchors are checked again against the file as written.
    cfg, origin = effective(cfg, anchors=local)
    if origin != "file":
        cfg = prepare(cfg)
    agent = Agent(cfg, simulate=True if args.simulate else None, origin=origin, prepare=prepare)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if early:
            stop.set()
        await agent.run(stop)

    from agent.pipeline.outbox import OutboxError

    if args.log_level != "DEBUG":  # gpiozero warns once per pin library it tries
        import warnings

        warnings.filterwarnings("ignore", message="Falling back from")
    try:
        asyncio.run(main())
    except OutboxError as e:
        print(f"roomagent: {e}", file=sys.stderr)
        return EXIT_BUFFER
    except Exception as e:
        if type(e).__name__ != "BadPinFactory" or args.log_level == "DEBUG":
            raise
        print("roomagent: no GPIO here for the relays and inputs (gpiozero found no pin "
              "library; on a Raspberry Pi, roomagent doctor checks why); on another machine, "
              "run with --simulate", file=sys.stderr)  # fmt: skip
        return EXIT_HARDWARE
    finally:
        lock.release()
    return 0


def _config_for_tools(args: argparse.Namespace, required: bool) -> Optional[Config]:
    path = args.config or (str(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() or required else None)
    return _load(path) if path else None


def cmd_scan_i2c(args: argparse.Namespace) -> int:
    from agent.sensing.bus_choice import Hardware, NoBusError
    from agent.tools.scan_i2c import report, scan

    cfg = _config_for_tools(args, required=False)
    devices = cfg.devices if cfg else ()
    simulate = args.simulate or bool(cfg and cfg.node.simulate)
    hardware = Hardware(devices, simulate)
    i2c = {d.bus for d in devices if isinstance(d.bus, int)}  # not the Modbus lines
    numbers = [args.bus] if args.bus is not None else sorted(i2c or {1})
    status = 0
    try:
        for number in numbers:
            findings = scan(hardware.bus(number), [d for d in devices if d.bus == number])
            print(report(number, findings))
            if any(f.problem for f in findings):
                status = EXIT_HARDWARE
    except NoBusError as e:
        print(f"roomagent: {e}", file=sys.stderr)
        return EXIT_HARDWARE
    finally:
        hardware.close()
    return status


def cmd_scan_modbus(args: argparse.Namespace) -> int:
    from agent.tools import scan_modbus as scan

    cfg = _config_for_tools(args, required=True)
    assert cfg is not None
    try:
        units = scan.parse_units(args.units)
    except ValueError as e:
        print(f"roomagent: {e}", file=sys.stderr)
        return EXIT_CONFIG
    status, text = scan.run(cfg, args.line, units, args.simulate or cfg.node.simulate)
    print(text, file=sys.stderr if status else sys.stdout)
    return status


def cmd_scan_ble(args: argparse.Namespace) -> int:
    import asyncio

    from agent.config.ble import BleConfig
    from agent.tools.scan_ble import report, scan

    if not args.seconds > 0:
        print(f"roomagent scan-ble: --seconds must be more than 0, got {args.seconds:g} (e.g. "
              "--seconds 10; without Bluetooth, add --simulate)", file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    cfg = _config_for_tools(args, required=False)
    ble = cfg.ble if cfg else BleConfig()
    backend = None
    if args.simulate or (cfg and cfg.node.simulate):
        from drivers.sim.ble import radio_for
        from drivers.sim.room import RoomModel

        backend = radio_for(ble, RoomModel(), neighbours=True).backend()
    keys = {d.address: d.key_bytes for d in ble.devices if d.key_bytes is not None}
    names = {d.address: d.name for d in ble.devices}
    names.update({b.address: f"{g.name} beacon" for g in ble.presence for b in g.beacons
                  if b.address is not None})  # fmt: skip
    found, stats = asyncio.run(scan(args.seconds, adapter=args.adapter or ble.adapter, keys=keys,
                                    names=names, backend=backend))  # fmt: skip
    heard = {s.address for s in found}
    missing = [(d.name, d.address) for d in ble.devices if d.address not in heard]
    print(report(found, missing, stats, args.seconds))
    return EXIT_HARDWARE if missing or not stats.adverts else 0


def cmd_read(args: argparse.Namespace) -> int:
    import json

    from agent.mqtt.contract import rounded
    from agent.sensing.bus_choice import Hardware, NoBusError
    from drivers import DRIVERS, QUANTITIES, DriverError, values_of

    cfg = _config_for_tools(args, required=True)
    assert cfg is not None
    by_name = {d.name: d for d in cfg.devices}
    device = by_name.get(args.device)
    if device is None:
        from agent.common.suggest import hint

        known = ", ".join(by_name) or "none"
        print(f"roomagent: no device {args.device!r} in {cfg.source}{hint(args.device, by_name)}"
              f" (devices: {known})", file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    hardware = Hardware(cfg.devices, args.simulate or cfg.node.simulate, cfg.modbus)

    def measure(d: config_mod.DeviceConfig, compensation: dict[str, float]) -> dict[str, float]:
        driver = DRIVERS[d.driver](hardware.bus(d.bus), d.address, **d.options)
        driver.open()
        try:
            driver.compensate(compensation)
            measurement = driver.read()
        finally:
            driver.close()
        return dict(values_of(measurement))

    try:
        compensation: dict[str, float] = {}
        if device.compensate_from:  # read the sibling first, as the running agent would
            source = measure(by_name[device.compensate_from], {})
            wanted = DRIVERS[device.driver].compensation
            compensation = {q: v for q, v in source.items() if q in wanted}
        values = rounded(measure(device, compensation))
    except (DriverError, OSError, NoBusError) as e:
        print(f"roomagent: {device.name} ({device.driver}): {e}", file=sys.stderr)
        return EXIT_HARDWARE
    finally:
        hardware.close()
    if args.json:  # each value with its unit, as <base>/info gives them
        units = {q: {"value": v, "unit": QUANTITIES[q].unit.value} for q, v in values.items()}
        print(json.dumps(units, ensure_ascii=False))
        if not values:
            print(f"roomagent: {device.name} ({device.driver}) answered but has no value yet: it "
                  "is warming up (the SGP40's VOC algorithm is still learning for its first "
                  "45 s of samples)", file=sys.stderr)  # fmt: skip
        return 0
    print(f"{device.name} ({device.driver}, bus {device.bus}):")
    if not values:
        print("  the chip answered but has no value yet (it is warming up, e.g. the SGP40's")
        print("  VOC algorithm publishes after 45 s of samples): the wiring is fine")
    for quantity, value in values.items():
        q = QUANTITIES[quantity]
        print(f"  {quantity:<12} {value:>12.{q.decimals}f} {q.unit.value}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.tools import doctor

    return doctor.main(Path(args.config), args.simulate, args.json)


def cmd_watch(args: argparse.Namespace) -> int:
    from agent.tools.watch import watch

    broker, topic = None, args.topic
    if args.config:
        cfg = _load(args.config)
        broker = cfg.broker
        topic = topic or f"{cfg.node.base_topic}/#"
    return watch(args.host, args.port, topic or "roomagent/#", count=args.count,
                 seconds=args.seconds, broker=broker)  # fmt: skip


def cmd_register(args: argparse.Namespace) -> int:
    cfg = _config_for_tools(args, required=True)
    assert cfg is not None
    if cfg.registration is None:
        print(f"registration is not configured in {cfg.source} ([registration]): nothing to do")
        return 0
    from agent.app import logs
    from agent.tools.registration import RegistrationError, register

    logs.setup("INFO")
    try:
        outcome = register(cfg)
    except RegistrationError as e:
        print(f"roomagent: {e}", file=sys.stderr)
        return EXIT_HARDWARE
    written = (["config"] if outcome.config_written else []) + list(outcome.credentials_written)
    print(f"registered {cfg.node.id!r} with {cfg.registration.url}"
          + (f"; wrote {', '.join(written)}" if written else "; nothing to change"))  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roomagent", description=__doc__)
    p.add_argument("--version", action="version", version=f"roomagent {__version__}")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="DEBUG also shows the traceback of an unexpected error")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent")
    run.add_argument("config", help="the node's TOML config")
    run.add_argument("--simulate", action="store_true", help="use simulated chips")
    run.add_argument("--broker", metavar="HOST:PORT", help="override broker.host and port")
    run.add_argument("--state-dir", help="override node.state_dir (the buffer lives there)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate config files without starting")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=cmd_check_config)

    scan_p = sub.add_parser(
        "scan-i2c", help="list what answers on the I2C bus, name it, flag what the config misses"
    )
    scan_p.add_argument("--bus", type=int, help="bus number (default: the config's buses, or 1)")
    scan_p.add_argument("--config", help=f"node config to compare with (default {DEFAULT_CONFIG})")
    scan_p.add_argument("--simulate", action="store_true", help="scan simulated chips")
    scan_p.set_defaults(func=cmd_scan_i2c)

    mb = sub.add_parser("scan-modbus", help="list the unit ids that answer on a Modbus line "
                        "and the meters they are")  # fmt: skip
    mb.add_argument("line", help="the [[modbus]] line's name")
    mb.add_argument("--units", default="1-247", help="unit ids to try, e.g. 1-10,20 (1-247)")
    mb.add_argument("--config", help=f"node config (default {DEFAULT_CONFIG})")
    mb.add_argument("--simulate", action="store_true", help="scan the simulated meters")
    mb.set_defaults(func=cmd_scan_modbus)

    ble = sub.add_parser(
        "scan-ble", help="list what advertises over BLE nearby, strongest first, decoded"
    )
    ble.add_argument("--seconds", type=float, default=10.0, help="how long to listen (10)")
    ble.add_argument("--adapter", help="Bluetooth adapter, e.g. hci0 (default: the config's)")
    ble.add_argument("--config", help=f"node config: names and keys (default {DEFAULT_CONFIG})")
    ble.add_argument("--simulate", action="store_true", help="listen to the simulated air")
    ble.set_defaults(func=cmd_scan_ble)

    read = sub.add_parser("read", help="take one reading from a configured device and print it")
    read.add_argument("device", help="the device's name in the config")
    read.add_argument("--config", help=f"node config (default {DEFAULT_CONFIG})")
    read.add_argument("--simulate", action="store_true", help="read a simulated chip")
    read.add_argument("--json", action="store_true", help="print the values as JSON")
    read.set_defaults(func=cmd_read)

    doc = sub.add_parser("doctor", help="check wiring, chips, broker, clock, disk and service; "
                         "say how to fix what fails")  # fmt: skip
    doc.add_argument("--config", default=str(DEFAULT_CONFIG),
                     help=f"node config (default {DEFAULT_CONFIG})")  # fmt: skip
    doc.add_argument("--simulate", action="store_true", help="check the simulated chips and pins")
    doc.add_argument("--json", action="store_true", help="print the results as JSON")
    doc.set_defaults(func=cmd_doctor)

    reg = sub.add_parser(
        "register",
        help="announce this node to the site inventory ([registration]); may update the config",
    )
    reg.add_argument("--config", help=f"node config (default {DEFAULT_CONFIG})")
    reg.set_defaults(func=cmd_register)

    watch = sub.add_parser("watch", help="show what the central side receives, live")
    watch.add_argument("--host", default="localhost")
    watch.add_argument("--port", type=int, default=1883)
    watch.add_argument(
        "--topic", help="default: the node's <base>/# with --config, else roomagent/#"
    )
    watch.add_argument(
        "--config", help="use this node config's broker, TLS and credentials (for secured brokers)"
    )
    watch.add_argument("--count", type=int, default=0, help="stop after N messages")
    watch.add_argument("--seconds", type=float, default=0, help="stop after N seconds")
    watch.set_defaults(func=cmd_watch)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # here, so a closed pipe is caught below, not at the exit's flush
        return status
    except ConfigError as e:  # any command's config: the file, the key and what is wrong
        for error in e.errors:
            print(f"roomagent: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:  # `roomagent ... | head`: the reader has all it wanted
        _quiet_stdout()
        return EXIT_HARDWARE
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a user sees one line; the traceback is for --log-level DEBUG
        if getattr(args, "log_level", None) == "DEBUG":
            raise
        print(f"roomagent {args.command}: {type(e).__name__}: {e} (run it again with "
              "--log-level DEBUG for the details)", file=sys.stderr)  # fmt: skip
        return EXIT_HARDWARE


def _quiet_stdout() -> None:
    """Points stdout at /dev/null so the interpreter's final flush raises no second
    BrokenPipeError (the Python documentation's advice for SIGPIPE)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())

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
from agent import config as config_mod
from agent.config import Config, ConfigError

EXIT_CONFIG = 2


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
            print(f"✗ {e}", file=sys.stderr)
            status = EXIT_CONFIG
            continue
        print(
            f"✓ {path}: node {cfg.node.id!r}, {len(cfg.devices)} devices, "
            f"broker {cfg.broker.host}:{cfg.broker.port}"
        )
    return status


def cmd_run(args: argparse.Namespace) -> int:
    from agent import logs
    from agent.runtime import Agent

    logs.setup(args.log_level)
    # `kill -USR1 <pid>` dumps every thread's stack to the journal: how a hang is diagnosed.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        cfg = _override(_load(args.config), args.broker, args.state_dir)
    except ConfigError as e:
        print(f"roomagent: {e}", file=sys.stderr)
        return EXIT_CONFIG
    agent = Agent(cfg, simulate=True if args.simulate else None)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await agent.run(stop)

    asyncio.run(main())
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from agent.watch import watch

    return watch(args.host, args.port, args.topic, count=args.count, seconds=args.seconds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roomagent", description=__doc__)
    p.add_argument("--version", action="version", version=f"roomagent {__version__}")
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

    watch = sub.add_parser("watch", help="show what the central side receives, live")
    watch.add_argument("--host", default="localhost")
    watch.add_argument("--port", type=int, default=1883)
    watch.add_argument("--topic", default="roomagent/#")
    watch.add_argument("--count", type=int, default=0, help="stop after N messages")
    watch.add_argument("--seconds", type=float, default=0, help="stop after N seconds")
    watch.set_defaults(func=cmd_watch)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

"""The whole agent in this process, on its own event loop thread, with no broker: commands go
straight to its command processor, the relays are gpiozero MockFactory pins that record every
write, the buffer and the control state are real SQLite and JSON files under tmp_path.

What a broker would add (the response topic, correlation data, retained commands ignored) is
covered once end to end in test_commands.py; everything a command *does* is tested here,
hundreds of times faster."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from gpiozero.pins.mock import MockFactory, MockPin

from agent.app.runtime import Agent
from agent.app.systemd import Notifier
from agent.commands.processor import Response
from agent.config import schema as config_mod
from agent.sensing.bus_choice import Hardware
from tests.conftest import node_config
from tests.waiting import wait_until

T = TypeVar("T")


class RecordingPin(MockPin):  # type: ignore[misc]
    """A MockPin that keeps every write with its monotonic time: MockPin's own `states` hold
    only changes, timed from the previous one, so two pins cannot be compared on one axis."""

    def _set_state(self, value: Any) -> None:
        super()._set_state(value)
        self.__dict__.setdefault("writes", []).append((time.monotonic(), bool(value)))


def unused_port() -> int:
    """A port nothing listens on: the agent's link keeps trying it, and never gets through."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class InProcessAgent:
    """`Agent.run` on a thread of its own; `call` runs a function on the agent's loop (where
    its handlers and control run), so a test sees nothing half done."""

    def __init__(self, tmp_path: Path, control: str, devices: str = "") -> None:
        self.pins = MockFactory(pin_class=RecordingPin)
        self.text = node_config(unused_port(), tmp_path / "state", devices=devices)
        self.text += textwrap.dedent(control)
        self.path = tmp_path / "node.toml"
        self.path.write_text(self.text)
        cfg = config_mod.load(self.path)
        hardware = Hardware(cfg.devices, simulate=True, modbus=cfg.modbus, pin_factory=self.pins)
        self.agent = Agent(cfg, notifier=Notifier({}), hardware=hardware)
        self.loop = asyncio.new_event_loop()
        self.failure: Optional[BaseException] = None
        self._stop: Optional[asyncio.Event] = None
        self.thread = threading.Thread(target=self._run, name="agent-loop", daemon=True)
        self.thread.start()
        assert wait_until(lambda: self.agent.config_manager is not None or self.failure, 30)
        assert self.failure is None, self.failure

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()  # made on the agent's loop (Python 3.9 binds it there)
            await self.agent.run(self._stop)

        try:
            self.loop.run_until_complete(main())
        except BaseException as e:
            self.failure = e
        finally:
            self.loop.close()

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as e:
                future.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def command(self, suffix: str, payload: bytes | str) -> Response:
        """What the agent answers to `<base>/cmd/<suffix>`: the same call its MQTT callback
        makes, on the same loop."""
        raw = payload.encode() if isinstance(payload, str) else payload
        return self.call(self.agent.commands.process, suffix.split("/"), raw)

    def relay_on(self, name: str) -> bool:
        room = self.agent.room
        assert room is not None
        return self.call(room.relays.state, name)

    def close(self) -> None:
        if self._stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the agent did not stop within 30 s"
        assert self.failure is None, self.failure


def timeline(pins: MockFactory, pin: int, active_high: bool) -> list[tuple[float, bool]]:
    """(monotonic time, relay on) at every change of the relay on `pin`, from its first write
    on: before that the pin is only MockFactory's default, not anything the agent chose."""
    changes: list[tuple[float, bool]] = []
    for t, level in pins.pin(pin).__dict__.get("writes", []):
        on = level == active_high
        if not changes or changes[-1][1] != on:
            changes.append((t, on))
    return changes


def overlaps(a: list[tuple[float, bool]], b: list[tuple[float, bool]]) -> list[float]:
    """Times at which both timelines are on together."""
    events = sorted([(t, 0, on) for t, on in a] + [(t, 1, on) for t, on in b])
    state, both = [False, False], []
    for t, which, on in events:
        state[which] = on
        if all(state):
            both.append(t)
    return both


def shortest(changes: list[tuple[float, bool]], on: bool) -> float:
    """The shortest time the relay stayed `on` (or off) between two changes; inf if never. The
    off time before its first on is not counted: min_off runs from an off, not from the start."""
    spans = [b[0] - a[0] for i, (a, b) in enumerate(zip(changes, changes[1:]))
             if a[1] == on and (on or i > 0)]  # fmt: skip
    return min(spans, default=float("inf"))


def dead_times(a: list[tuple[float, bool]], b: list[tuple[float, bool]]) -> list[float]:
    """For every switch-on of one relay after the other had been on: the time since the other
    went off (interlock_dead_time is the least it may be)."""
    gaps = []
    for mine, other in ((a, b), (b, a)):
        for t, on in mine:
            offs = [u for u, o in other if not o and u <= t]
            if on and offs and any(o for u, o in other if u < offs[-1]):
                gaps.append(t - offs[-1])
    return gaps

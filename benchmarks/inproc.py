"""The real agent (agent.app.runtime.Agent) on its own event loop in a thread of this process.

For benchmarks that must look inside it while it runs: the command latency benchmark reads the
relay's gpiozero MockPin, which only exists in the agent's process.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Optional

from agent.app.runtime import Agent
from agent.config import schema as config_mod
from benchmarks.harness import dump_toml


class InProcessAgent:
    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"{config['node']['id']}.toml"
        path.write_text(dump_toml(config))
        self.config = config_mod.load(path)  # validated exactly as `roomagent run` would
        self.agent = Agent(self.config, simulate=True)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._started = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._main, name="agent", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()  # made inside the loop (Python 3.9 binds it at creation)
            self._started.set()
            await self.agent.run(self._stop)

        try:
            asyncio.run(main())
        except BaseException as e:  # reported by stop()
            self._error = e
            self._started.set()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the agent's event loop did not start")
        if self._error is not None:
            raise RuntimeError(f"the agent failed to start: {self._error!r}")

    def stop(self, timeout: float = 30) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the agent did not stop")
        if self._error is not None:
            raise RuntimeError(f"the agent failed: {self._error!r}")

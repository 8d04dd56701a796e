"""The durable buffer seen from the event loop: one writer thread owns the database, every
message is appended on it, and the forwarder is woken once a message is committed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

from agent.mqtt.contract import json_payload
from agent.pipeline.outbox import OutboxError

if TYPE_CHECKING:
    from agent.pipeline.staged_outbox import Buffer

log = logging.getLogger("roomagent")
T = TypeVar("T")


class BufferWriter:
    def __init__(self) -> None:
        self.thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self.outbox: Optional[Buffer] = None  # opened on the thread by the node's start
        self.wake: Callable[[], None] = lambda: None  # the forwarder's notify, once it runs
        self._appending: set[asyncio.Future[None]] = set()  # on their way to the buffer

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs fn on the writer thread and waits for it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.thread, functools.partial(fn, *args))

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Runs fn on the writer thread without waiting for it (config changes)."""
        self.thread.submit(fn, *args)

    async def store(
        self,
        topic: str,
        make: Callable[[int], bytes],
        unsynced_at: Optional[tuple[str, float]] = None,
    ) -> None:
        """Commits one message to the outbox and wakes the forwarder. A full disk, even after
        dropping old readings, is counted by the outbox and logged here; nothing stops."""
        assert self.outbox is not None
        try:
            await self.run(self.outbox.append, topic, make, unsynced_at)
        except OutboxError as e:
            log.error("%s not stored: %s", topic, e)
        else:
            self.wake()

    def append(self, topic: str, body: dict[str, Any]) -> None:
        """Appends a JSON message (with its seq) from the event loop, without waiting."""

        def make(seq: int) -> bytes:
            return json_payload({**body, "seq": seq})

        task = asyncio.ensure_future(self.store(topic, make))
        self._appending.add(task)
        task.add_done_callback(self._appending.discard)

    async def settle(self, timeout: float) -> None:
        """Waits (up to `timeout`) for the messages still on their way to the buffer."""
        if self._appending:
            await asyncio.wait(set(self._appending), timeout=timeout)

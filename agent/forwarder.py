"""Moves committed readings from the outbox to the broker, oldest first, a bounded number in flight.

Each publish is tied to its outbox row by paho's message id; the row is deleted only when the
broker's PUBACK for that id arrives. Messages in flight when the connection drops stay in paho's
session and are re-sent by paho on reconnect with the same ids, so the map stays valid. After a
restart nothing is in flight and reading starts again from the oldest row on disk.

The event loop reads rows from the outbox and hands paho a few windows' worth at a time: paho
keeps max_inflight of them on the wire and sends the next one itself as each PUBACK arrives,
on its own thread, as a bare paho client does. Acknowledgements are matched to rows on paho's
thread too, and the loop is woken only when a batch of them is ready to delete or paho's queue
runs low. Handing every acknowledgement to the loop and every publish back to paho, as this
did before, cost twice the CPU of the transfer itself (docs/benchmarks.md, backlog drain).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

from agent.mqtt_link import MqttLink
from agent.outbox import Outbox

log = logging.getLogger("roomagent.forwarder")

ACK_FLUSH_SECONDS = 0.05
# Messages handed to paho at a time, in windows of max_inflight: paho sends one window and queues
# the rest. Also how many acknowledged rows are deleted in one transaction, at most.
WINDOWS_QUEUED = 2


class Forwarder:
    def __init__(
        self,
        outbox: Outbox,
        link: MqttLink,
        run_db: Callable[..., Any],
        max_inflight: int,
    ) -> None:
        self.outbox, self.link, self.run_db = outbox, link, run_db
        self.max_inflight = max_inflight
        self.queued = WINDOWS_QUEUED * max_inflight
        # Guards inflight and acked, which both threads change. It is never waited for on paho's
        # thread: paho holds its own lock while it calls on_ack, and the loop holds this one
        # while it calls publish(), which takes paho's. So paho's thread only tries it, and
        # leaves its ack in _acks for the holder to match before letting go.
        self._lock = threading.Lock()
        self._acks: collections.deque[tuple[int, bool]] = collections.deque()
        self.inflight: dict[int, int] = {}  # paho mid -> outbox seq, sent or queued in paho
        self.cursor = 0  # highest seq read from the outbox
        self.acked: list[int] = []
        self.delivered = self.rejected = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake = asyncio.Event()
        self._wake_pending = False
        self.stopped = False
        # While set, readings stay in the outbox (the clock is not set yet: see Agent).
        self.hold = False
        self.generation = 0  # counts restart()s

    def notify(self) -> None:
        """New rows were committed, or the connection came up (on the event loop)."""
        self._wake.set()

    def on_ack(self, mid: int, ok: bool) -> None:
        """A PUBACK (or its MQTT 5 refusal) for message id `mid`. Runs on paho's network thread,
        and is safe from any thread."""
        self._acks.append((mid, ok))
        self._settle()

    def _settle(self) -> None:
        """Matches waiting acks to rows if this thread can take the lock; otherwise its holder
        does, since it calls this again after letting go."""
        while self._acks:
            if not self._lock.acquire(blocking=False):
                return
            try:
                while self._acks:
                    self._match(*self._acks.popleft())
            finally:
                self._lock.release()

    def _match(self, mid: int, ok: bool) -> None:
        seq = self.inflight.pop(mid, None)
        if seq is None:  # a retained state, status, discovery or command answer
            if not ok:
                log.warning("broker refused a state, discovery or answer message (mid %d): "
                            "check the broker's ACL for this node", mid)  # fmt: skip
            return
        if not ok:
            # The broker refused it (MQTT 5 reason code, e.g. not authorised): re-sending would
            # block the queue forever, so it is dropped, counted and logged.
            self.rejected += 1
            log.error("broker refused message seq %d; dropped", seq)
        else:
            self.delivered += 1
        self.acked.append(seq)
        # Deletes go to the database in batches; paho's queue is topped up before it runs dry.
        if len(self.acked) >= self.queued or len(self.inflight) <= self.queued - self.max_inflight:
            self._wake_loop()

    def _wake_loop(self) -> None:
        """At most one hand-over to the loop at a time."""
        if self._wake_pending or self._loop is None:
            return
        self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        # A flag as well as cancellation: before Python 3.12, wait_for() can swallow a cancel.
        while not self.stopped:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), ACK_FLUSH_SECONDS * 4)
            self._wake_pending = False  # before clear(): a wake-up asked for from now on stays
            self._wake.clear()
            await self._flush_acks()
            # Once stopping, nothing new goes out: a message published now could be delivered
            # but its ack lost with the connection, and the row would be sent again after the
            # restart.
            if self.hold or self.stopped or not self.link.connected:
                continue
            room = self.queued - len(self.inflight)
            if room >= self.max_inflight:
                generation = self.generation
                rows = await self.run_db(self.outbox.fetch, self.cursor, room)
                if generation != self.generation:
                    continue  # restart() rewound the cursor while these were being read
                if rows and not self.stopped and self.link.connected:
                    with self._locked():
                        for row in rows:
                            mid = self.link.publish(row.topic, row.payload, qos=1)
                            self.inflight[mid] = row.seq
                    self.cursor = rows[-1].seq
                if len(rows) == room:
                    self._wake.set()  # more backlog behind these

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The lock, for the loop; acks that paho's thread left meanwhile are matched after."""
        with self._lock:
            yield
        self._settle()

    async def _flush_acks(self) -> None:
        with self._locked():
            batch, self.acked = self.acked, []
        if batch:
            await self.run_db(self.outbox.delete, batch)

    async def restart(self, link: MqttLink, max_inflight: int) -> None:
        """Continues on a new link (new broker settings): nothing is in flight on it, so the
        rows that were in flight on the old one are read again and re-sent (same seq)."""
        await self._flush_acks()
        with self._locked():
            self.link, self.max_inflight = link, max_inflight
            self.queued = WINDOWS_QUEUED * max_inflight
            self._acks.clear()  # the old link's, for ids that mean nothing on the new one
            self.inflight.clear()
            self.cursor = 0
            self.generation += 1
        self._wake.set()

    async def drain(self, timeout: float) -> bool:
        """Waits until nothing is in flight and all acks are flushed (used on shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.inflight and loop.time() < deadline:
            await asyncio.sleep(ACK_FLUSH_SECONDS)
        await self._flush_acks()
        return not self.inflight

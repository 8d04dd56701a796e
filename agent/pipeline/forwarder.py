"""Moves committed readings from the outbox to the broker, oldest first, a bounded number in flight.

Each publish is tied to its outbox row by paho's message id; the row is deleted only when the
broker's PUBACK for that id arrives. Messages in flight when the connection drops stay in paho's
session and are re-sent by paho on reconnect with the same ids, so the map stays valid. After a
restart nothing is in flight and reading starts again from the oldest row on disk.

How the work is shared, so that neither the event loop nor the disk holds up the wire
(docs/benchmarks.md, backlog drain, has the figures that led here):
- paho keeps max_inflight messages on the wire and a second window queued, and sends the next
  one itself, on its own thread, as each PUBACK arrives, as a bare paho client does.
- PUBACKs are matched to rows on paho's thread too; when paho's queue is empty, that thread
  hands it the next window from rows read ahead into memory.
- The event loop reads rows ahead from the outbox, and deletes acknowledged rows in batches in
  the background: a delete can wait on the disk (a WAL checkpoint's fsync), and the rows read
  ahead keep the wire busy meanwhile. It is woken only when a batch is ready or the read-ahead
  runs low.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

from agent.mqtt.link import MqttLink
from agent.pipeline.outbox import Row
from agent.pipeline.staged_outbox import Buffer

log = logging.getLogger("roomagent.forwarder")

ACK_FLUSH_SECONDS = 0.05
WINDOWS_QUEUED = 2  # windows of max_inflight handed to paho at a time: one sent, one queued
# Rows read from the outbox into memory ahead of need (about 0.5 MB of readings), at least
# four windows. The loop is woken to read when half of them are gone, and to delete once as
# many rows are acknowledged. Every wake-up costs paho's thread the interpreter lock for a
# while, so they are kept few: reading and deleting 128 rows at a time, the drain ran at 0.59
# of bare paho; 1,024 at a time, 0.75 (docs/benchmarks.md, backlog drain).
READ_AHEAD_ROWS = 2048


def read_ahead_rows(max_inflight: int) -> int:
    return max(READ_AHEAD_ROWS, 4 * max_inflight)


class Forwarder:
    def __init__(
        self,
        outbox: Buffer,
        link: MqttLink,
        run_db: Callable[..., Any],
        max_inflight: int,
    ) -> None:
        self.outbox, self.link, self.run_db = outbox, link, run_db
        self.max_inflight = max_inflight
        self.queued = WINDOWS_QUEUED * max_inflight
        self.read_ahead = read_ahead_rows(max_inflight)
        # Guards ready, inflight and acked, which both threads change. It is never waited for
        # on paho's thread: paho holds its own lock while it calls on_ack, and the loop holds
        # this one while it calls publish(), which takes paho's. So paho's thread only tries
        # it, and leaves its ack in _acks for the holder to match before letting go.
        self._lock = threading.Lock()
        self._acks: collections.deque[tuple[int, bool]] = collections.deque()
        self.ready: collections.deque[Row] = collections.deque()  # read ahead, not yet in paho
        self.inflight: dict[int, int] = {}  # paho mid -> outbox seq, sent or queued in paho
        self.cursor = 0  # highest seq read from the outbox
        self.acked: list[int] = []
        self.delivered = self.rejected = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._deleting: Optional[asyncio.Future[None]] = None
        # The last read found the end of the outbox: nothing to read until notify() says new
        # rows were committed (without it, an idle forwarder would keep reading nothing).
        self._exhausted = False
        self.stopped = False
        # While set, readings stay in the outbox (the clock is not set yet: see Agent).
        self.hold = False
        self.generation = 0  # counts restart()s

    def notify(self) -> None:
        """New rows were committed, or the connection came up (on the event loop)."""
        self._exhausted = False
        self._wake.set()

    def on_ack(self, mid: int, ok: bool) -> None:
        """A PUBACK (or its MQTT 5 refusal) for message id `mid`. Runs on paho's network thread,
        and is safe from any thread."""
        self._acks.append((mid, ok))
        self._settle()

    def _settle(self) -> None:
        """Matches waiting acks to rows and tops paho up, if this thread can take the lock;
        otherwise its holder does, since it calls this again after letting go."""
        while self._acks:
            if not self._lock.acquire(blocking=False):
                return
            try:
                while self._acks:
                    self._match(*self._acks.popleft())
                self._hand_over()
            finally:
                self._lock.release()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The lock, for the loop; acks that paho's thread left meanwhile are matched after."""
        with self._lock:
            yield
        self._settle()

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
        if len(self.acked) >= self.read_ahead // 2:
            self._wake_loop()  # a batch to delete

    def _hand_over(self) -> None:
        """With the lock held: once paho has no window queued, gives it the next from memory."""
        # Once stopping, nothing new goes out: a message published now could be delivered but
        # its ack lost with the connection, and the row would be sent again after the restart.
        if self.stopped or self.hold or not self.link.connected:
            return
        if len(self.inflight) > self.queued - self.max_inflight:
            return
        while self.ready and len(self.inflight) < self.queued:
            row = self.ready.popleft()
            mid = self.link.publish(row.topic, row.payload, qos=1)
            self.inflight[mid] = row.seq
        if len(self.ready) < self.read_ahead // 2 and not self._exhausted:
            self._wake_loop()  # read more ahead

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
            self._delete_in_background()
            if self.hold or self.stopped or not self.link.connected:
                continue
            wanted = self.read_ahead - len(self.ready)
            if wanted >= self.read_ahead // 2 and not self._exhausted:
                # Set before reading: a notify() while the read runs clears it again.
                self._exhausted = True
                generation = self.generation
                rows = await self.run_db(self.outbox.fetch, self.cursor, wanted)
                if generation != self.generation:
                    continue  # restart() rewound the cursor while these were being read
                if rows:
                    with self._locked():
                        self.ready.extend(rows)
                    self.cursor = rows[-1].seq
                if len(rows) == wanted:
                    self._exhausted = False
                    self._wake.set()  # more backlog behind these
            with self._locked():
                self._hand_over()

    def _delete_in_background(self) -> None:
        if self._deleting is not None and self._deleting.done():
            self._deleting.result()  # a failed delete stops the forwarder, as it always did
            self._deleting = None
        if self._deleting is None and self.acked:
            self._deleting = asyncio.ensure_future(self._flush_acks())

    async def _flush_acks(self) -> None:
        with self._locked():
            batch, self.acked = self.acked, []
        if batch:
            await self.run_db(self.outbox.delete, batch)

    async def restart(self, link: MqttLink, max_inflight: int) -> None:
        """Continues on a new link (new broker settings): nothing is in flight on it, so
        reading starts again at the oldest row on disk, and what was in flight on the old one
        goes again (same seq)."""
        await self._settle_deletes()
        with self._locked():
            self.link, self.max_inflight = link, max_inflight
            self.queued = WINDOWS_QUEUED * max_inflight
            self.read_ahead = read_ahead_rows(max_inflight)
            self._acks.clear()  # the old link's, for ids that mean nothing on the new one
            self.inflight.clear()
            self.ready.clear()
            self.cursor = 0
            self._exhausted = False
            self.generation += 1
        self._wake.set()

    async def drain(self, timeout: float) -> bool:
        """Waits until nothing is in flight and all acks are flushed (used on shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.inflight and loop.time() < deadline:
            await asyncio.sleep(ACK_FLUSH_SECONDS)
        await self._settle_deletes()
        return not self.inflight

    async def _settle_deletes(self) -> None:
        """Waits for a background delete, then deletes what is acknowledged since."""
        if self._deleting is not None:
            deleting, self._deleting = self._deleting, None
            await deleting
        await self._flush_acks()

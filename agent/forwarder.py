"""Moves committed readings from the outbox to the broker, oldest first, a bounded number in flight.

Each publish is tied to its outbox row by paho's message id; the row is deleted only when the
broker's PUBACK for that id arrives. Messages in flight when the connection drops stay in paho's
session and are re-sent by paho on reconnect with the same ids, so the map stays valid. After a
restart nothing is in flight and reading starts again from the oldest row on disk.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any, Callable

from agent.mqtt_link import MqttLink
from agent.outbox import Outbox, Row

log = logging.getLogger("roomagent.forwarder")

ACK_FLUSH_SECONDS = 0.05


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
        self.inflight: dict[int, int] = {}  # paho mid -> outbox seq
        # Rows read ahead from the outbox, so that an ack can be answered with the next publish
        # at once instead of after a round trip to the database thread.
        self.ready: collections.deque[Row] = collections.deque()
        self.read_ahead = 4 * max_inflight
        self.cursor = 0  # highest seq read from the outbox
        self.acked: list[int] = []
        self.delivered = self.rejected = 0
        self._wake = asyncio.Event()
        self.stopped = False
        # While set, readings stay in the outbox (the clock is not set yet: see Agent).
        self.hold = False
        self.generation = 0  # counts restart()s

    def notify(self) -> None:
        """New rows were committed, or the connection came up."""
        self._wake.set()

    def on_ack(self, mid: int, ok: bool) -> None:
        """Runs on the event loop (the link's thread hands it over)."""
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
        self._publish_ready()
        # Deletes go to the database in batches; the read-ahead is topped up before it runs dry.
        if len(self.acked) >= max(1, self.max_inflight // 4) or len(self.ready) < self.max_inflight:
            self._wake.set()

    def _publish_ready(self) -> None:
        # Once stopping, nothing new goes out: a message published now could be delivered but
        # its ack lost with the connection, and the row would be sent again after the restart.
        if self.stopped:
            return
        while self.ready and len(self.inflight) < self.max_inflight and self.link.connected:
            row = self.ready.popleft()
            mid = self.link.publish(row.topic, row.payload, qos=1)
            self.inflight[mid] = row.seq

    async def run(self) -> None:
        # A flag as well as cancellation: before Python 3.12, wait_for() can swallow a cancel.
        while not self.stopped:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), ACK_FLUSH_SECONDS * 4)
            self._wake.clear()
            await self._flush_acks()
            if self.hold:
                continue
            if self.link.connected and len(self.ready) < self.max_inflight:
                generation = self.generation
                rows = await self.run_db(self.outbox.fetch, self.cursor, self.read_ahead)
                if generation != self.generation:
                    continue  # restart() rewound the cursor while these were being read
                if rows:
                    self.ready.extend(rows)
                    self.cursor = rows[-1].seq
                if len(rows) == self.read_ahead:
                    self._wake.set()  # more backlog behind these
            self._publish_ready()

    async def _flush_acks(self) -> None:
        if self.acked:
            batch, self.acked = self.acked, []
            await self.run_db(self.outbox.delete, batch)

    async def restart(self, link: MqttLink, max_inflight: int) -> None:
        """Continues on a new link (new broker settings): nothing is in flight on it, so the
        rows that were in flight on the old one are read again and re-sent (same seq)."""
        await self._flush_acks()
        self.link, self.max_inflight = link, max_inflight
        self.read_ahead = 4 * max_inflight
        self.inflight.clear()
        self.ready.clear()
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

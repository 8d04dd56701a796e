"""Moves committed readings from the outbox to the broker, oldest first, a bounded number in flight.

Each publish is tied to its outbox row by paho's message id; the row is deleted only when the
broker's PUBACK for that id arrives. Messages in flight when the connection drops stay in paho's
session and are re-sent by paho on reconnect with the same ids, so the map stays valid. After a
restart nothing is in flight and the cursor starts again from the oldest row on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable, TypeVar

from agent.mqtt_link import MqttLink
from agent.outbox import Outbox

log = logging.getLogger("roomagent.forwarder")
T = TypeVar("T")

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
        self.cursor = 0  # highest seq handed to paho
        self.acked: list[int] = []
        self.sent = self.delivered = self.rejected = 0
        self._wake = asyncio.Event()
        self.stopped = False

    def notify(self) -> None:
        """New rows were committed, or the connection came up."""
        self._wake.set()

    def on_ack(self, mid: int, ok: bool) -> None:
        """Runs on the event loop (the link's thread hands it over)."""
        seq = self.inflight.pop(mid, None)
        if seq is None:
            return  # a retained state or status message, not an outbox row
        if not ok:
            # The broker refused it (MQTT 5 reason code, e.g. not authorised): re-sending would
            # block the queue forever, so it is dropped, counted and logged.
            self.rejected += 1
            log.error("broker refused message seq %d; dropped", seq)
        else:
            self.delivered += 1
        self.acked.append(seq)
        if len(self.acked) >= max(1, self.max_inflight // 4) or not self.inflight:
            self._wake.set()

    async def run(self) -> None:
        # A flag as well as cancellation: before Python 3.12, wait_for() can swallow a cancel.
        while not self.stopped:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), ACK_FLUSH_SECONDS * 4)
            self._wake.clear()
            if self.acked:
                batch, self.acked = self.acked, []
                await self.run_db(self.outbox.delete, batch)
            await self._fill()

    async def _fill(self) -> None:
        room = self.max_inflight - len(self.inflight)
        # Refill in batches rather than one row per ack: one query per quarter window.
        if not self.link.connected or (room < max(1, self.max_inflight // 4) and self.inflight):
            return
        rows = await self.run_db(self.outbox.fetch, self.cursor, room)
        if not self.link.connected:
            return
        for row in rows:
            mid = self.link.publish(row.topic, row.payload, qos=1)
            self.inflight[mid] = row.seq
            self.cursor = row.seq
            self.sent += 1
        if len(rows) == room:
            self._wake.set()  # the window is full; acks will wake us, but check again soon

    async def drain(self, timeout: float) -> bool:
        """Waits until nothing is in flight and all acks are flushed (used on shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self.inflight or self.acked) and loop.time() < deadline:
            self._wake.set()
            await asyncio.sleep(ACK_FLUSH_SECONDS)
        if self.acked:
            batch, self.acked = self.acked, []
            await self.run_db(self.outbox.delete, batch)
        return not self.inflight

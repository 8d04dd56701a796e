"""The node's background beats that keep its pipeline honest: the clock watch (readings taken
before NTP set the clock), the buffer's tick (RAM stage to card), the first round of readings
before READY=1, and systemd's watchdog. Each takes exactly what it watches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Callable

from agent.mqtt.contract import corrected_telemetry

if TYPE_CHECKING:
    from agent.app.systemd import Notifier
    from agent.common.clock import SystemClock
    from agent.pipeline.forwarder import Forwarder
    from agent.pipeline.staged_outbox import Buffer
    from agent.sensing.runner import DeviceRunner

log = logging.getLogger("roomagent")
CLOCK_CHECK_SECONDS = 2.0
RunDb = Callable[..., Awaitable[Any]]  # runs a function on the buffer's thread


async def watch_clock(
    clock: SystemClock, forwarder: Forwarder, outbox: Buffer, run_db: RunDb, boot: str,
    hold_unsynced: float,
) -> None:  # fmt: skip
    """Once NTP sets the clock, re-stamps the readings still waiting that were taken before
    (see Outbox.correct_clock) and lets them go; if it takes longer than hold_unsynced,
    lets them go marked clock_synced=false."""
    was_synced = clock.synced()
    if forwarder.hold:
        log.warning("clock not synchronised (no NTP yet): holding readings up to %g s",
                    hold_unsynced)  # fmt: skip
    deadline = clock.monotonic() + hold_unsynced
    while True:
        synced = clock.synced()
        if synced and not was_synced:
            offset = clock.time() - clock.monotonic()
            fixed = await run_db(outbox.correct_clock, boot, offset, corrected_telemetry)
            log.info("clock synchronised: %d waiting readings re-stamped with their true time",
                     fixed)  # fmt: skip
        if forwarder.hold and (synced or clock.monotonic() >= deadline):
            if not synced:
                log.warning("clock still not synchronised: sending readings marked "
                            "clock_synced=false")  # fmt: skip
            forwarder.hold = False
            forwarder.notify()
        was_synced = synced
        await asyncio.sleep(CLOCK_CHECK_SECONDS)


async def tick_buffer(outbox: Buffer, run_db: RunDb) -> None:
    """Once a second the buffer moves what is due from its RAM stage to the card."""
    while True:
        await asyncio.sleep(1.0)
        await run_db(outbox.tick)


async def first_round(runners: Sequence[DeviceRunner], stop: asyncio.Event) -> None:
    """Waits until every device has been opened and read once (or has failed or timed out),
    so READY=1 means what it says; a hung driver cannot hold it back past its timeout."""
    if not runners:
        return
    limit = max(2 * r.config.timeout for r in runners) + 1
    tried = asyncio.ensure_future(asyncio.gather(*(r.first_poll.wait() for r in runners)))
    stopping = asyncio.ensure_future(stop.wait())
    waiters: set[asyncio.Future[Any]] = {tried, stopping}
    try:
        await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            # A cancelled gather ends with CancelledError as its exception; unread, asyncio
            # logs it at ERROR when the future is collected (a stop during the first round).
            waiter.add_done_callback(_retrieve)


async def supervise(notifier: Notifier, run_db: RunDb, status_line: Callable[[], str]) -> None:
    """Feeds systemd's watchdog only while the event loop runs this and the buffer's writer
    thread answers: a stuck loop or a writer stuck in I/O stops the pings, and systemd
    kills and restarts the agent. STATUS= is refreshed on the same beat."""
    interval = notifier.watchdog_interval
    period = min(interval, 10.0) if interval else 10.0
    while True:
        alive = True
        if interval:
            try:
                await asyncio.wait_for(run_db(_nothing), timeout=interval)
            except asyncio.TimeoutError:
                alive = False
                log.error("buffer writer has not answered for %.0f s", interval)
        if alive:
            fields = {"STATUS": status_line()}
            if interval:
                fields["WATCHDOG"] = "1"
            notifier.notify(**fields)
        await asyncio.sleep(period)


def _nothing() -> None:
    """A job for the database thread that proves it is free to take jobs."""


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()

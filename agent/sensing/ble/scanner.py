"""One bleak scanner for every BLE device on the node, kept alive by a watchdog.

The detection callback is the hot path: a sensor may advertise ten times a second and BlueZ
calls back for every packet. It only notes the time, keeps the newest advertisement of each
wanted address (others are counted and dropped) and hands it to a few cheap sinks (presence
matching). Decoding happens later, at most once per device interval, in agent.sensing.ble.devices.

The watchdog restarts the scan when nothing has been heard for `stall_timeout` (BlueZ is known
to stop delivering without a word) or when starting fails (org.bluez.Error.InProgress,
NotReady, a bluetoothd restart, ...). Waits between failed attempts double from backoff_min to
backoff_max; after `reset_after` failures in a row the adapter is reset with an injectable
function, by default a power cycle over D-Bus (see power_cycle_adapter). An advertisement
heard after a start ends the run of failures.

Passive scanning needs BlueZ's advertisement monitor (BlueZ >= 5.56 with --experimental, Linux
>= 5.10) and or-patterns saying which advertisements to pass; "auto" tries it on Linux and falls
back to active scanning for good when BlueZ says it cannot.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Collection, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent.sensing.ble.ratelog import RateLimitedLog
from drivers.ble import PATTERNS as DECODER_PATTERNS

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

log = logging.getLogger("roomagent.ble")

# address, advertisement, monotonic time it was heard
Sink = Callable[[str, "AdvertisementData", float], None]
ResetAdapter = Callable[[Optional[str]], Awaitable[None]]

# What passive scanning lets through, per format: BlueZ advertisement-monitor or-patterns,
# (start position in the AD structure's data, AD type, bytes), as each format module declares
# its sources (drivers.ble.PATTERNS).
PATTERNS = DECODER_PATTERNS
# D-Bus errors that mean "this BlueZ cannot scan passively", not "try again".
PASSIVE_UNSUPPORTED = (
    "org.bluez.Error.NotSupported",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownInterface",
)
START_TIMEOUT = 30.0  # s: a start() that hangs in D-Bus counts as failed
STOP_TIMEOUT = 10.0
RESET_TIMEOUT = 30.0


def patterns_for(formats: Iterable[str]) -> tuple[tuple[int, int, bytes], ...]:
    """The or-patterns passing every advertisement of these formats ("auto": all of them)."""
    wanted = set(formats)
    if "auto" in wanted:
        wanted = set(PATTERNS)
    out: list[tuple[int, int, bytes]] = []
    for name in PATTERNS:
        if name in wanted:
            out.extend(p for p in PATTERNS[name] if p not in out)
    return tuple(out)


@dataclass(frozen=True)
class ScannerStats:
    mode: str  # "passive" or "active": what the scan runs (or will run) in
    scanning: bool  # started and not stopped
    adverts: int  # advertisements heard
    dropped: int  # of them, from addresses no device is configured for
    starts: int  # scan starts attempted
    restarts: int  # of them, after the first: each a stall or a failure recovered from
    stalls: int  # scans restarted because nothing was heard for stall_timeout
    errors: int  # starts that failed (BlueZ / D-Bus errors)
    adapter_resets: int
    sink_errors: int  # exceptions in the hot path's sinks (logged, never fatal)
    last_error: Optional[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SharedScanner:
    """wanted: addresses whose newest advertisement is kept in `latest` (None: every address,
    for scan-ble). patterns: or-patterns for passive scanning (none: active only)."""

    def __init__(
        self,
        *,
        wanted: Optional[Collection[str]] = None,
        patterns: Iterable[tuple[int, int, bytes]] = (),
        adapter: Optional[str] = None,
        scanning_mode: str = "auto",
        stall_timeout: float = 300.0,
        backoff_min: float = 1.0,
        backoff_max: float = 300.0,
        reset_after: int = 3,
        backend: Optional[type[BaseBleakScanner]] = None,
        reset_adapter: Optional[ResetAdapter] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wanted = None if wanted is None else frozenset(a.upper() for a in wanted)
        self.patterns = tuple(patterns)
        self.adapter, self.configured_mode = adapter, scanning_mode
        self.stall_timeout, self.reset_after = stall_timeout, reset_after
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.backend = backend
        self.reset_adapter = reset_adapter or power_cycle_adapter
        self.clock = clock
        if scanning_mode == "auto":
            passive = sys.platform.startswith("linux") and bool(self.patterns)
            self.mode = "passive" if passive else "active"
        else:
            self.mode = scanning_mode
        self.latest: dict[str, tuple[AdvertisementData, float]] = {}
        self.sinks: list[Sink] = []
        self.scanning = False
        self.heard = float("-inf")  # monotonic time of the last advertisement, any address
        self.started_at = float("-inf")
        self.failures = 0  # in a row; reset by any advertisement heard
        self._scanner: Any = None
        self._counts = dict.fromkeys(
            ("adverts", "dropped", "starts", "stalls", "errors", "adapter_resets", "sink_errors"), 0
        )
        self.last_error: Optional[str] = None
        self._ratelog = RateLimitedLog(log, clock=clock)

    # The hot path -----------------------------------------------------------------------------

    def detected(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """bleak's detection callback: no decoding, no I/O, nothing that can raise out."""
        now = self.clock()
        self.heard = now
        self.failures = 0  # heard: whatever failed before, the scan works now
        counts = self._counts
        counts["adverts"] += 1
        address = device.address.upper()
        if self._wanted is None or address in self._wanted:
            self.latest[address] = (adv, now)
        else:
            counts["dropped"] += 1
        for sink in self.sinks:
            try:
                sink(address, adv, now)
            except Exception:
                counts["sink_errors"] += 1
                what = getattr(sink, "__qualname__", sink)
                self._ratelog.log(logging.ERROR, "sink", "BLE advertisement from %s: %s failed",
                                  address, what, exc_info=True)  # fmt: skip

    # The watchdog -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Scans until cancelled; never returns and never raises anything but cancellation."""
        try:
            while True:
                try:
                    if await self._start():
                        reason = await self._watch()
                        self._counts["stalls"] += 1
                        self._ratelog.log(logging.WARNING, "stall", "BLE scan stalled (%s): "
                                          "restarting", reason)  # fmt: skip
                        await self._stop()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # a bug here must not end scanning for good
                    self._counts["errors"] += 1
                    self.last_error = _describe(e)
                    log.exception("BLE scanner: unexpected error; restarting the scan")
                    await self._stop()
                await self._recover()
        finally:
            await self._stop()

    async def _start(self) -> bool:
        self._counts["starts"] += 1
        try:
            from bleak.exc import BleakDBusError, BleakError

            scanner = self._make_scanner(self.mode)
            await asyncio.wait_for(scanner.start(), START_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if self.configured_mode == "auto" and self.mode == "passive":
                unsupported = (
                    e.dbus_error in PASSIVE_UNSUPPORTED
                    if isinstance(e, BleakDBusError)
                    else isinstance(e, BleakError) and "passive" in str(e).lower()
                )
                if unsupported:
                    log.warning("BLE: passive scanning is not available here (%s); scanning "
                                "actively from now on", e)  # fmt: skip
                    self.mode = "active"
                    self._counts["starts"] -= 1  # not a failure: the same start, done right
                    return await self._start()
            self._counts["errors"] += 1
            self.last_error = _describe(e)
            self._ratelog.log(logging.ERROR, "start", "BLE scan could not start on %s: %s",
                              self.adapter or "the default adapter", self.last_error)  # fmt: skip
            return False
        self._scanner = scanner
        self.scanning = True
        self.started_at = self.clock()
        log.info("BLE scanning (%s) on %s", self.mode, self.adapter or "the default adapter")
        return True

    async def _watch(self) -> str:
        """Returns when the scan has stalled (never without a stall timeout)."""
        period = 60.0 if not self.stall_timeout else min(1.0, self.stall_timeout / 10)
        while True:
            await asyncio.sleep(period)
            if self.stall_timeout:
                quiet = self.clock() - max(self.heard, self.started_at)
                if quiet >= self.stall_timeout:
                    return f"nothing heard for {quiet:.0f} s"

    async def _recover(self) -> None:
        self.failures += 1
        if self.reset_after and self.failures % self.reset_after == 0:
            self._counts["adapter_resets"] += 1
            log.warning("BLE: %d failed scans in a row: resetting %s", self.failures,
                        self.adapter or "the default adapter")  # fmt: skip
            try:
                await asyncio.wait_for(self.reset_adapter(self.adapter), RESET_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.last_error = f"adapter reset failed: {_describe(e)}"
                log.error("BLE: %s", self.last_error)
        await asyncio.sleep(self.backoff(self.failures))

    def backoff(self, failures: int) -> float:
        """The wait after `failures` failures in a row: backoff_min, doubling, capped."""
        return float(min(self.backoff_max, self.backoff_min * 2 ** min(failures - 1, 30)))

    async def _stop(self) -> None:
        scanner, self._scanner = self._scanner, None
        self.scanning = False
        if scanner is None:
            return
        try:
            await asyncio.wait_for(scanner.stop(), STOP_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # stopping a scan BlueZ has lost fails too: nothing to do
            log.debug("BLE scan stop: %s", _describe(e))

    def _make_scanner(self, mode: str) -> Any:
        from bleak import BleakScanner
        from bleak.args.bluez import BlueZScannerArgs, OrPattern
        from bleak.assigned_numbers import AdvertisementDataType

        bluez: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if mode == "passive":
            bluez["or_patterns"] = [
                OrPattern(start, AdvertisementDataType(ad_type), content)
                for start, ad_type, content in self.patterns
            ]
        if self.adapter:
            # bleak 3 takes the adapter in its BlueZ arguments (the keyword is deprecated);
            # bleak 1 (the last for Python 3.9) only as a keyword.
            if "adapter" in BlueZScannerArgs.__annotations__:
                bluez["adapter"] = self.adapter
            else:
                extra["adapter"] = self.adapter
        # bluez is a TypedDict whose keys differ between bleak 1 and 3: built as a plain dict.
        args: dict[str, Any] = {"scanning_mode": mode, "bluez": bluez, "backend": self.backend}
        return BleakScanner(self.detected, None, **args, **extra)

    def stats(self) -> ScannerStats:
        c = self._counts
        return ScannerStats(
            mode=self.mode,
            scanning=self.scanning,
            adverts=c["adverts"],
            dropped=c["dropped"],
            starts=c["starts"],
            restarts=max(0, c["starts"] - 1),
            stalls=c["stalls"],
            errors=c["errors"],
            adapter_resets=c["adapter_resets"],
            sink_errors=c["sink_errors"],
            last_error=self.last_error,
        )


async def power_cycle_adapter(adapter: Optional[str]) -> None:
    """Powers the adapter off and on again through BlueZ (org.bluez.Adapter1.Powered over the
    system D-Bus): what `bluetoothctl power off; power on` does. It needs no capability, only
    BlueZ's D-Bus policy, which lets members of group `bluetooth` do it (the service runs in
    that group). It cannot undo an rfkill block (`rfkill unblock bluetooth`, as root) or a
    controller that stopped answering HCI (`btmgmt --index 0 power off/on` needs
    CAP_NET_ADMIN); pass another function as SharedScanner(reset_adapter=...) for those."""
    from dbus_fast import BusType, Message, MessageType, Variant
    from dbus_fast.aio import MessageBus

    path = f"/org/bluez/{adapter or 'hci0'}"
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        for powered in (False, True):
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=path,
                    interface="org.freedesktop.DBus.Properties",
                    member="Set",
                    signature="ssv",
                    body=["org.bluez.Adapter1", "Powered", Variant("b", powered)],
                )
            )
            if reply is not None and reply.message_type == MessageType.ERROR:
                raise OSError(f"{path} Powered={powered}: {reply.error_name} {reply.body}")
            if not powered:
                await asyncio.sleep(1.0)
    finally:
        bus.disconnect()


def _describe(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "no answer from BlueZ in time"
    if isinstance(e, (FileNotFoundError, ConnectionRefusedError, PermissionError)):
        # bleak's BlueZ backend connects to the system D-Bus first.
        return f"cannot reach BlueZ on the system D-Bus (is bluetoothd running?): {e}"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__

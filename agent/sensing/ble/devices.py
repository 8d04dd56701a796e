"""The per-device layer: from the newest advertisement of each sensor to readings and
availability, off the scanner's hot path.

The scanner keeps only each sensor's newest advertisement. tick(), called a few times a
second, decodes one when the device is due (at most one reading per configured interval, the
latest value winning over everything heard since) and refuses what it must:

- a replay: an encrypted frame whose counter is older than the last authentic one (equal is
  the same frame heard again: a duplicate, not an attack). pvvx/ATC counters are 8 bits and
  wrap, so "newer" is serial-number arithmetic (RFC 1982) at the frame's counter width;
- a plain (unencrypted) frame from a device configured with a key: anyone can send one;
- a duplicate: the packet id (BTHome packet id, Ruuvi sequence, ...) of the last reading.
  Sensors repeat each measurement in many advertisements; a duplicate is not a new reading,
  but it does prove the device is alive.

Frames carrying events (a button press) are passed on at once, whatever the interval: an
event must never be coalesced away. So a device that is not due is still looked at, at most
every PEEK seconds, for events; two presses within that time are one reading (the later).
What such a look finds in an authentic frame (encrypted when a key is configured, its counter
not older than the last reading's) is kept and merged under the next reading's newer values:
Xiaomi's stock firmware sends temperature, humidity and battery in separate advertisements,
and a reading made of the newest advertisement alone would carry one of them, perhaps the
same one every time when the device's cycle and the interval line up.
A device that sends nothing decodable for `unavailable_after` seconds is reported
unavailable, unless it advertises only on events (BTHome's trigger-based flag), for which
silence is normal.

Replay protection holds for the life of the process: after a restart the first authentic
counter is taken as the baseline.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent.config.ble import BleDeviceConfig
from agent.sensing.ble.ratelog import RateLimitedLog
from drivers.quantities import QUANTITIES

if TYPE_CHECKING:
    from drivers.ble import DecodedFrame

log = logging.getLogger("roomagent.ble")

# address -> (advertisement, monotonic time heard): SharedScanner.latest
Latest = Mapping[str, tuple[Any, float]]
Decoder = Callable[..., Optional["DecodedFrame"]]
PEEK = 0.5  # s: how often a device between readings is looked at for events
COUNTS = ("readings", "duplicates", "replays", "plain_refused", "key_errors", "undecodable",
          "unrecognised", "implausible", "errors")  # fmt: skip


@dataclass(frozen=True)
class BleReading:
    device: str
    values: Mapping[str, Any]
    heard: float  # monotonic time the advertisement was received
    rssi: Optional[int]
    format: str


@dataclass(frozen=True)
class Availability:
    device: str
    available: bool
    reason: Optional[str] = None


def is_newer(counter: int, last: int, bits: Optional[int]) -> bool:
    """Whether `counter` comes after `last`: plain comparison for 32-bit counters (BTHome's
    does not wrap in a sensor's life), serial-number arithmetic for narrow ones."""
    if not bits or bits >= 32:
        return counter > last
    half = 1 << (bits - 1)
    return 0 < (counter - last) % (1 << bits) < half


class _Device:
    def __init__(self, config: BleDeviceConfig, started: float) -> None:
        self.config = config
        self.key = config.key_bytes
        self.formats = None if config.format == "auto" else (config.format,)
        self.taken = float("-inf")  # heard-time of the last advertisement looked at
        self.next_due = float("-inf")
        self.packet_id: Optional[int] = None
        self.counter: Optional[int] = None
        self.alive_since = started  # staleness is measured from here or the last good frame
        self.last_good = float("-inf")  # monotonic: last authentic frame (new or duplicate)
        self.last_values: Mapping[str, Any] = {}
        self.available: Optional[bool] = None
        self.trigger_based = False
        self.peeked = float("-inf")  # heard-time of the last advertisement peeked at
        self.next_peek = float("-inf")
        self.problem: Optional[str] = None  # the last reason a frame was refused
        self.carry: dict[str, Any] = {}  # values of authentic frames looked at since a reading
        self.counts: Counter[str] = Counter()


class DeviceLayer:
    def __init__(
        self,
        configs: Sequence[BleDeviceConfig],
        latest: Latest,
        *,
        clock: Callable[[], float] = time.monotonic,
        decoder: Optional[Decoder] = None,
    ) -> None:
        if decoder is None:
            from drivers.ble import decode_frame

            decoder = decode_frame
        self.latest, self.clock, self.decoder = latest, clock, decoder
        now = clock()
        self.devices = {c.address: _Device(c, now) for c in configs}
        self.by_name = {d.config.name: d for d in self.devices.values()}
        self._ratelog = RateLimitedLog(log, clock=clock)

    def tick(self) -> tuple[list[BleReading], list[Availability]]:
        """Readings due now, and availability changes. Never raises for a device's data."""
        now = self.clock()
        readings: list[BleReading] = []
        changes: list[Availability] = []
        for address, device in self.devices.items():
            entry = self.latest.get(address)
            reading = None
            if entry is not None and entry[1] > device.taken:
                adv, heard = entry
                if now >= device.next_due:
                    device.taken = heard
                    reading = self._take(device, adv, heard, now)
                elif heard > device.peeked and now >= device.next_peek:
                    # Not due, but it may carry an event, which cannot wait for the interval.
                    device.peeked, device.next_peek = heard, now + PEEK
                    if self._peek(device, adv):
                        device.taken = heard
                        reading = self._take(device, adv, heard, now)
            if reading is not None:
                readings.append(reading)
            change = self._availability(device, now)
            if change is not None:
                changes.append(change)
        return readings, changes

    def _take(self, device: _Device, adv: Any, heard: float, now: float) -> Optional[BleReading]:
        from drivers.ble import BLEDecodeError, BLEKeyError

        name, address = device.config.name, device.config.address
        try:
            frame = self.decoder(address, adv, device.key, formats=device.formats)
        except BLEKeyError as e:
            return self._refuse(device, "key_errors", f"cannot decrypt: {e}")
        except BLEDecodeError as e:
            return self._refuse(device, "undecodable", f"bad advertisement: {e}")
        except Exception as e:  # a decoder bug must not take the others down
            device.counts["errors"] += 1
            self._ratelog.log(logging.ERROR, f"{name}:bug", "BLE %s: decoding failed: %r", name,
                              e, exc_info=True)  # fmt: skip
            return None
        if frame is None:
            device.counts["unrecognised"] += 1  # e.g. a second advertisement set of the device
            return None
        if device.key is not None and not frame.encrypted:
            return self._refuse(device, "plain_refused",
                                "unencrypted advertisement, but a key is configured")  # fmt: skip
        if frame.counter is not None:
            if device.counter is not None and not is_newer(
                frame.counter, device.counter, frame.counter_bits
            ):
                if frame.counter == device.counter:
                    self._alive(device, heard, frame)
                    device.counts["duplicates"] += 1
                    return None
                return self._refuse(device, "replays", f"replayed frame refused: counter "
                                    f"{frame.counter} after {device.counter}")  # fmt: skip
            device.counter = frame.counter
        self._alive(device, heard, frame)
        if frame.packet_id is not None and frame.packet_id == device.packet_id:
            device.counts["duplicates"] += 1
            return None
        device.packet_id = frame.packet_id
        values = self._clean(device, {**device.carry, **frame.values})
        if not values:
            return None
        device.carry = {}
        device.next_due = now + device.config.interval
        device.last_values = values
        device.counts["readings"] += 1
        return BleReading(name, values, heard, getattr(adv, "rssi", None), frame.format)

    def _peek(self, device: _Device, adv: Any) -> bool:
        """A quick look before the device is due: whether this advertisement carries an event.
        The values of an authentic frame without events are kept for the next reading (module
        docstring). Anything wrong with it is left for when the device is due, and counted
        then; the counter is not advanced here, so the due frame is no duplicate of itself."""
        try:
            frame = self.decoder(device.config.address, adv, device.key, formats=device.formats)
        except Exception:
            return False
        if frame is None or (device.key is not None and not frame.encrypted):
            return False
        if (frame.counter is not None and device.counter is not None
                and not is_newer(frame.counter, device.counter, frame.counter_bits)):  # fmt: skip
            return False
        if frame.events:
            return True
        device.carry.update(frame.values)
        return False

    def _alive(self, device: _Device, heard: float, frame: DecodedFrame) -> None:
        device.last_good = max(device.last_good, heard)
        device.trigger_based = frame.trigger_based
        device.problem = None

    def _refuse(self, device: _Device, count: str, reason: str) -> Optional[BleReading]:
        """Counts and logs a refused frame; returns None, for `return self._refuse(...)`."""
        device.counts[count] += 1
        device.problem = reason
        name = device.config.name
        self._ratelog.log(logging.WARNING, f"{name}:{count}", "BLE %s (%s): %s", name,
                          device.config.address, reason)  # fmt: skip
        return None

    def _clean(self, device: _Device, values: Mapping[str, Any]) -> dict[str, Any]:
        """JSON-ready values: numbers rounded as the I2C drivers' are; a known quantity outside
        its plausible range left out (and counted), as a sensor fault, not weather."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, (bool, str)):
                out[name] = value
            elif isinstance(value, (int, float)) and math.isfinite(value):
                q = QUANTITIES.get(name)
                if q is None:
                    out[name] = value
                elif q.minimum <= value <= q.maximum:
                    out[name] = round(value, q.decimals) if isinstance(value, float) else value
                else:
                    device.counts["implausible"] += 1
                    self._ratelog.log(logging.WARNING, f"{device.config.name}:implausible",
                                      "BLE %s: implausible %s %g left out", device.config.name,
                                      name, value)  # fmt: skip
        return out

    def _availability(self, device: _Device, now: float) -> Optional[Availability]:
        name = device.config.name
        recent = device.last_good > now - device.config.unavailable_after
        if device.available is not True and device.last_good >= device.alive_since and recent:
            device.available = True
            return Availability(name, True)
        if device.available is False or device.trigger_based:
            return None
        quiet = now - max(device.last_good, device.alive_since)
        if quiet < device.config.unavailable_after:
            return None
        device.available = False
        reason = f"nothing decodable heard for {quiet:.0f} s"
        if device.problem:
            reason += f" (last problem: {device.problem})"
        return Availability(name, False, reason)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per device, the non-zero counters (readings, duplicates, replays, ...)."""
        return {d.config.name: {k: d.counts[k] for k in COUNTS if d.counts[k]}
                for d in self.devices.values()}  # fmt: skip

    def totals(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for d in self.devices.values():
            total.update(d.counts)
        return {k: total[k] for k in COUNTS}

    def up(self) -> int:
        return sum(1 for d in self.devices.values() if d.available)

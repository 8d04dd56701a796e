"""Presence: how many of a room's configured beacons are heard, strongly enough, right now.

A beacon counts while it has been received at `rssi_min` or stronger within the last `window`
seconds; `occupancy` is the number of such beacons. Weaker receptions are ignored rather than
averaged: a badge in the corridor is heard, just not well.

The matching runs in the scanner's hot path (as one of its sinks), for every advertisement
from any address, because a phone's iBeacon comes from an address that changes every few
minutes: it must be cheap. A badge is matched by address (a dict lookup); an iBeacon by the
first bytes of Apple's manufacturer data (a dict lookup and a slice): the layout is Apple's
Proximity Beacon Specification's, which drivers/ble/ibeacon.py decodes in full.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from agent.config.ble import PresenceConfig

APPLE = 0x004C
IBEACON_PREFIX = b"\x02\x15"  # type 2, 21 bytes follow: UUID, major, minor, measured power


@dataclass(frozen=True)
class PresenceReading:
    group: str
    occupancy: int
    changed: bool  # differs from the previous reading


class _Group:
    def __init__(self, config: PresenceConfig) -> None:
        self.config = config
        self.seen = [float("-inf")] * len(config.beacons)  # monotonic, per beacon
        self.last: Optional[int] = None  # occupancy last reported
        self.next_due = float("-inf")

    def count(self, now: float) -> int:
        since = now - self.config.window
        return sum(1 for t in self.seen if t >= since)


class Presence:
    def __init__(
        self, configs: Sequence[PresenceConfig], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self.groups = {c.name: _Group(c) for c in configs}
        # address -> [(group, beacon index, rssi_min)]; iBeacon UUID (16 bytes) -> [(group,
        # beacon index, rssi_min, major, minor)]
        self._by_address: dict[str, list[tuple[_Group, int, int]]] = {}
        self._by_uuid: dict[bytes, list[tuple[_Group, int, int, Optional[int], Optional[int]]]] = {}
        for group in self.groups.values():
            c = group.config
            for i, b in enumerate(c.beacons):
                if b.address is not None:
                    self._by_address.setdefault(b.address, []).append((group, i, c.rssi_min))
                else:
                    assert b.uuid is not None
                    key = bytes.fromhex(b.uuid.replace("-", ""))
                    self._by_uuid.setdefault(key, []).append(
                        (group, i, c.rssi_min, b.major, b.minor)
                    )

    def sink(self, address: str, adv: Any, now: float) -> None:
        """The scanner's sink: notes the time a configured beacon was heard strongly enough."""
        rssi = adv.rssi
        for group, i, rssi_min in self._by_address.get(address, ()):
            if rssi >= rssi_min:
                group.seen[i] = now
        if self._by_uuid:
            data = adv.manufacturer_data.get(APPLE)
            if data is not None and data[:2] == IBEACON_PREFIX and len(data) >= 22:
                matches = self._by_uuid.get(bytes(data[2:18]))
                if matches:
                    major = int.from_bytes(data[18:20], "big")
                    minor = int.from_bytes(data[20:22], "big")
                    for group, i, rssi_min, want_major, want_minor in matches:
                        if (
                            rssi >= rssi_min
                            and want_major in (None, major)
                            and want_minor
                            in (
                                None,
                                minor,
                            )
                        ):
                            group.seen[i] = now

    def tick(self, only: Optional[Collection[str]] = None) -> list[PresenceReading]:
        """A reading per group (of `only`, if given) when its interval is up, or at once when
        the count changed."""
        now = self.clock()
        out = []
        for name, group in self.groups.items():
            if only is not None and name not in only:
                continue
            count = group.count(now)
            changed = count != group.last
            if changed or now >= group.next_due:
                group.last = count
                group.next_due = now + group.config.interval
                out.append(PresenceReading(name, count, changed))
        return out

    def restart(self, name: str) -> None:
        """The next tick publishes this group's count, changed or not."""
        self.groups[name].last = None
        self.groups[name].next_due = float("-inf")

    def occupancy(self) -> Mapping[str, int]:
        """Group name -> beacons present now."""
        now = self.clock()
        return {name: group.count(now) for name, group in self.groups.items()}

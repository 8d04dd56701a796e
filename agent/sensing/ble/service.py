"""BLE in the agent: the shared scanner, the device layer and presence on the event loop.

Readings leave through the same callbacks as the I2C devices' (the runtime's _on_sample and
_on_availability), so they are committed to the buffer and forwarded like any other, and the
scanner carries on whether the broker is there or not. Presence groups publish
``{"occupancy": n}`` under their own name. The quantities each BLE device has sent are kept in
``<state_dir>/ble_quantities.json`` so Home Assistant discovery can describe a device before
it is heard again after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from agent.common.clock import SystemClock
from agent.common.seq_floor import write_durably
from agent.config.ble import BleConfig
from agent.sensing.ble.devices import DeviceLayer
from agent.sensing.ble.presence import Presence
from agent.sensing.ble.scanner import SharedScanner, patterns_for
from agent.sensing.runner import Sample

log = logging.getLogger("roomagent.ble")
# s a scan listens before presence counts are published: beacons advertise every second or
# so, and a count of 0 from a scan that has not heard them yet would say the room is empty.
PRESENCE_SETTLE = 10.0
TICK = 0.25  # s between two looks at the newest advertisements (bounds decoding per device)

OnSample = Callable[[Sample], Awaitable[None]]
OnAvailability = Callable[[str, bool, Optional[str]], Awaitable[None]]


class BleService:
    def __init__(
        self,
        config: BleConfig,
        clock: SystemClock,
        state_dir: Path,
        on_sample: OnSample,
        on_availability: OnAvailability,
        *,
        backend: Any = None,
        reset_adapter: Any = None,
        on_new_quantities: Callable[[], None] = lambda: None,
        tick: float = TICK,
        backoff_min: float = 1.0,
    ) -> None:
        self.config, self.clock = config, clock
        self.on_sample, self.on_availability = on_sample, on_availability
        self.on_new_quantities = on_new_quantities
        self.tick_period = tick
        formats = [d.format for d in config.devices]
        for group in config.presence:
            # A badge known by its address may send any format; a phone sends iBeacon.
            formats += ["auto" if any(b.address for b in group.beacons) else "ibeacon"]
        self.scanner = SharedScanner(
            wanted=[d.address for d in config.devices],
            patterns=patterns_for(formats),
            adapter=config.adapter,
            scanning_mode=config.scanning_mode,
            stall_timeout=config.stall_timeout,
            backoff_min=backoff_min,
            backoff_max=config.restart_backoff_max,
            reset_after=config.reset_after,
            backend=backend,
            reset_adapter=reset_adapter,
            clock=clock.monotonic,
        )
        self.devices = DeviceLayer(config.devices, self.scanner.latest, clock=clock.monotonic)
        self.presence = Presence(config.presence, clock=clock.monotonic)
        if config.presence:
            self.scanner.sinks.append(self.presence.sink)
        self._presence_up: dict[str, Optional[bool]] = dict.fromkeys(self.presence.groups)
        self._listening: dict[str, bool] = {}  # the scan has listened long enough, now
        self._held: dict[str, int] = {}  # the occupancy last published per group
        self._scan_started: Optional[float] = None  # monotonic start of the running scan
        # The last tick the scan was running; from the start, it is given a window to begin.
        self._last_scanning = clock.monotonic()
        self._quantities_file = state_dir / "ble_quantities.json"
        # device -> quantity -> "number" or "binary": what it has sent, for discovery
        self.quantities: dict[str, dict[str, str]] = self._load_quantities()
        self.stopped = False

    async def run(self) -> None:
        scan = asyncio.ensure_future(self.scanner.run())
        try:
            while not self.stopped:
                try:
                    await self._tick()
                except Exception:  # never silently dead: logged, and the next tick tries again
                    log.exception("BLE: processing advertisements failed; carrying on")
                await asyncio.sleep(self.tick_period)
        finally:
            scan.cancel()
            await asyncio.gather(scan, return_exceptions=True)

    async def _tick(self) -> None:
        readings, changes = self.devices.tick()
        for change in changes:
            await self.on_availability(change.device, change.available, change.reason)
        for r in readings:
            self._learn(r.device, r.values)
            await self.on_sample(self._sample(r.device, r.values, r.heard))
        await self._tick_presence()

    async def _tick_presence(self) -> None:
        if not self.presence.groups:
            return
        now = self.clock.monotonic()
        scanning = self.scanner.scanning
        if not scanning:
            self._scan_started = None
        elif self._scan_started is None:
            self._scan_started = now
        if scanning:
            self._last_scanning = now
        # Presence is known once a scan has listened long enough to hear every beacon that is
        # there. While the scan is down (a restart, a failure) the last count holds: beacons
        # are not heard, so a live count would fall to 0 and say the room emptied. After a
        # window without a scan, presence is not known.
        live = []
        for name, group in self.presence.groups.items():
            settle = min(group.config.window, PRESENCE_SETTLE)
            listening = self._scan_started is not None and now - self._scan_started >= settle
            self._listening[name] = listening
            up = self._presence_up[name]
            if listening:
                up = True
                live.append(name)
            elif not scanning and now - self._last_scanning > group.config.window:
                up = False
            if up is not None and up != self._presence_up[name]:
                self._presence_up[name] = up
                reason = None if up else f"BLE scan not running: {self.scanner.last_error or '?'}"
                await self.on_availability(name, up, reason)
                if up:
                    self.presence.restart(name)  # published at once, whatever it was before
        for reading in self.presence.tick(live):
            values = {"occupancy": reading.occupancy}
            self._held[reading.group] = reading.occupancy
            await self.on_sample(self._sample(reading.group, values, now))

    def _sample(self, device: str, values: Mapping[str, Any], heard: float) -> Sample:
        age = max(0.0, self.clock.monotonic() - heard)
        return Sample(device, self.clock.time() - age, self.clock.synced(), values, heard)

    def occupied(self) -> Mapping[str, Optional[bool]]:
        """Presence group -> someone is there: the live count while the scan listens, the
        last published one through a short outage, None when not known."""
        counts = self.presence.occupancy()
        out: dict[str, Optional[bool]] = {}
        for name, count in counts.items():
            held = self._held.get(name)
            if not self._presence_up[name]:
                out[name] = None
            elif self._listening.get(name):
                out[name] = count > 0
            else:
                out[name] = None if held is None else held > 0
        return out

    def reading(self, device: str, quantity: str) -> Optional[tuple[float, float]]:
        """The latest value of a BLE device's quantity and the monotonic time it was heard."""
        d = self.devices.by_name.get(device)
        if d is None or quantity not in d.last_values:
            return None
        return float(d.last_values[quantity]), d.last_good

    def health(self) -> dict[str, Any]:
        s = self.scanner.stats()
        up = self.devices.up()
        down = sum(1 for d in self.devices.devices.values() if d.available is False)
        return {
            **{k: v for k, v in s.as_dict().items() if k != "last_error"},
            "last_error": s.last_error,
            "devices_up": up,
            "devices_down": down,
            **{k: v for k, v in self.devices.totals().items() if k != "readings"},
            "occupancy": dict(self.presence.occupancy()),
        }

    def status(self) -> str:
        s = self.scanner.stats()
        scan = s.mode if s.scanning else "not scanning"
        return (f"BLE {self.devices.up()}/{len(self.devices.devices)} up, {scan}, "
                f"{s.restarts} restarts")  # fmt: skip

    def _learn(self, device: str, values: Mapping[str, Any]) -> None:
        """Remembers what a device sends (a number or a binary state) for discovery."""
        known = self.quantities.setdefault(device, {})
        new = {q: "binary" if isinstance(v, bool) else "number" for q, v in values.items()
               if q not in known and isinstance(v, (int, float))}  # fmt: skip
        if not new:
            return
        known.update(new)
        try:
            write_durably(
                self._quantities_file, json.dumps(self.quantities, sort_keys=True).encode()
            )
        except OSError as e:
            log.warning("cannot remember the BLE quantities: %s", e)
        self.on_new_quantities()

    def _load_quantities(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._quantities_file.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        names = set(self.config.names())
        return {
            device: {str(q): kind for q, kind in seen.items() if kind in ("number", "binary")}
            for device, seen in data.items()
            if device in names and isinstance(seen, dict)
        }


def make_service(
    config: BleConfig,
    clock: SystemClock,
    state_dir: Path,
    on_sample: OnSample,
    on_availability: OnAvailability,
    *,
    simulate: bool,
    room: Any = None,
    on_new_quantities: Callable[[], None] = lambda: None,
) -> BleService:
    """The service on the real adapter, or on the simulated air around `room` (the simulated
    room's model, drivers.sim.room.RoomModel) with --simulate."""
    backend = reset = None
    if simulate:
        from drivers.sim.ble import radio_for
        from drivers.sim.room import RoomModel

        radio = radio_for(config, room if room is not None else RoomModel())
        backend, reset = radio.backend(), radio.reset_adapter
    return BleService(config, clock, state_dir, on_sample, on_availability, backend=backend,
                      reset_adapter=reset, on_new_quantities=on_new_quantities)  # fmt: skip

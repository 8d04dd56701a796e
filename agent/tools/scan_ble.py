"""`roomagent scan-ble`: what advertises nearby, strongest first, decoded where we know the
format, so an installer can find the MAC address of the sensor in their hand (hold it next to
the Pi: it comes out on top).

It scans actively (names come in scan responses) with the agent's own scanner, for a few
seconds, keeping each address's newest advertisement; with a config, configured devices are
named, decrypted with their keys, and those not heard are listed (exit status 1, as scan-i2c
does for a chip that does not answer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from agent.sensing.ble.scanner import SharedScanner


@dataclass(frozen=True)
class Seen:
    address: str
    rssi: int
    name: Optional[str]
    format: Optional[str]  # the decoder that matched, or None
    values: Mapping[str, Any]
    problem: Optional[str]  # why it could not be decoded (e.g. encrypted without its key)
    configured: Optional[str]  # the config's name for it


async def scan(
    seconds: float,
    *,
    adapter: Optional[str] = None,
    keys: Optional[Mapping[str, bytes]] = None,
    names: Optional[Mapping[str, str]] = None,
    backend: Any = None,
) -> tuple[list[Seen], Any]:
    """Everything heard in `seconds`, strongest first, and the scanner's stats."""
    from agent.sensing.ble.scanner import START_TIMEOUT
    from drivers.ble import BLEDecodeError, decode_frame

    keys, names = keys or {}, names or {}
    scanner = SharedScanner(adapter=adapter, scanning_mode="active", stall_timeout=0,
                            reset_after=0, backend=backend)  # fmt: skip
    task = asyncio.ensure_future(scanner.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while True:
            st = scanner.stats()
            if st.errors and not st.scanning and not st.adverts:
                break  # it could not start (no BlueZ, no adapter): no use waiting the time out
            # Not cancelled mid-start: bleak's D-Bus start, cancelled early, could hang.
            settled = st.scanning or st.errors or loop.time() > deadline + START_TIMEOUT
            if deadline - loop.time() <= 0 and settled:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    found = []
    for address, (adv, _) in scanner.latest.items():
        fmt, values, problem = None, {}, None
        try:
            frame = decode_frame(address, adv, keys.get(address))
        except BLEDecodeError as e:
            problem = str(e)
            fmt = getattr(e, "format", None)
        else:
            if frame is not None:
                fmt, values = frame.format, dict(frame.values)
        found.append(Seen(address, adv.rssi, adv.local_name, fmt, values, problem,
                          names.get(address)))  # fmt: skip
    found.sort(key=lambda s: (-s.rssi, s.address))
    return found, scanner.stats()


def report(found: list[Seen], missing: list[tuple[str, str]], stats: Any, seconds: float) -> str:
    from drivers.ble.units import unit_of

    lines = [f"{len(found)} BLE devices heard in {seconds:g} s ({stats.adverts} advertisements)"]
    if not stats.starts or (stats.errors and not stats.adverts):
        lines.append(f"  the scan did not run: {stats.last_error or 'unknown error'}; "
                     "without Bluetooth here, try roomagent scan-ble --simulate")  # fmt: skip
    lines.append(f"  {'address':<17}  {'RSSI':>4}  {'name':<16}  {'format':<13}  values")
    for s in found:
        if s.values:
            shown = "  ".join(f"{k}={_show(v)}{unit_of(k) or ''}" for k, v in s.values.items())
        else:
            shown = s.problem or ""
        if s.configured:
            shown = f"[{s.configured}]  {shown}"
        name = (s.name or "")[:16]
        lines.append(f"  {s.address:<17}  {s.rssi:>4}  {name:<16}  {s.format or '-':<13}  {shown}")
    for name, address in missing:
        lines.append(f"  not heard: {name} ({address}), configured in the node's config")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)

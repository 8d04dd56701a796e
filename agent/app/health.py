"""What the node says about itself: the health document (`<base>/state/agent`, cmd/stats),
the line systemd shows in `systemctl status`, and the periodic energy report (docs/mqtt.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from agent.mqtt.contract import iso_utc
from agent.sensing.runner import slow_devices

if TYPE_CHECKING:
    from agent.control.room import RoomController
    from agent.mqtt.link import MqttLink
    from agent.pipeline.forwarder import Forwarder
    from agent.pipeline.staged_outbox import Buffer
    from agent.sensing.runner import DeviceRunner


def health_body(
    now: float, uptime: float, clock_synced: bool, link: MqttLink, outbox: Buffer,
    forwarder: Forwarder, runners: Sequence[DeviceRunner], config: Optional[dict[str, Any]],
    ble: Any,
) -> dict[str, Any]:  # fmt: skip
    """`config`: the config manager's health, None while it starts."""
    stats = outbox.stats()
    return {
        "ts": iso_utc(now),
        "uptime_s": round(uptime),
        "connected": link.connected,
        "clock_synced": clock_synced,
        "backlog": stats.rows,
        "backlog_bytes": stats.bytes,
        "dropped": stats.dropped,
        "buffer_recovered_from": stats.recovered_from,
        "rejected": forwarder.rejected,
        "delivered": forwarder.delivered,
        "devices_up": sum(1 for r in runners if r.available),
        "devices_down": sum(1 for r in runners if r.available is False),
        "config": config,
        **({"ble": ble.health()} if ble is not None else {}),
    }


def status_line(
    link: Optional[MqttLink], outbox: Optional[Buffer], runners: Sequence[DeviceRunner], ble: Any
) -> str:
    """One line for `systemctl status`: connected, backlog, devices."""
    up = sum(1 for r in runners if r.available)
    connected = "connected" if link is not None and link.connected else "broker unreachable"
    backlog = outbox.stats().rows if outbox is not None else 0
    scan = f"; {ble.status()}" if ble is not None else ""
    slow = slow_devices(runners)
    return f"{connected}; backlog {backlog}; devices {up}/{len(runners)} up{scan}{slow}"


def energy_report(
    now: float, room: RoomController, grid_kg_per_kwh: float,
    metered: Optional[Mapping[str, float]], grid_g_per_kwh: float,
) -> dict[str, Any]:  # fmt: skip
    """`<base>/energy`: the relays' estimate and, where the room has meters, what they
    measured (`metered`: kWh by meter)."""
    kwh = room.energy_kwh()
    total = sum(kwh.values())
    body = {
        "ts": iso_utc(now),
        "relays_kwh": {name: round(v, 4) for name, v in kwh.items()},
        "total_kwh": round(total, 4),
        "co2e_kg": round(total * grid_kg_per_kwh, 4),
    }
    if metered is not None:  # the room's meters: measured, beside the estimate
        measured = sum(metered.values())
        body["metered_kwh"] = round(measured, 4)
        body["metered_co2e_kg"] = round(measured * grid_g_per_kwh / 1000, 4)
    return body

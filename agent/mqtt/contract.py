"""The MQTT topic and payload contract: the product's public API, documented in docs/mqtt.md.

Change it only additively (new keys, new topics) without bumping CONTRACT_VERSION.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

from drivers.quantities import QUANTITIES

CONTRACT_VERSION = 2


@dataclass(frozen=True)
class Topics:
    base: str

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def info(self) -> str:
        return f"{self.base}/info"

    def telemetry(self, device: str) -> str:
        return f"{self.base}/telemetry/{device}"

    def state(self, entity: str) -> str:
        return f"{self.base}/state/{entity}"

    @property
    def commands(self) -> str:
        return f"{self.base}/cmd/#"

    @property
    def command_response(self) -> str:
        return f"{self.base}/cmd/response"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    def relay(self, name: str) -> str:
        return f"{self.base}/relay/{name}"

    def control(self, kind: str, name: str) -> str:
        """The retained state of one input, zone, light group or ventilation unit
        (agent.control.types.Published)."""
        return f"{self.base}/{kind}/{name}"

    @property
    def energy(self) -> str:
        return f"{self.base}/energy"

    @property
    def energy_state(self) -> str:
        """The energy counters, retained (from what is saved: they never go down)."""
        return f"{self.base}/counters/energy"


def iso_utc(timestamp: float) -> str:
    """RFC 3339 UTC with milliseconds: 2026-11-24T17:32:06.123Z."""
    dt = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {q: round(v, QUANTITIES[q].decimals) for q, v in values.items()}


def _dumps(obj: Any) -> bytes:
    return dumps(obj)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON. A string holding a lone surrogate (a command's `"\\ud800"`, valid
    JSON) has no UTF-8 form: such a message is escaped as ASCII instead of failing, so the
    answer or the event that quotes it is still sent, and reads back as the same string."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def telemetry_payload(
    timestamp: float,
    seq: int,
    clock_synced: bool,
    values: Mapping[str, float],
    aggregate: Optional[Mapping[str, Any]] = None,
) -> bytes:
    body = {"ts": iso_utc(timestamp), "seq": seq, "clock_synced": clock_synced, "values": values}
    if aggregate is not None:  # values summarise several samples (agent.pipeline.reporting)
        body["aggregate"] = aggregate
    return _dumps(body)


def corrected_telemetry(payload: bytes, timestamp: float) -> bytes:
    """A reading taken before NTP set the clock, re-stamped once it had: the true time, marked
    so a consumer can tell it from one stamped by a synchronised clock at the time."""
    body = json.loads(payload)
    body.update(ts=iso_utc(timestamp), clock_synced=True, ts_corrected=True)
    return _dumps(body)


def device_state_payload(
    timestamp: Optional[float],
    available: bool,
    values: Mapping[str, float],
    error: Optional[str] = None,
    sample_interval: Optional[float] = None,
    cadence: Optional[str] = None,
) -> bytes:
    """`sample_interval`: the median seconds between the device's recent samples (what it
    achieves, against its configured interval); `cadence`: why a device whose algorithm needs a
    fixed cadence is not getting it."""
    body: dict[str, Any] = {
        "ts": iso_utc(timestamp) if timestamp is not None else None,
        "available": available,
        "values": dict(values),
    }
    if error:
        body["error"] = error
    if sample_interval is not None:
        body["sample_interval"] = sample_interval
    if cadence:
        body["cadence"] = cadence
    return _dumps(body)


def json_payload(body: Mapping[str, Any]) -> bytes:
    return _dumps(dict(body))

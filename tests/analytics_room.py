"""A room with a heated zone, a session calendar and optimum start, for the analytics tests:
its config loaded (or its errors), and an Analytics that has learned from days of warm-ups."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.analytics.service import Analytics
from agent.config import schema as config
from agent.config.analytics import OptimumStartConfig
from agent.config.errors import ConfigError, ConfigErrors
from tests.conftest import node_config

ZONE = """
[[relays]]
name = "heat"
pin = 22
kind = "heat"
rated_power_w = 1500
[[inputs]]
name = "window"
pin = 17
kind = "contact"
[[zones]]
name = "room"
sensor = "climate"
heat = ["heat"]
comfort = 21.0
eco = 17.0
boost = 22.0
[room]
volume_m3 = 60
temperature_sensor = "climate"
preheat_minutes = 90
"""


def load(tmp_path: Path, extra: str) -> config.Config:
    path = tmp_path / "node.toml"
    path.write_text(node_config(1883, tmp_path / "state", devices=_climate() + ZONE + extra))
    return config.load(path)


def _climate() -> str:
    return '[[devices]]\nname = "climate"\ndriver = "bme280"\ninterval = 1\n'


def errors_of(tmp_path: Path, extra: str) -> str:
    with pytest.raises((ConfigError, ConfigErrors)) as e:
        load(tmp_path, extra)
    return str(e.value)


LEARNING = OptimumStartConfig(fixed_lead_minutes=90.0)
HOUR = 3600.0
T0 = 1_767_600_000.0  # a Monday, 08:00 UTC (2026-01-05)


def analytics(state: Path) -> Analytics:
    return Analytics(None, LEARNING, {"heat": "heat"}, {"room": (("heat",), 2.0)}, state)


def warm_ups(a: Analytics, days: int) -> None:
    """Days with one session at 10:00: the room at 17 °C warms at 3 K/h (outdoor 2 °C) once
    comfort begins, holds 21 °C in the session, and cools back overnight."""
    for day in range(days):
        start = T0 + day * 86400 + 2 * HOUR
        temp, t = 17.0, start - 6 * HOUR
        while t < start + 2 * HOUR:
            heating = a.zones["room"].mode == "comfort" and temp < 21.25
            current = (start, start + 2 * HOUR) if t >= start else None
            upcoming = None if t >= start else start
            a.plan(t, current, upcoming, {"room": (21.0, temp, [heating])}, 2.0)
            temp = min(21.3, temp + 3.0 / 60) if heating else max(17.0, temp - 0.02)
            t += 60.0
        for t2 in range(int(start + 2 * HOUR), int(start + 16 * HOUR), 600):
            a.plan(float(t2), None, None, {"room": (21.0, 17.0, [False])}, 2.0)

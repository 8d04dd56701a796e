"""Which relay switches are written to the card at once (issue 19's write budget): those whose
saved state a restart reads to keep a rule (power_on "restore", min_off, a dead time longer
than a restart takes); the others go with the next write, at most ENERGY_FLUSH_INTERVAL later,
and the energy counters publish only what was written. Real state files, a fake clock, gpiozero's
MockFactory."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from agent.common.state_store import StateStore
from agent.control.relays import ENERGY_FLUSH_INTERVAL, RESTART_GAP, RelayBank, RelayConfig
from tests.clocks import FakeClock


def on_card(path: Path, name: str) -> dict:
    """The relay's record as a restarted agent would read it from the file."""
    record: dict = StateStore(path).get(f"relay.{name}", {})
    return record


def bank(path: Path, configs: list[RelayConfig]) -> tuple[RelayBank, FakeClock]:
    clock = FakeClock()
    return RelayBank(configs, MockFactory(), clock, StateStore(path)), clock


def test_switches_a_restart_needs_are_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    comp = RelayConfig("comp", 17, kind="cool", min_off=180)
    boiler = RelayConfig("boiler", 27, kind="heat", power_on="restore")
    b, _ = bank(path, [comp, boiler])
    b.request("comp", True, "warm")
    assert on_card(path, "comp")["on"] is True
    b.request("boiler", True, "cold")
    assert on_card(path, "boiler")["on"] is True
    b.request("comp", False, "cool enough")
    assert on_card(path, "comp")["on"] is False and on_card(path, "comp")["last_off"] is not None
    b.close()


def test_a_lights_switch_waits_for_the_next_write_at_most_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    light = RelayConfig("light", 17, kind="light", rated_power_w=100)
    b, clock = bank(path, [light])
    b.request("light", True, "occupied")
    assert on_card(path, "light")["on"] is False  # not yet: no rule reads it at start
    for _ in range(int(ENERGY_FLUSH_INTERVAL) - 1):
        clock.advance(1)
        b.tick()
    assert on_card(path, "light")["on"] is False
    clock.advance(1)
    b.tick()
    assert on_card(path, "light")["on"] is True
    # Switched off: nothing metered runs, but the change is still written within the interval.
    b.request("light", False, "vacant")
    clock.advance(ENERGY_FLUSH_INTERVAL)
    b.tick()
    assert on_card(path, "light")["on"] is False
    b.close()


def test_the_energy_counter_publishes_only_what_is_on_the_card(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    light = RelayConfig("light", 17, kind="light", rated_power_w=3600)  # 1 Wh a second
    b, clock = bank(path, [light])
    b.request("light", True, "occupied")
    clock.advance(30)
    b.request("light", False, "vacant")  # 30 Wh switched, not yet written
    assert b.energy_wh("light") == 30.0
    assert b.saved_energy_wh("light") == 0.0 == on_card(path, "light")["energy_wh"]
    clock.advance(ENERGY_FLUSH_INTERVAL)
    b.tick()
    assert b.saved_energy_wh("light") == 30.0 == on_card(path, "light")["energy_wh"]
    b.close()


def test_a_failed_write_is_not_published(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    comp = RelayConfig("comp", 17, kind="cool", rated_power_w=3600, min_off=10)
    b, clock = bank(path, [comp])
    b.request("comp", True, "warm")
    clock.advance(20)
    path.chmod(0o400)
    store = b._store
    assert isinstance(store, StateStore)
    store._file.close()  # the next write opens the file again, and is refused
    try:
        import os

        if os.geteuid() == 0:  # root writes through a read-only mode: make the write fail
            path.unlink()
            path.mkdir()
        b.request("comp", False, "cool enough")  # 20 Wh: written at once, but the write fails
        assert b.energy_wh("comp") == 20.0
        assert b.saved_energy_wh("comp") == 0.0
    finally:
        if path.is_dir():
            path.rmdir()
        else:
            path.chmod(0o600)
    b.close()


def test_a_dead_time_longer_than_a_restart_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    fans = [
        RelayConfig("low", 17, interlock="fan", interlock_dead_time=RESTART_GAP),
        RelayConfig("high", 27, interlock="fan", interlock_dead_time=RESTART_GAP),
    ]
    hvac = [
        RelayConfig("heat", 22, interlock="hvac", interlock_dead_time=RESTART_GAP + 1),
        RelayConfig("cool", 23, interlock="hvac"),  # the group's longest dead time counts
    ]
    b, _ = bank(path, fans + hvac)
    b.request("low", True, "co2")
    assert on_card(path, "low")["on"] is False  # the restart itself keeps a 5 s dead time
    b.request("cool", True, "warm")
    assert on_card(path, "cool")["on"] is True
    assert on_card(path, "low")["on"] is True  # one write takes every change along
    b.request("low", False, "co2 low")
    b.close()
    assert on_card(path, "low")["on"] is False  # a clean stop writes everything

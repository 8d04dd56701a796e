"""Pulses, one mechanism in the relay bank: a command's pulse ends by itself, a later command
cancels or replaces it, and a restart honours it (its end is persisted as wall time)."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from agent.common.state_store import StateStore
from agent.control.relays import RelayBank, RelayConfig
from tests.clocks import FakeClock

FAN = RelayConfig("fan", 22, active_high=True, kind="fan", power_on="restore")


def on(factory: MockFactory, cfg: RelayConfig = FAN) -> bool:
    return bool(factory.pin(cfg.pin).state) == cfg.active_high


def ticks(bank: RelayBank, clock: FakeClock, seconds: int) -> list[tuple[str, str]]:
    """Advances a second at a time, as the runtime ticks; the switches made meanwhile."""
    made = []
    for _ in range(seconds):
        clock.advance(1)
        made += [(e.subject, e.state) for e in bank.tick()]
    return made


def bank_on(path: Path, clock: FakeClock, cfg: RelayConfig = FAN) -> tuple[RelayBank, MockFactory]:
    factory = MockFactory()
    return RelayBank([cfg], factory, clock, StateStore(path)), factory


def test_a_commanded_pulse_ends_by_itself(tmp_path: Path) -> None:
    clock = FakeClock()
    bank, factory = bank_on(tmp_path / "s.json", clock)
    bank.request("fan", True, "command p1", pulse=10)
    assert on(factory)
    assert ticks(bank, clock, 9) == [] and on(factory)
    assert ticks(bank, clock, 1) == [("fan", "off")] and not on(factory)


def test_a_later_on_cancels_the_pulse(tmp_path: Path) -> None:
    clock = FakeClock()
    bank, factory = bank_on(tmp_path / "s.json", clock)
    bank.request("fan", True, "command p1", pulse=10)
    clock.advance(3)
    bank.request("fan", True, "command on")
    assert ticks(bank, clock, 60) == [] and on(factory)  # the stale end switches nothing


def test_a_later_pulse_replaces_the_earlier_end(tmp_path: Path) -> None:
    clock = FakeClock()
    bank, factory = bank_on(tmp_path / "s.json", clock)
    bank.request("fan", True, "command p1", pulse=10)
    clock.advance(8)
    bank.request("fan", True, "command p2", pulse=5)  # on already: 5 s from now, 13 s in all
    assert ticks(bank, clock, 4) == [] and on(factory)  # 12 s: past the first pulse's end
    assert ticks(bank, clock, 1) == [("fan", "off")]


def test_off_ends_it_and_a_plain_on_afterwards_has_no_pulse(tmp_path: Path) -> None:
    clock = FakeClock()
    bank, factory = bank_on(tmp_path / "s.json", clock)
    bank.request("fan", True, "command p1", pulse=10)
    clock.advance(2)
    bank.request("fan", False, "command off")
    bank.request("fan", True, "command on")
    assert ticks(bank, clock, 30) == [] and on(factory)


def test_a_pulse_deferred_by_min_off_counts_from_when_it_comes_on(tmp_path: Path) -> None:
    clock = FakeClock()
    pump = RelayConfig("fan", 22, active_high=True, kind="fan", min_off=5)
    bank, factory = bank_on(tmp_path / "s.json", clock, pump)
    bank.request("fan", True, "command on")
    bank.request("fan", False, "command off")
    events = bank.request("fan", True, "command p1", pulse=10)
    assert [e.state for e in events] == ["deferred"] and not on(factory, pump)
    assert ticks(bank, clock, 5) == [("fan", "on")]
    assert ticks(bank, clock, 9) == [] and on(factory, pump)
    assert ticks(bank, clock, 1) == [("fan", "off")]


def test_a_restart_mid_pulse_comes_back_on_and_ends_at_the_same_moment(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.json", FakeClock()
    bank, _ = bank_on(path, clock)
    bank.request("fan", True, "command p1", pulse=60)
    clock.advance(20)
    bank.close()  # a restart: 20 s of the pulse gone, 15 s down
    clock.advance(15)
    again, factory = bank_on(path, clock)
    assert on(factory) and [e.state for e in again.startup_events] == ["on"]
    assert ticks(again, clock, 24) == [] and on(factory)  # 59 s since the pulse began
    assert ticks(again, clock, 1) == [("fan", "off")]


def test_a_restart_after_the_pulse_ended_comes_back_off(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.json", FakeClock()
    bank, _ = bank_on(path, clock)
    bank.request("fan", True, "command p1", pulse=10)
    clock.advance(2)
    bank.close()
    clock.advance(30)  # down past the pulse's end
    again, factory = bank_on(path, clock)
    assert not on(factory)
    assert not any(s.state for s in factory.pin(FAN.pin).states)  # not on for an instant
    [event] = again.startup_events
    assert event.state == "off" and "pulse of 10 s ended while the agent was down" in event.reason


def test_a_wall_clock_that_went_back_never_lengthens_a_pulse(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.json", FakeClock()
    bank, _ = bank_on(path, clock)
    bank.request("fan", True, "command p1", pulse=10)
    bank.close()
    behind = FakeClock(wall=clock.time() - 3600)  # the wall clock an hour back
    again, factory = bank_on(path, behind)
    assert on(factory)
    assert ticks(again, behind, 9) == [] and on(factory)
    assert ticks(again, behind, 1) == [("fan", "off")]  # at most the pulse's own length


def test_a_reconfiguration_keeps_a_commanded_pulse(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.json", FakeClock()
    factory = MockFactory()
    bank = RelayBank([FAN], factory, clock, StateStore(path))
    bank.request("fan", True, "command p1", pulse=30)
    clock.advance(5)
    bank2 = RelayBank([FAN], factory, clock, StateStore(path), previous=bank)
    assert ticks(bank2, clock, 24) == [] and on(factory)
    assert ticks(bank2, clock, 1) == [("fan", "off")]


def test_the_configured_pulse_survives_a_restart_too(tmp_path: Path) -> None:
    path, clock = tmp_path / "s.json", FakeClock()
    door = RelayConfig("door", 17, pulse=8, power_on="restore")
    bank, _ = bank_on(path, clock, door)
    bank.request("door", True, "badge")
    clock.advance(3)
    bank.close()
    clock.advance(2)
    again, factory = bank_on(path, clock, door)
    assert on(factory, door)
    assert ticks(again, clock, 2) == [] and ticks(again, clock, 1) == [("door", "off")]

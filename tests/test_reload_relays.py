"""A new config applied to running relays: what stays on its pin is not touched, what leaves is
switched off and released, and the interlocks of the new config hold from the first moment.
Judged by gpiozero's mock pins, whose state history shows any glitch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory

from agent.common.state_store import MemoryStore, StateStore
from agent.config import schema as config
from agent.control.relays import RelayBank, RelayConfig
from agent.control.room import RoomController
from tests.clocks import FakeClock

HEATER = RelayConfig("heater", 22, active_high=True, kind="heat", min_on=300)
COOLER = RelayConfig("cooler", 23, active_high=True, kind="cool")
FAN = RelayConfig("fan", 27, active_high=True, kind="fan")


def level(factory: MockFactory, pin: int) -> int:
    return int(factory.pin(pin).state)


def history(factory: MockFactory, pin: int) -> int:
    """How many level changes the pin has seen (MockPin records each one)."""
    return len(factory.pin(pin).states)


def running(*configs: RelayConfig) -> tuple[RelayBank, MockFactory, FakeClock, MemoryStore]:
    factory, clock, store = MockFactory(), FakeClock(), MemoryStore()
    bank = RelayBank(list(configs), factory, clock, store)
    return bank, factory, clock, store


def test_a_relay_kept_on_its_pin_is_not_touched_and_keeps_its_timers() -> None:
    bank, factory, clock, store = running(HEATER, FAN)
    bank.request("heater", True, "cold")
    clock.advance(100)
    changes = history(factory, 22)
    longer = replace(HEATER, min_on=600, rated_power_w=2000)
    new = RelayBank([longer, FAN], factory, clock, store, previous=bank)
    assert new.startup_events == []  # nothing switched, nothing deferred
    assert new.state("heater") and level(factory, 22) == 1
    assert history(factory, 22) == changes  # not even a glitch through off
    # min_on counts from the switch-on 100 s ago, with the new config's 600 s.
    events = new.request("heater", False, "warm")
    assert [e.state for e in events] == ["deferred"] and "min_on: 600 s" in events[0].reason
    clock.advance(500)
    assert [e.state for e in new.tick()] == ["off"]
    with pytest.raises(RuntimeError):  # the old bank handed its relays over and is closed
        bank.request("fan", True, "x")
    new.close()


def test_a_relay_the_new_config_drops_is_switched_off_and_its_pin_released() -> None:
    bank, factory, clock, store = running(HEATER, FAN)
    bank.request("fan", True, "stale air")
    new = RelayBank([HEATER], factory, clock, store, previous=bank)
    assert [(e.subject, e.state) for e in new.startup_events] == [("fan", "off")]
    assert "reconfigured" in new.startup_events[0].reason
    assert level(factory, 27) == 0  # off on an active-high relay, before release
    # Released: the pin can be claimed again by anything else.
    OutputDevice(27, pin_factory=factory).close()
    new.close()


def test_a_relay_moved_to_another_pin_leaves_the_old_one_off_and_starts_at_power_on() -> None:
    bank, factory, clock, store = running(FAN)
    bank.request("fan", True, "stale air")
    moved = replace(FAN, pin=5)
    new = RelayBank([moved], factory, clock, store, previous=bank)
    assert level(factory, 27) == 0
    assert not new.state("fan") and level(factory, 5) == 0  # power_on "off"
    new.close()


def test_a_pin_freed_by_a_dropped_relay_can_be_a_new_relays_pin() -> None:
    bank, factory, clock, store = running(FAN)
    lamp = RelayConfig("lamp", 27, active_high=True, kind="light", power_on="on")
    new = RelayBank([lamp], factory, clock, store, previous=bank)
    assert new.state("lamp") and level(factory, 27) == 1
    new.close()


def test_the_new_configs_interlock_holds_at_once() -> None:
    bank, factory, clock, store = running(HEATER, COOLER)
    bank.request("heater", True, "cold")
    bank.request("cooler", True, "a test rig: no interlock yet")
    assert level(factory, 22) == level(factory, 23) == 1
    grouped = [replace(HEATER, interlock="hvac"), replace(COOLER, interlock="hvac")]
    new = RelayBank(grouped, factory, clock, store, previous=bank)
    # The heater's min_on (300 s, 0 s elapsed) does not hold the interlock back.
    assert [(e.subject, e.state) for e in new.startup_events] == [("cooler", "off")]
    assert "interlock hvac" in new.startup_events[0].reason
    assert level(factory, 22) == 1 and level(factory, 23) == 0
    new.close()


def test_a_new_member_that_powers_on_is_refused_while_a_kept_member_is_on() -> None:
    bank, factory, clock, store = running(replace(HEATER, interlock="hvac"))
    bank.request("heater", True, "cold")
    eager = replace(COOLER, interlock="hvac", power_on="on")
    new = RelayBank([replace(HEATER, interlock="hvac"), eager], factory, clock, store,
                    previous=bank)  # fmt: skip
    assert [(e.subject, e.state) for e in new.startup_events] == [("cooler", "refused")]
    assert level(factory, 23) == 0 and level(factory, 22) == 1
    new.close()


def test_when_a_new_pin_cannot_be_claimed_the_old_bank_carries_on_untouched() -> None:
    bank, factory, clock, store = running(HEATER, FAN)
    bank.request("heater", True, "cold")
    squatter = OutputDevice(6, pin_factory=factory)  # another program holds GPIO6
    with pytest.raises(Exception, match="6"):
        RelayBank([HEATER, replace(FAN, pin=6)], factory, clock, store, previous=bank)
    # Nothing of the old bank was touched: the fan was not retired, the heater never moved.
    assert bank.state("heater") and level(factory, 22) == 1
    assert bank.request("heater", False, "warm")[0].state == "deferred"  # min_on still counts
    assert [e.state for e in bank.request("fan", True, "stale air")] == ["on"]
    assert level(factory, 27) == 1
    squatter.close()
    bank.close()


def test_a_pulse_relay_that_is_on_ends_by_the_new_configs_pulse() -> None:
    bell = RelayConfig("bell", 5, active_high=True, pulse=10)
    bank, factory, clock, store = running(bell)
    bank.request("bell", True, "ring")
    clock.advance(2)
    shorter = RelayBank([replace(bell, pulse=4)], factory, clock, store, previous=bank)
    clock.advance(1)
    assert shorter.tick() == [] and shorter.state("bell")  # 3 s since on, pulse now 4 s
    clock.advance(1.5)
    assert [e.state for e in shorter.tick()] == ["off"]  # 4.5 s: ended by the new pulse
    shorter.request("bell", True, "ring")
    clock.advance(1)
    plain = RelayBank([replace(bell, pulse=None)], factory, clock, store,
                      previous=shorter)  # fmt: skip
    clock.advance(60)
    assert plain.tick() == [] and plain.state("bell")  # no pulse any more: stays on
    plain.close()


ROOM = """
[node]
id = "r"
[[devices]]
name = "climate"
driver = "bme280"
interval = 5
[[relays]]
name = "heater"
pin = 22
active_high = true
kind = "heat"
[[relays]]
name = "lamp"
pin = 23
active_high = true
kind = "light"
[[inputs]]
name = "door"
pin = 4
kind = "contact"
"""


def room_config(tmp_path: Path, extra: str = "") -> Any:
    return config.loads(ROOM + extra, "room.toml", tmp_path).control


def test_a_room_whose_new_input_pin_is_busy_carries_on_as_it_was(tmp_path: Path) -> None:
    factory, clock = MockFactory(), FakeClock()
    store = StateStore(tmp_path / "control.json")
    room = RoomController(room_config(tmp_path), factory, clock, store, lambda d, q: None)
    room.relays.request("lamp", True, "test")
    squatter = OutputDevice(6, pin_factory=factory)
    extra = '[[inputs]]\nname = "window"\npin = 6\nkind = "contact"\n'
    with pytest.raises(Exception, match="6"):
        RoomController(room_config(tmp_path, extra), factory, clock, store, lambda d, q: None,
                       previous=room)  # fmt: skip
    # The old room still runs: its relays untouched, its input bank reopened.
    assert room.relays.state("lamp") and level(factory, 23) == 1
    factory.pin(4).drive_low()
    assert any(e.kind == "input" and e.subject == "door" for e in room.tick() + room.tick())
    squatter.close()
    room.close()

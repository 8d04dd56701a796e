"""The relay bank, judged by the levels on gpiozero's mock pins (active-low inverts)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import pytest
from gpiozero.pins.mock import MockFactory, MockPin
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from agent.common.state_store import MemoryStore, StateStore
from agent.config.relays import RelayConfig, validate_relays
from agent.control.relays import RelayBank
from tests.clocks import FakeClock

HOUR = 3600.0


def active(factory: MockFactory, cfg: RelayConfig) -> bool:
    """Is the relay energised, read off its pin: an active-low relay is on when the pin is low."""
    return bool(factory.pin(cfg.pin).state) == cfg.active_high


def bank_of(
    configs: list[RelayConfig],
    clock: Optional[FakeClock] = None,
    store: Any = None,
    factory: Optional[MockFactory] = None,
) -> tuple[RelayBank, MockFactory, FakeClock]:
    factory = factory or MockFactory()
    clock = clock or FakeClock()
    return RelayBank(configs, factory, clock, store or MemoryStore()), factory, clock


# Levels and power-on


def test_active_low_and_active_high_levels() -> None:
    low = RelayConfig("light", 17)  # active-low by default
    high = RelayConfig("fan", 27, active_high=True, kind="fan")
    bank, factory, _ = bank_of([low, high])
    assert factory.pin(17).state == 1  # off: an active-low input is held high
    assert factory.pin(27).state == 0
    bank.request("light", True, "test")
    bank.request("fan", True, "test")
    assert factory.pin(17).state == 0
    assert factory.pin(27).state == 1
    bank.request("light", False, "test")
    assert factory.pin(17).state == 1
    bank.close()


def test_power_on_off_and_on_never_pass_through_the_other_level() -> None:
    off = RelayConfig("a", 17, active_high=True, power_on="off")
    on = RelayConfig("b", 27, active_high=True, power_on="on")
    bank, factory, _ = bank_of([off, on])
    assert factory.pin(17).state == 0 and factory.pin(27).state == 1
    assert not any(s.state for s in factory.pin(17).states)  # never high, not for an instant
    assert [s.state for s in factory.pin(27).states] == [False, True]  # input, then straight on
    assert [(e.subject, e.state) for e in bank.startup_events] == [("b", "on")]
    bank.close()


def test_restore_across_a_new_bank_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    configs = [
        RelayConfig("heat", 17, kind="heat", power_on="restore"),
        RelayConfig("light", 27, kind="light", power_on="restore"),
        RelayConfig("fan", 22, kind="fan", power_on="off"),
    ]
    bank, _, clock = bank_of(configs, store=StateStore(path))
    bank.request("heat", True, "cold")
    bank.request("fan", True, "stuffy")
    bank.close()

    bank2, factory2, _ = bank_of(configs, clock=clock, store=StateStore(path))
    assert active(factory2, configs[0])  # restored on
    assert not active(factory2, configs[1])  # restored off
    assert not active(factory2, configs[2])  # power_on off, whatever it was
    bank2.close()


def test_restore_never_puts_two_interlocked_relays_on(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    heat = RelayConfig("heat", 17, kind="heat", power_on="restore", interlock="hvac")
    cool = RelayConfig("cool", 27, kind="cool", power_on="restore", interlock="hvac")
    on = {"on": True, "last_on": None, "last_off": None, "energy_wh": 0.0}
    path.write_text(json.dumps({"relay.heat": on, "relay.cool": on}))  # as if edited by hand
    bank, factory, _ = bank_of([heat, cool], store=StateStore(path))
    assert active(factory, heat) and not active(factory, cool)  # the first in the list wins
    assert [(e.subject, e.state) for e in bank.startup_events] == [("heat", "on"), ("cool", "off")]
    assert "interlock hvac" in bank.startup_events[1].reason
    bank.close()


def test_close_releases_the_pins_without_switching_them() -> None:
    configs = [RelayConfig("a", 17), RelayConfig("b", 27, active_high=True)]
    bank, factory, _ = bank_of(configs)
    bank.request("a", True, "test")
    bank.request("b", True, "test")
    before = [list(factory.pin(n).states) for n in (17, 27)]
    bank.close()
    assert [list(factory.pin(n).states) for n in (17, 27)] == before
    assert factory.pin(17).state == 0 and factory.pin(27).state == 1


# The rules


def test_pulse_ends_by_itself_on_tick() -> None:
    door = RelayConfig("door", 17, pulse=5.0)
    bank, factory, clock = bank_of([door])
    bank.request("door", True, "badge")
    for _ in range(4):
        clock.advance(1)
        bank.tick()
        assert active(factory, door)
    clock.advance(1)  # 5 s since it came on
    events = bank.tick()
    assert not active(factory, door)
    assert [(e.subject, e.state) for e in events] == [("door", "off")]
    assert "pulse" in events[0].reason
    bank.close()


def test_interlock_switches_the_other_off_at_once_and_waits_the_dead_time() -> None:
    heat = RelayConfig("heat", 17, kind="heat", interlock="hvac", interlock_dead_time=10)
    cool = RelayConfig("cool", 27, kind="cool", interlock="hvac", interlock_dead_time=10)
    bank, factory, clock = bank_of([heat, cool])
    bank.request("cool", True, "too warm")
    assert active(factory, cool)
    events = bank.request("heat", True, "too cold")
    assert not active(factory, cool) and not active(factory, heat)
    assert [(e.subject, e.state) for e in events] == [("cool", "off"), ("heat", "deferred")]
    assert "dead time" in events[1].reason
    clock.advance(9)
    assert bank.tick() == [] and not active(factory, heat)
    clock.advance(1)
    assert [(e.subject, e.state) for e in bank.tick()] == [("heat", "on")]
    assert active(factory, heat) and not active(factory, cool)
    bank.close()


def test_interlock_waits_for_the_running_members_min_on() -> None:
    heat = RelayConfig("heat", 17, kind="heat", interlock="hvac", interlock_dead_time=10)
    cool = RelayConfig("cool", 27, kind="cool", interlock="hvac", min_on=300)
    bank, factory, clock = bank_of([heat, cool])
    bank.request("cool", True, "too warm")
    clock.advance(100)
    events = bank.request("heat", True, "too cold")
    assert [(e.subject, e.state) for e in events] == [("heat", "deferred")]
    assert "min_on" in events[0].reason
    clock.advance(199)
    bank.tick()
    assert active(factory, cool) and not active(factory, heat)
    clock.advance(1)  # cool's 300 s are up: off now, heat 10 s later
    bank.tick()
    assert not active(factory, cool) and not active(factory, heat)
    clock.advance(10)
    bank.tick()
    assert active(factory, heat)
    bank.close()


def test_the_latest_request_in_a_group_wins() -> None:
    heat = RelayConfig("heat", 17, kind="heat", interlock="hvac", interlock_dead_time=10)
    cool = RelayConfig("cool", 27, kind="cool", interlock="hvac")
    bank, factory, clock = bank_of([heat, cool])
    bank.request("cool", True, "too warm")
    bank.request("heat", True, "too cold")  # cool off, heat waiting
    clock.advance(5)
    events = bank.request("cool", True, "too warm again")
    assert ("heat", "cancelled") in [(e.subject, e.state) for e in events]
    clock.advance(60)
    bank.tick()
    assert active(factory, cool) and not active(factory, heat)
    bank.close()


def test_min_on_defers_an_off_and_a_new_request_replaces_it() -> None:
    comp = RelayConfig("comp", 17, kind="cool", min_on=120)
    bank, factory, clock = bank_of([comp])
    bank.request("comp", True, "warm")
    clock.advance(60)
    assert [e.state for e in bank.request("comp", False, "cool enough")] == ["deferred"]
    clock.advance(59)
    bank.tick()
    assert active(factory, comp)
    clock.advance(1)  # 120 s on
    bank.tick()
    assert not active(factory, comp)

    bank.request("comp", True, "warm")  # min_off is 0
    clock.advance(10)
    bank.request("comp", False, "cool enough")
    bank.request("comp", True, "warm again")  # replaces the deferred off
    clock.advance(500)
    bank.tick()
    assert active(factory, comp)
    bank.close()


def test_min_off_holds_across_a_power_cut(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    comp = RelayConfig("comp", 17, kind="cool", min_off=180)
    bank, _, clock = bank_of([comp], store=StateStore(path))
    bank.request("comp", True, "warm")
    clock.advance(600)
    bank.request("comp", False, "cool enough")
    clock.advance(10)  # the power fails here: no close(), nothing more written

    rebooted = FakeClock(wall=clock.time(), monotonic=5.0)  # a new boot: monotonic restarts
    bank2, factory2, _ = bank_of([comp], clock=rebooted, store=StateStore(path))
    assert [e.state for e in bank2.request("comp", True, "warm")] == ["deferred"]
    rebooted.advance(169)
    bank2.tick()
    assert not active(factory2, comp)
    rebooted.advance(1)  # 10 + 170 = 180 s since it went off
    bank2.tick()
    assert active(factory2, comp)
    bank2.close()
    bank.close()


def test_power_on_on_waits_out_min_off_too(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    comp = RelayConfig("comp", 17, kind="cool", power_on="on", min_off=180)
    bank, _, clock = bank_of([comp], store=StateStore(path))
    bank.request("comp", False, "cool enough")
    clock.advance(10)  # power cut

    rebooted = FakeClock(wall=clock.time(), monotonic=5.0)
    bank2, factory2, _ = bank_of([comp], clock=rebooted, store=StateStore(path))
    assert not active(factory2, comp)
    assert [e.state for e in bank2.startup_events] == ["deferred"]
    rebooted.advance(169)
    bank2.tick()
    assert not active(factory2, comp)
    rebooted.advance(1)
    bank2.tick()
    assert active(factory2, comp)
    bank2.close()
    bank.close()


def test_min_off_waits_in_full_if_the_wall_clock_went_backwards(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    comp = RelayConfig("comp", 17, kind="cool", min_off=180)
    bank, _, clock = bank_of([comp], store=StateStore(path))
    bank.request("comp", True, "warm")
    bank.request("comp", False, "cool enough")

    rebooted = FakeClock(wall=clock.time() - HOUR, monotonic=5.0)  # an hour "earlier"
    bank2, factory2, _ = bank_of([comp], clock=rebooted, store=StateStore(path))
    bank2.request("comp", True, "warm")
    rebooted.advance(179)
    bank2.tick()
    assert not active(factory2, comp)
    rebooted.advance(1)
    bank2.tick()
    assert active(factory2, comp)
    bank2.close()
    bank.close()


def test_chatter_guard_refuses_with_an_alarm() -> None:
    lamp = RelayConfig("lamp", 17, kind="light", max_switches_per_hour=4)
    bank, factory, clock = bank_of([lamp])
    for on in (True, False, True, False):  # 4 switches: the limit
        bank.request("lamp", on, "flapping input")
        clock.advance(60)
    events = bank.request("lamp", True, "flapping input")
    assert [(e.kind, e.subject, e.state) for e in events] == [("alarm", "lamp", "refused")]
    assert "chatter" in events[0].reason
    assert not active(factory, lamp)
    # Switches at 0, 60, 120 and 180 s; now is 240 s. At 3600 s the first has left the hour
    # (3 remain), which is still too many for an on and its off.
    clock.advance(HOUR - 240)
    assert bank.request("lamp", True, "x")[0].state == "refused"
    clock.advance(60)  # 3660 s: the switch at 60 s has left too, 2 remain
    assert bank.request("lamp", True, "x")[0].state == "on"
    assert active(factory, lamp)
    bank.close()


def test_safe_state_drives_every_pin_to_its_safe_level_but_keeps_the_interlock() -> None:
    heat = RelayConfig("heat", 17, kind="heat", interlock="hvac", interlock_dead_time=20)
    vent = RelayConfig(
        "vent", 27, kind="ventilation", interlock="hvac", safe_state="on", min_off=600
    )
    light = RelayConfig("light", 22, kind="light", active_high=True, min_on=900)
    bank, factory, clock = bank_of([heat, vent, light])
    bank.request("light", True, "occupied")
    bank.request("heat", True, "cold")
    events = bank.safe_state("SIGTERM")
    # Safety wins over the light's min_on; vent must wait heat's dead time (not its min_off).
    assert not active(factory, light) and not active(factory, heat) and not active(factory, vent)
    assert [(e.subject, e.state) for e in events] == [
        ("heat", "off"),
        ("light", "off"),
        ("vent", "deferred"),
    ]
    clock.advance(19)
    bank.tick()
    assert not active(factory, vent)
    clock.advance(1)
    bank.tick()
    assert active(factory, vent) and not active(factory, heat)
    assert factory.pin(27).state == 0 and factory.pin(17).state == 1 and factory.pin(22).state == 0
    bank.close()


# Energy


def test_energy_is_on_time_times_rating_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    heater = RelayConfig("heater", 17, kind="heat", rated_power_w=2000)
    bank, _, clock = bank_of([heater], store=StateStore(path))
    bank.request("heater", True, "cold")
    clock.advance(90 * 60)
    assert bank.energy_wh("heater") == pytest.approx(3000.0)  # 2000 W x 1.5 h
    bank.request("heater", False, "warm")
    clock.advance(HOUR)  # off: nothing more
    assert bank.energy_wh("heater") == pytest.approx(3000.0)
    bank.close()

    bank2, _, _ = bank_of([heater], clock=clock, store=StateStore(path))
    assert bank2.energy_wh("heater") == pytest.approx(3000.0)
    bank2.request("heater", True, "cold")
    clock.advance(30 * 60)
    assert bank2.energy_wh("heater") == pytest.approx(4000.0)  # + 2000 W x 0.5 h
    bank2.close()


def test_energy_of_a_relay_left_on_is_saved_once_a_minute(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    heater = RelayConfig("heater", 17, kind="heat", rated_power_w=2000, power_on="restore")
    bank, _, clock = bank_of([heater], store=StateStore(path))
    bank.request("heater", True, "cold")
    for _ in range(90 * 2 + 1):  # 90.5 min, ticking every 30 s; the last save was at 90 min
        clock.advance(30)
        bank.tick()
    # The power fails: the new bank has what was saved at 90 min, and the heater back on.
    bank2, factory2, _ = bank_of([heater], clock=clock, store=StateStore(path))
    assert bank2.energy_wh("heater") == pytest.approx(3000.0)
    assert active(factory2, heater)
    bank2.close()
    bank.close()


def test_tick_saves_at_most_once_every_five_minutes() -> None:
    store = MemoryStore()
    heater = RelayConfig("heater", 17, rated_power_w=1000)
    bank, _, clock = bank_of([heater], store=store)
    assert store.flushes == 1  # the power-on state
    bank.request("heater", True, "cold")
    # No min_off, no restore: nothing a restart reads from it needs this switch at once
    # (test_relay_sync.py); it is written with the energy, every 5 minutes while it is on.
    assert store.flushes == 1
    for _ in range(1800):
        clock.advance(1)
        bank.tick()
    assert store.flushes == 1 + 6  # at 300, 600, ... 1800 s
    bank.close()


# A corrupt state file


def test_a_corrupt_state_file_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"relay.heat": {"on": tru')
    heat = RelayConfig("heat", 17, kind="heat", power_on="restore")
    light = RelayConfig("light", 27, kind="light", power_on="on")
    with caplog.at_level(logging.WARNING):
        bank, factory, _ = bank_of([heat, light], store=StateStore(path))
    assert not active(factory, heat) and active(factory, light)  # the power-on defaults
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b'{"relay.heat": {"on": tru'
    assert "not valid JSON" in caplog.text
    assert StateStore(path).get("relay.light")["on"] is True  # a fresh, good file
    bank.close()


def test_state_store_round_trip_and_non_object_json(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    store = StateStore(path)
    store.set("k", {"a": [1, 2]})
    assert not path.exists()  # batched until flush
    assert store.flush() and StateStore(path).get("k") == {"a": [1, 2]}
    assert StateStore(path).get("k") == {"a": [1, 2]}
    path.write_text("[1, 2]")
    assert StateStore(path).get("k", "none") == "none"
    assert len(list(tmp_path.glob("s.json.corrupt-*"))) == 1


# Configuration


def test_validate_relays() -> None:
    heat = RelayConfig("heat", 17, kind="heat", interlock="hvac")
    cool = RelayConfig("cool", 27, kind="cool", interlock="hvac")
    validate_relays([heat, cool])  # heat and cool in one group: the normal case
    validate_relays([RelayConfig("alone", 22, interlock="solo")])
    with pytest.raises(ValueError, match="pin 17 is used by both 'heat' and 'lamp'"):
        validate_relays([heat, RelayConfig("lamp", 17)])
    with pytest.raises(ValueError, match="'heat' is used twice"):
        validate_relays([heat, RelayConfig("heat", 22)])
    with pytest.raises(ValueError, match="safe_state"):
        validate_relays(
            [
                heat,
                RelayConfig("x", 22, safe_state="on", interlock="hvac"),
                RelayConfig("y", 23, safe_state="on", interlock="hvac"),
            ]
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_on", -1.0),
        ("min_off", -0.5),
        ("interlock_dead_time", -1.0),
        ("rated_power_w", -10.0),
        ("pulse", 0.0),
        ("pulse", -2.0),
        ("kind", "heater"),
        ("power_on", "maybe"),
        ("max_switches_per_hour", -1),
    ],
)
def test_relay_config_rejects(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        RelayConfig("r", 17, **{field: value})  # type: ignore[arg-type]


# Storms


class WatchedPin(MockPin):
    """Reports every level change, so the interlock is checked between two pins' changes."""

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        watch = getattr(self.factory, "watch", None)
        if changed and watch is not None:
            watch()
        return changed


STORM = [
    RelayConfig(
        "heat",
        17,
        kind="heat",
        interlock="hvac",
        interlock_dead_time=10,
        min_on=30,
        min_off=40,
        max_switches_per_hour=4,
    ),
    RelayConfig(
        "cool",
        27,
        kind="cool",
        active_high=True,
        interlock="hvac",
        interlock_dead_time=30,
        min_on=120,
        min_off=180,
    ),
    RelayConfig(
        "vent", 22, kind="ventilation", interlock="hvac", pulse=90, min_on=20, safe_state="on"
    ),
    RelayConfig("light", 23, kind="light", min_on=5, min_off=5),
]
GROUP = ("heat", "cool", "vent")
DEAD = 30.0  # the longest dead time in the group applies between any two of its members


class Watcher:
    def __init__(self, factory: MockFactory, clock: FakeClock) -> None:
        self.factory, self.clock = factory, clock
        self.op = ""
        self.on = {c.name: active(factory, c) for c in STORM}
        self.since: dict[str, float] = {}  # last change of each relay
        self.switches: dict[str, list[float]] = {c.name: [] for c in STORM}
        self.changes = 0
        factory.watch = self.check

    def check(self) -> None:
        now = self.clock.monotonic()
        assert sum(active(self.factory, c) for c in STORM if c.name in GROUP) <= 1
        for c in STORM:
            on = active(self.factory, c)
            if on == self.on[c.name]:
                continue
            self.changes += 1
            if c.name in self.since and self.op != "safe":  # safety wins over min_on/min_off
                assert now - self.since[c.name] >= (c.min_off if on else c.min_on), c.name
            if on and c.name in GROUP:
                for other in GROUP:
                    if other != c.name and other in self.since and not self.on[other]:
                        assert now - self.since[other] >= DEAD, (c.name, other)
            self.switches[c.name].append(now)
            if c.max_switches_per_hour:
                recent = [t for t in self.switches[c.name] if t > now - HOUR]
                assert len(recent) <= c.max_switches_per_hour
            self.on[c.name], self.since[c.name] = on, now

    def check_pulse(self) -> None:
        vent = STORM[2]
        if active(self.factory, vent):
            assert self.clock.monotonic() - self.since["vent"] < 90


REQUEST = st.tuples(st.just("request"), st.sampled_from([c.name for c in STORM]), st.booleans())
OPS = st.one_of(
    REQUEST,
    REQUEST,  # twice: requests are what make a storm
    st.tuples(st.just("step"), st.integers(0, 400).map(str), st.just(False)),  # advance, tick
    st.tuples(st.just("advance"), st.integers(0, 400).map(str), st.just(False)),
    st.tuples(st.just("tick"), st.just(""), st.just(False)),
    st.tuples(st.just("safe"), st.just(""), st.just(False)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=5, max_size=80))
def test_storms_never_break_the_interlock_or_the_timers(ops: list[tuple[str, str, bool]]) -> None:
    factory = MockFactory(pin_class=WatchedPin)
    bank, _, clock = bank_of(STORM, factory=factory)
    watcher = Watcher(factory, clock)
    for op, arg, on in ops:
        watcher.op = op
        if op == "request":
            bank.request(arg, on, "storm")
        elif op in ("advance", "step"):
            clock.advance(int(arg) / 2)  # half seconds: exact in binary
        if op in ("tick", "step"):
            bank.tick()
            watcher.check_pulse()
        elif op == "safe":
            bank.safe_state("storm")
        watcher.check()
    target(float(watcher.changes), label="pin changes")  # steer towards busier storms
    # Whatever came before, a request is honoured once the rules allow: cool's min_off (180 s)
    # is the longest wait in the group.
    watcher.op = "request"
    bank.request("cool", True, "after the storm")
    for _ in range(181):
        clock.advance(1)
        bank.tick()
    assert active(factory, STORM[1])
    bank.close()

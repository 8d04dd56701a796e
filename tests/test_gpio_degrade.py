"""GPIO that cannot be opened degrades like I2C: that input or relay is unavailable with the
reason, everything else works, relays that can be driven stay safe, and the pin is retried.

The failing pin is gpiozero's MockFactory made to refuse one pin, as lgpio refuses a line that
another program holds ("GPIO busy") or a chip the service may not open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import GPIOPinInUse
from gpiozero.pins.mock import MockFactory

from agent.common.state_store import MemoryStore, StateStore
from agent.config.inputs import InputConfig
from agent.control.inputs import InputBank
from agent.control.relays import RETRY_AFTER, RelayBank, RelayConfig
from agent.pi.pins import NoPins
from tests.clocks import FakeClock


class RefusingFactory(MockFactory):  # type: ignore[misc]
    """A MockFactory whose pins in `refused` cannot be opened, until they are let go."""

    def __init__(self, *refused: int) -> None:
        super().__init__()
        self.refused = set(refused)

    def pin(self, spec: Any, pin_class: Any = None, **kwargs: Any) -> Any:
        if spec in self.refused:
            raise GPIOPinInUse(f"GPIO{spec}: line busy (held by another program)")
        return super().pin(spec, pin_class, **kwargs)


@pytest.fixture
def factory() -> Iterator[RefusingFactory]:
    f = RefusingFactory(6)
    yield f
    f.close()


def active(factory: MockFactory, cfg: RelayConfig) -> bool:
    return bool(factory.pin(cfg.pin).state) == cfg.active_high


HEAT = RelayConfig("heat", 5, kind="heat", interlock="hp", safe_state="off")
COOL = RelayConfig("cool", 6, kind="cool", interlock="hp", power_on="on")
LIGHT = RelayConfig("light", 16, kind="light", safe_state="on")


def test_a_relay_whose_pin_cannot_be_opened_is_unavailable_and_the_rest_works(
    factory: RefusingFactory,
) -> None:
    clock = FakeClock()
    bank = RelayBank([HEAT, COOL, LIGHT], factory, clock, MemoryStore())
    # power_on "on" could not be honoured: no "on" event, an "unavailable" one with the reason
    states = [(e.subject, e.state) for e in bank.startup_events]
    assert states == [("cool", "unavailable")], states
    (reason,) = [e.reason for e in bank.startup_events]
    assert "relay 'cool': cannot drive GPIO 6" in reason and "line busy" in reason
    assert bank.unavailable() == {"cool": reason}
    assert bank.state("cool") is False
    refused = bank.request("cool", True, "zone wants cooling")
    assert [(e.kind, e.state) for e in refused] == [("alarm", "refused")]
    assert "cannot drive GPIO 6" in refused[0].reason
    # The others switch and keep their rules; the safe state drives what can be driven.
    bank.request("heat", True, "zone wants heat")
    assert active(factory, HEAT)
    events = bank.safe_state("agent stopping")
    assert {(e.subject, e.state) for e in events} == {("heat", "off"), ("light", "on")}
    assert not active(factory, HEAT) and active(factory, LIGHT)
    bank.close()


def test_an_unavailable_relay_is_retried_and_comes_back_off(factory: RefusingFactory) -> None:
    clock = FakeClock()
    bank = RelayBank([HEAT, COOL], factory, clock, MemoryStore())
    clock.advance(RETRY_AFTER - 1)
    assert bank.tick() == []
    factory.refused.clear()  # the other program let go of GPIO 6
    clock.advance(1)
    (event,) = bank.tick()
    assert (event.subject, event.state) == ("cool", "off")
    assert bank.unavailable() == {} and not active(factory, COOL)
    # From now on it obeys every rule, the interlock included.
    bank.request("heat", True, "heat")
    events = bank.request("cool", True, "cool")
    assert [(e.subject, e.state) for e in events] == [("heat", "off"), ("cool", "on")]
    assert active(factory, COOL) and not active(factory, HEAT)
    bank.close()


def test_an_unavailable_relay_keeps_its_saved_state_for_the_next_start(tmp_path: Path) -> None:
    """power_on = "restore": a start where the pin could not be opened must not overwrite
    "it was on" with "off", or the next good start would not restore it."""
    restore = RelayConfig("hall", 6, power_on="restore")
    path = tmp_path / "control.json"
    good = MockFactory()
    bank = RelayBank([restore], good, FakeClock(), StateStore(path))
    bank.request("hall", True, "test")
    bank.close()
    good.close()
    broken = RefusingFactory(6)
    bank = RelayBank([restore], broken, FakeClock(), StateStore(path))
    assert "hall" in bank.unavailable()
    bank.close()
    broken.close()
    again = MockFactory()
    bank = RelayBank([restore], again, FakeClock(), StateStore(path))
    assert bank.state("hall") is True and active(again, restore)
    bank.close()
    again.close()


def test_a_reconfiguration_that_cannot_claim_a_pin_still_fails_whole(
    factory: RefusingFactory,
) -> None:
    """Only the start degrades: a new config whose pin cannot be claimed is refused and the
    running bank carries on untouched (the config manager reports the refusal)."""
    clock = FakeClock()
    bank = RelayBank([HEAT], factory, clock, MemoryStore())
    bank.request("heat", True, "heat")
    with pytest.raises(GPIOPinInUse):
        RelayBank([HEAT, COOL], factory, clock, MemoryStore(), previous=bank)
    assert bank.state("heat") and active(factory, HEAT)
    bank.close()


def test_no_pin_factory_at_all_makes_every_input_and_relay_unavailable_with_the_reason() -> None:
    """What the council chamber saw under the hardened unit without a pin library: now the
    reason is on each of them instead of the agent crash-looping."""
    why = "lgpio (the default): the lgpio library cannot be imported (No module named 'lgpio')"
    pins = NoPins(why)
    clock = FakeClock()
    inputs = InputBank([InputConfig("pir", 17, "motion"), InputConfig("wall", 22, "button")],
                       pins, clock)  # fmt: skip
    relays = RelayBank([HEAT, LIGHT], pins, clock, MemoryStore())
    assert {e.subject: e.state for e in inputs.poll()} == {"pir": "unavailable",
                                                          "wall": "unavailable"}  # fmt: skip
    assert all(why in reason for reason in inputs.unavailable().values())
    assert set(relays.unavailable()) == {"heat", "light"}
    assert all(why in reason for reason in relays.unavailable().values())
    assert relays.safe_state("test") == []  # nothing that can be driven, nothing raised
    inputs.close()
    relays.close()

"""GPIO inputs on gpiozero's MockFactory: the pins are driven by hand, as a wall would."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from agent.common.events import Event
from agent.config.inputs import InputConfig, validate_inputs
from agent.control.inputs import RETRY_AFTER, InputBank
from tests.clocks import FakeClock


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_kind_defaults_resolve_the_wiring() -> None:
    button = InputConfig("wall", 17, "button")
    assert (button.pull_up, button.active_high, button.bounce_time) == (True, False, 0.05)
    pir = InputConfig("pir", 27, "motion")
    assert (pir.pull_up, pir.active_high, pir.bounce_time) == (False, True, None)
    assert InputConfig("door", 22, "contact", bounce_time=0).bounce_time is None
    assert InputConfig("sw", 23, "switch", pull_up=False).active_high is True


def test_button_pressed_and_released(factory: MockFactory, clock: FakeClock) -> None:
    with InputBank([InputConfig("wall", 17, "button")], factory, clock) as bank:
        pin = factory.pin(17)
        assert bank.state("wall") == "released"  # pulled up, not pressed
        pin.drive_low()
        clock.advance(0.4)
        pin.drive_high()
        start = 1_790_000_000.0
        assert bank.poll() == [
            Event("input", "wall", "pressed", "GPIO 17 went low", start),
            Event("input", "wall", "released", "GPIO 17 went high", start + 0.4),
        ]
        assert bank.state("wall") == "released"
        assert bank.poll() == []


def test_motion_and_clear_and_last_motion(factory: MockFactory, clock: FakeClock) -> None:
    with InputBank([InputConfig("pir", 27, "motion")], factory, clock) as bank:
        pin = factory.pin(27)
        assert bank.state("pir") == "clear"
        assert bank.last_motion("pir") is None
        pin.drive_high()
        assert [(e.state, e.reason) for e in bank.poll()] == [("motion", "GPIO 27 went high")]
        clock.advance(30)
        assert bank.last_motion("pir") == 1030.0  # still in motion: seen now
        pin.drive_low()
        assert [e.state for e in bank.poll()] == ["clear"]
        clock.advance(100)
        assert bank.last_motion("pir") == 1030.0  # the moment it cleared
        with pytest.raises(KeyError, match="no input named 'x'"):
            bank.state("x")


def test_contact_open_and_closed(factory: MockFactory, clock: FakeClock) -> None:
    with InputBank([InputConfig("door", 22, "contact")], factory, clock) as bank:
        pin = factory.pin(22)
        assert bank.state("door") == "open"  # circuit open: the pull-up holds it high
        pin.drive_low()
        pin.drive_high()
        assert [e.state for e in bank.poll()] == ["closed", "open"]
        with pytest.raises(ValueError, match="'door' is a contact, not a motion sensor"):
            bank.last_motion("door")


def test_active_low_and_inverted_wiring(factory: MockFactory, clock: FakeClock) -> None:
    configs = [
        # an open-collector PIR: pulled up, pulls the line low on motion
        InputConfig("pir", 5, "motion", pull_up=True),
        # a contact that opens the circuit when the door shuts: closed is the pin high
        InputConfig("door", 6, "contact", active_high=True),
        # a switch to 3V3 with the pull-down: on is high
        InputConfig("sw", 13, "switch", pull_up=False),
    ]
    with InputBank(configs, factory, clock) as bank:
        assert [bank.state(n) for n in ("pir", "door", "sw")] == ["clear", "closed", "off"]
        factory.pin(5).drive_low()
        factory.pin(6).drive_low()
        factory.pin(13).drive_high()
        assert [(e.subject, e.state, e.reason) for e in bank.poll()] == [
            ("pir", "motion", "GPIO 5 went low"),
            ("door", "open", "GPIO 6 went low"),
            ("sw", "on", "GPIO 13 went high"),
        ]


def test_events_keep_their_order_across_pins(factory: MockFactory, clock: FakeClock) -> None:
    configs = [InputConfig("a", 17, "button"), InputConfig("b", 27, "motion")]
    with InputBank(configs, factory, clock) as bank:
        factory.pin(27).drive_high()
        clock.advance(1)
        factory.pin(17).drive_low()
        clock.advance(1)
        factory.pin(27).drive_low()
        clock.advance(1)
        factory.pin(17).drive_high()
        events = bank.poll()
        assert [(e.subject, e.state) for e in events] == [
            ("b", "motion"),
            ("a", "pressed"),
            ("b", "clear"),
            ("a", "released"),
        ]
        assert [e.timestamp - events[0].timestamp for e in events] == [0, 1, 2, 3]


def test_changes_from_another_thread_all_arrive_in_order(
    factory: MockFactory, clock: FakeClock
) -> None:
    with InputBank([InputConfig("wall", 17, "button")], factory, clock) as bank:
        pin = factory.pin(17)

        def press_many() -> None:
            for _ in range(200):
                pin.drive_low()
                pin.drive_high()

        worker = threading.Thread(target=press_many)
        worker.start()
        seen: list[str] = []
        while worker.is_alive():
            seen.extend(e.state for e in bank.poll())
        worker.join()
        seen.extend(e.state for e in bank.poll())
        assert seen == ["pressed", "released"] * 200


def test_bounce_time_reaches_the_pin(factory: MockFactory, clock: FakeClock) -> None:
    # MockPin stores bounce and ignores it ("XXX Need to implement this"): debouncing itself is
    # the pin library's, on hardware. What can be checked here is that it is asked for.
    configs = [
        InputConfig("wall", 17, "button"),
        InputConfig("pir", 27, "motion"),
        InputConfig("door", 22, "contact", bounce_time=0.2),
    ]
    with InputBank(configs, factory, clock):
        assert factory.pin(17).bounce == 0.05
        assert factory.pin(27).bounce is None
        assert factory.pin(22).bounce == 0.2


def test_a_missed_edge_is_corrected_from_the_level(factory: MockFactory, clock: FakeClock) -> None:
    with InputBank([InputConfig("pir", 27, "motion")], factory, clock) as bank:
        pin = factory.pin(27)
        pin.drive_high()
        assert [e.state for e in bank.poll()] == ["motion"]
        pin.edges = "none"  # the falling edge is lost, as RPi.GPIO's bouncetime can lose it
        pin.drive_low()
        pin.edges = "both"
        assert bank.poll() == []  # a level that differs once may be a bounce
        clock.advance(1.9)
        assert bank.poll() == []
        clock.advance(0.1)
        events = bank.poll()
        assert [(e.state, e.reason) for e in events] == [
            ("clear", "GPIO 27 reads low for 2 s with no edge reported (an edge was missed)")
        ]
        assert bank.last_motion("pir") == 1002.0
        pin.drive_high()  # and the next real edge is reported as usual
        assert [e.state for e in bank.poll()] == ["motion"]


def test_a_brief_disagreement_is_not_reported(factory: MockFactory, clock: FakeClock) -> None:
    with InputBank([InputConfig("wall", 17, "button")], factory, clock) as bank:
        pin = factory.pin(17)
        pin.edges = "none"
        pin.drive_low()
        assert bank.poll() == []
        pin.drive_high()  # back before the 2 s are up
        clock.advance(5)
        assert bank.poll() == []
        assert bank.state("wall") == "released"


def test_duplicate_pin_and_name_rejected(factory: MockFactory, clock: FakeClock) -> None:
    same_pin = [InputConfig("a", 17, "button"), InputConfig("b", 17, "contact")]
    with pytest.raises(ValueError, match=r"inputs\[1\].pin: GPIO 17 is already input 'a'"):
        validate_inputs(same_pin)
    with pytest.raises(ValueError, match=r"inputs\[1\].pin"):
        InputBank(same_pin, factory, clock)
    same_name = [InputConfig("a", 17, "button"), InputConfig("a", 27, "motion")]
    with pytest.raises(ValueError, match=r"inputs\[1\].name: 'a' is already used by inputs\[0\]"):
        validate_inputs(same_name)


def test_a_pin_taken_elsewhere_is_unavailable_and_retried(
    factory: MockFactory, clock: FakeClock
) -> None:
    from gpiozero import DigitalInputDevice

    other = DigitalInputDevice(27, pin_factory=factory)
    configs = [InputConfig("wall", 17, "button"), InputConfig("pir", 27, "motion")]
    with InputBank(configs, factory, clock) as bank:
        assert bank.state("wall") == "released"  # the other input works
        assert bank.state("pir") == "unavailable"
        assert bank.last_motion("pir") is None
        (event,) = bank.poll()
        assert (event.kind, event.subject, event.state) == ("input", "pir", "unavailable")
        assert "input 'pir': cannot open GPIO 27" in event.reason
        assert "pir" in bank.unavailable()
        other.close()
        clock.advance(RETRY_AFTER - 1)
        assert bank.poll() == [] and bank.state("pir") == "unavailable"  # not yet retried
        clock.advance(1)
        (event,) = bank.poll()
        assert (event.subject, event.state) == ("pir", "clear")
        assert bank.state("pir") == "clear" and bank.unavailable() == {}
        factory.pin(27).drive_high()
        assert [e.state for e in bank.poll()] == ["motion"]


def test_close_releases_pins_and_drops_later_changes(
    factory: MockFactory, clock: FakeClock
) -> None:
    bank = InputBank([InputConfig("wall", 17, "button")], factory, clock)
    bank.close()
    assert bank.poll() == []
    again = InputBank([InputConfig("wall", 17, "button")], factory, clock)
    factory.pin(17).drive_low()
    assert [e.state for e in again.poll()] == ["pressed"]
    assert bank.poll() == []
    again.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "pin": 17, "kind": "button"}, "name: must not be empty"),
        ({"name": "x", "pin": 17, "kind": "lever"}, "kind: must be one of motion, button"),
        ({"name": "x", "pin": 2, "kind": "button"}, "pin: GPIO 2 is the I2C bus's SDA"),
        ({"name": "x", "pin": 3, "kind": "button"}, "pin: GPIO 3 is the I2C bus's SCL"),
        ({"name": "x", "pin": 28, "kind": "button"}, r"pin: GPIO 28 is not on the header"),
        ({"name": "x", "pin": "17", "kind": "button"}, "pin: must be a BCM GPIO number"),
        ({"name": "x", "pin": 17, "kind": "button", "bounce_time": 2}, "bounce_time: must be"),
    ],
)
def test_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InputConfig(**kwargs)  # type: ignore[arg-type]

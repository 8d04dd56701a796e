"""The pin factory, chosen in one function (agent.pi.pins.choose), and what the doctor says."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gpiozero import pi_info
from gpiozero.pins.mock import MockFactory

from agent.pi.pins import ENV, NoPins, choose, revision
from agent.tools.doctor_pins import verdict


def device_tree(tmp_path: Path, raw: bytes) -> Path:
    (tmp_path / "system").mkdir()
    (tmp_path / "system" / "linux,revision").write_bytes(raw)
    return tmp_path


def test_revision_is_read_from_sysfs_where_the_hardened_unit_can_see_it(tmp_path: Path) -> None:
    # Raspberry Pi's revision-code table: a020d3 is the Pi 3 Model B+, d04170 the Pi 5 (8 GB),
    # 902120 the Zero 2 W. The firmware writes the code big-endian.
    for raw, code, model in [
        (b"\x00\xa0\x20\xd3", 0xA020D3, "3B+"),
        (b"\x00\xd0\x41\x70", 0xD04170, "5B"),
        (b"\x00\x90\x21\x20", 0x902120, "Zero2W"),
    ]:
        root = tmp_path / f"{code:x}"
        root.mkdir()
        assert revision(device_tree(root, raw)) == code
        assert pi_info(code).model == model


def test_a_short_revision_file_is_an_error_not_a_wrong_board(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="2 bytes, expected 4"):
        revision(device_tree(tmp_path, b"\xa0\x20"))


def test_simulating_uses_the_mock_factory() -> None:
    choice = choose(True, environ={ENV: "lgpio"})
    assert isinstance(choice.factory, MockFactory) and choice.name == "mock"
    choice.factory.close()


def test_gpiozero_pin_factory_is_honoured_by_its_entry_point_name() -> None:
    choice = choose(False, environ={ENV: "mock"})
    assert isinstance(choice.factory, MockFactory), choice
    assert choice.reason == f"{ENV}=mock" and not choice.error
    choice.factory.close()


def test_an_unknown_factory_name_says_which_exist() -> None:
    choice = choose(False, environ={ENV: "wiringpi"})
    assert choice.factory is None
    assert "GPIOZERO_PIN_FACTORY=wiringpi is no pin factory gpiozero knows" in choice.error
    assert "lgpio" in choice.error and "mock" in choice.error
    result = verdict(choice)
    assert result.ok is False and "unset GPIOZERO_PIN_FACTORY" in (result.fix or "")


def test_without_the_lgpio_library_the_reason_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the council chamber hit: gpiozero then tried every factory and said only "Unable
    to load any default pin factory!"; now the doctor names the cause and the fix."""
    monkeypatch.setitem(sys.modules, "lgpio", None)  # as if not installed: import fails
    choice = choose(False, environ={})
    assert choice.name == "lgpio" and choice.factory is None
    assert "the lgpio library cannot be imported" in choice.error
    result = verdict(choice)
    assert result.ok is False and "install.sh" in (result.fix or "")
    pins = NoPins(choice.describe())
    from gpiozero import BadPinFactory, DigitalOutputDevice

    with pytest.raises(BadPinFactory, match="lgpio library cannot be imported"):
        DigitalOutputDevice(5, pin_factory=pins)


def test_provisioning_keeps_the_pin_library_for_the_pi_though_the_laptop_is_x86() -> None:
    """pip evaluates markers on the machine it runs on: on an x86 laptop it dropped lgpio from
    the card's wheels, and the Pi's offline install failed (found by scripts/target-test.sh)."""
    from agent.provision.wheels import Target, for_target

    reqs = [
        "lgpio>=0.2.2; sys_platform == 'linux' and "
        "(platform_machine == 'aarch64' or platform_machine == 'armv7l')",
        "tomli>=1.1; python_version < '3.11'",
        "paho-mqtt<3,>=2.0",
    ]
    bookworm = Target("aarch64", "3.11.2", (2, 36))
    assert for_target(reqs, bookworm) == ["lgpio>=0.2.2", "paho-mqtt<3,>=2.0"]
    bullseye_32 = Target("armv7l", "3.9.2", (2, 31))
    assert for_target(reqs, bullseye_32) == ["lgpio>=0.2.2", "tomli>=1.1", "paho-mqtt<3,>=2.0"]
    assert for_target(reqs, Target("x86_64", "3.13.5", (2, 41))) == ["paho-mqtt<3,>=2.0"]

"""Issue 18: an installer's config mistakes are all caught by check-config, doctor and run
alike, before any pin is opened, each as FILE: key.path: problem, with a near match offered.

Expected GPIO facts come from the Raspberry Pi documentation's pinout (BCM 0-27 on the 40-pin
header of the Pi 3, 4, 5 and Zero 2 W; GPIO 2/3 = I2C-1 SDA/SCL, 14/15 = UART TXD/RXD, 7-11 =
SPI0 CE1/CE0/MISO/MOSI/SCLK, 4 = the w1-gpio overlay's default 1-Wire pin, 0/1 = HAT EEPROM).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.app.cli import main
from agent.config import schema as config
from agent.config.schema import ConfigError
from agent.pi import header
from tests.conftest import REPO

HEAD = '[node]\nid = "room-1"\n'
SENSOR = '[[devices]]\ndriver = "bme280"\ninterval = 10\n'


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    prefix = f"{path}: "
    lines = [str(e) for e in info.value.errors]
    assert all(line.startswith(prefix) for line in lines), lines
    return [line[len(prefix) :] for line in lines]


@pytest.mark.parametrize("board", sorted(header.BOARDS))
def test_every_supported_board_has_gpio_0_to_27_on_its_header(board: str) -> None:
    assert header.header_gpios(board) == list(range(28))


def test_a_relay_on_the_i2c_sda_pin_is_a_config_error(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + SENSOR + '[[relays]]\nname = "light"\npin = 2\n')
    assert len(found) == 1
    assert found[0].startswith("relays[0].pin: GPIO 2 is already taken by I2C bus 1 SDA")


def test_the_i2c_pins_are_kept_even_without_a_sensor(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + '[[inputs]]\nname = "door"\npin = 3\nkind = "contact"\n')
    assert found[0].startswith("inputs[0].pin: GPIO 3 is already taken by I2C bus 1 SCL")


def test_a_pin_out_of_range_names_the_board(tmp_path: Path) -> None:
    text = '[node]\nid = "r"\nboard = "pi5"\n[[relays]]\nname = "fan"\npin = 99\n'
    assert problems(tmp_path, text) == [
        "relays[0].pin: GPIO 99 is not on the Raspberry Pi 5's header (BCM GPIO 0-27)"
    ]


def test_a_relay_and_an_input_on_one_pin(tmp_path: Path) -> None:
    text = (HEAD + '[[relays]]\nname = "heat"\npin = 17\n'
            '[[inputs]]\nname = "pir"\npin = 17\nkind = "motion"\n')  # fmt: skip
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith("inputs[0].pin: GPIO 17 is already taken by relay 'heat' "
                               "(relays[0].pin)")  # fmt: skip


def test_the_hat_eeprom_pins_are_reserved(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + '[[relays]]\nname = "x"\npin = 0\n')
    assert found[0].startswith("relays[0].pin: GPIO 0 is ID_SD (HAT EEPROM)")


@pytest.mark.parametrize(
    "port,taken", [("/dev/serial0", True), ("/dev/ttyAMA0", True), ("/dev/ttyUSB0", False)]
)
def test_an_rs485_hat_on_the_header_uart_takes_gpio_14_and_15(port: str, taken: bool) -> None:
    data = {"modbus": [{"name": "meter", "serial": port}], "relays": [{"name": "r", "pin": 14}]}
    found = header.check(header.claims(data))
    if taken:
        assert found and found[0][0] == "relays[0].pin"
        assert "UART TXD (modbus[0].serial)" in found[0][1]
    else:
        assert found == []
    # The serial settings may also be a table with a port (tolerates either shape).
    data["modbus"] = [{"serial": {"port": port, "baudrate": 9600}}]
    assert bool(header.check(header.claims(data))) is taken


@pytest.mark.parametrize("bus,gpio", [("spi0", 10), ("spi0", 7), ("1-wire", 4), ("uart", 15)])
def test_buses_named_in_the_config_take_their_pins(tmp_path: Path, bus: str, gpio: int) -> None:
    text = f'[node]\nid = "r"\nbuses = ["{bus}"]\n[[relays]]\nname = "x"\npin = {gpio}\n'
    found = problems(tmp_path, text)
    assert found[0].startswith(f"relays[0].pin: GPIO {gpio} is already taken by ")
    assert "(node.buses)" in found[0]


def test_unknown_bus_and_board_offer_the_near_name(tmp_path: Path) -> None:
    found = problems(tmp_path, '[node]\nid = "r"\nboard = "pi 4"\nbuses = ["spi"]\n')
    assert (
        "node.board: must be one of 'pi3', 'pi4', 'pi5', 'zero2w', got 'pi 4' - did you "
        "mean 'pi4'?" in found
    )
    assert any(f.startswith("node.buses: unknown bus 'spi' - did you mean 'spi0'?") for f in found)


def test_a_misspelt_required_key_is_named_as_the_typo(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + '[[devices]]\ndriver = "bme280"\nintreval = 10\n')
    assert found == ["devices[0].intreval: unknown key 'intreval' - did you mean 'interval'?"]


def test_unknown_keys_and_values_offer_the_near_one(tmp_path: Path) -> None:
    text = (HEAD + '[broker]\nprot = 1883\n[[devices]]\ndriver = "sht4"\ninterval = 5\n'
            '[[relays]]\nname = "fan"\npin = 17\nknd = "fan"\n'
            '[[inputs]]\nname = "pir"\npin = 22\nkind = "motoin"\n'
            '[[zones]]\nname = "z"\nsensor = "sht4x"\ncomfort = 21\neco = 17\nboost = 23\n'
            'heat = ["fan"]\n'
            'schedule = ["monday-fri 07:00 comfort"]\n')  # fmt: skip
    found = problems(tmp_path, text)
    assert "broker.prot: unknown key 'prot' - did you mean 'port'?" in found
    assert any(f.startswith("devices[0].driver: unknown driver 'sht4' - did you mean 'sht4x'?")
               for f in found)  # fmt: skip
    assert "relays[0].knd: unknown key 'knd' - did you mean 'kind'?" in found
    assert any(f.startswith("inputs[0].kind: must be one of") and "did you mean 'motion'?" in f
               for f in found), found  # fmt: skip
    assert any("unknown day 'monday' - did you mean 'mon'?" in f for f in found), found


def test_a_time_zone_typo_is_caught_without_any_schedule(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + '[control]\ntimezone = "Europe/Berlni"\n')
    assert len(found) == 1
    assert found[0].startswith(
        "control.timezone: unknown time zone 'Europe/Berlni' - did you mean 'Europe/Berlin'?"
    )


def test_a_bom_and_crlf_are_read_as_plain_toml(tmp_path: Path) -> None:
    text = "\ufeff" + (HEAD + SENSOR).replace("\n", "\r\n")
    path = tmp_path / "windows.toml"
    path.write_bytes(text.encode("utf-8"))
    cfg = config.load(path)
    assert cfg.node.id == "room-1" and cfg.devices[0].driver == "bme280"


SEVERAL = (
    '[node]\nid = "room-1"\nboard = "pi4"\n'
    '[broker]\nhost = "localhost"\nprot = 1883\n'
    '[[devices]]\ndriver = "bme280"\nintreval = 10\n'
    '[[devices]]\ndriver = "sht4"\ninterval = 10\n'
    '[control]\ntimezone = "Europe/Berlni"\n'
    '[[relays]]\nname = "light"\npin = 2\n'
    '[[relays]]\nname = "fan"\npin = 99\n'
    '[[relays]]\nname = "heat"\npin = 17\n'
    '[[inputs]]\nname = "pir"\npin = 17\nkind = "motion"\n'
)
SEVERAL_KEYS = ["broker.prot", "devices[0].intreval", "devices[1].driver", "relays[0].pin",
                "relays[1].pin", "inputs[0].pin", "control.timezone"]  # fmt: skip


def test_check_config_reports_every_mistake_in_one_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, SEVERAL)
    assert main(["check-config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert sorted(line.split(": ")[1] for line in lines) == sorted(SEVERAL_KEYS)
    assert all(line.startswith(f"✗ {path}: ") for line in lines)


def test_run_refuses_the_same_config_before_touching_hardware(tmp_path: Path) -> None:
    path = write(tmp_path, SEVERAL)
    out = subprocess.run([sys.executable, "-m", "agent", "run", str(path), "--simulate",
                          "--state-dir", str(tmp_path / "state")], cwd=REPO,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.splitlines()) == len(SEVERAL_KEYS)
    assert not (tmp_path / "state").exists()


def test_doctor_fails_the_config_check_instead_of_calling_it_valid(tmp_path: Path) -> None:
    from agent.tools import doctor

    path = write(tmp_path, SEVERAL)
    result, cfg = doctor.check_config(path)
    assert cfg is None and result.ok is False
    assert f"and {len(SEVERAL_KEYS) - 1} more" in result.detail

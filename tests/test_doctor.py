"""`roomagent doctor` against simulated chips, fake filesystem trees, a real mosquitto and a real
SQLite buffer.

What each check must say is decided from its inputs: chip ids from the datasheets (BME280
0x60, BMP280 0x58), header pins from the Raspberry Pi pinout (GPIO2/3 = SDA/SCL on pins 3/5,
GPIO4 = pin 7), config.txt syntax from the firmware's overlays README, systemctl's `show`
output format from systemctl(1), MQTT 5 CONNACK reason codes from the spec (section 3.2.2.2).
"""

from __future__ import annotations

import grp
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

import pytest

from agent.config import schema as config_mod
from agent.config.schema import Config, ConfigError, DeviceConfig
from agent.mqtt.contract import telemetry_payload
from agent.pi.bootconfig import read_boot_config
from agent.pipeline.outbox import Outbox
from agent.pipeline.staged_outbox import StagedOutbox
from agent.sensing.bus_choice import NoBusError
from agent.tools.doctor import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, exit_status, render, run
from agent.tools.doctor_broker import check_broker
from agent.tools.doctor_checks import (
    SERVICE_GROUPS,
    Host,
    Result,
    ServiceState,
    check_buffer,
    check_clock,
    check_disk,
    check_service,
    service_state,
)
from agent.tools.doctor_hardware import check_bluetooth, check_gpio, check_i2c, check_sensor
from drivers.sim import RegisterChip, SimBus
from drivers.sim.bh1750 import SimBH1750
from drivers.sim.bme280 import SimBME280
from drivers.sim.scd4x import SimSCD4x
from tests.acl_broker import password
from tests.conftest import REPO
from tests.mqtt_fixtures import Broker, Subscriber, free_port, make_certificates

NOW = 1_790_000_000.0
SERVICE_IDS = (4242, frozenset({os.getgid()}))  # not the files' owner; shares their group
NO_SYSTEMD = ServiceState(present=False)


def make_host(root: Path, **overrides: Any) -> Host:
    settings: dict[str, Any] = dict(
        root=root,
        statvfs=lambda path: SimpleNamespace(f_bavail=2_621_440, f_frsize=4096),  # 10 GiB
        clock_synced=lambda: True,
        systemctl=lambda args: None,
        service_ids=lambda: SERVICE_IDS,
        now=lambda: NOW,
    )
    settings.update(overrides)
    return Host(**settings)


def put(root: Path, path: str, text: str = "", mode: int = 0o660) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def load(tmp_path: Path, body: str, port: int = 1883, head: str = "") -> Config:
    path = tmp_path / "room.toml"
    path.write_text(
        textwrap.dedent(f"""
        [node]
        id = "room-a"
        state_dir = "{tmp_path / "state"}"
        {head}
        [broker]
        host = "127.0.0.1"
        port = {port}
        """)
        + textwrap.dedent(body)
    )
    return config_mod.load(path)


def device(name: str, driver: str, address: Optional[int] = None) -> DeviceConfig:
    return DeviceConfig(name=name, driver=driver, interval=5.0, address=address)


# Sensors ----------------------------------------------------------------------------------


def test_the_configured_chip_answers_and_says_who_it_is() -> None:
    bus = SimBus({0x76: SimBME280()})
    result = check_sensor(device("climate", "bme280", 0x76), lambda n: bus)
    assert result == Result(
        "sensor climate", True, "bme280 at 0x76 on bus 1: BME280 (chip id 0x60)"
    )
    # Asked, not reset: a chip the running agent uses is left as it was. Only the chip-id
    # register (0xD0) was addressed; nothing was written to a register.
    assert all(len(t.data) <= 1 for t in bus.log if t.kind == "write")
    assert {t.data for t in bus.log if t.kind == "write" and t.data} == {b"\xd0"}


def test_a_different_chip_at_the_address_is_named_with_the_config_change() -> None:
    bus = SimBus({0x76: SimBME280(chip_id=0x58)})  # a BMP280: no humidity
    result = check_sensor(device("climate", "bme280", 0x76), lambda n: bus)
    assert result.ok is False
    assert "BMP280 (chip id 0x58)" in result.detail
    assert 'driver = "bmp280"' in result.fix and "fit a bme280" in result.fix


def test_a_missing_chip_points_at_the_wires_on_the_header() -> None:
    result = check_sensor(device("co2", "scd4x"), lambda n: SimBus())
    assert result.ok is False
    assert result.detail == "scd4x at 0x62 on bus 1: nothing answers"
    assert "SDA to pin 3, SCL to pin 5" in result.fix  # GPIO2 and GPIO3


def test_the_right_chip_at_its_other_address_means_the_jumper_is_wrong() -> None:
    bus = SimBus({0x77: SimBME280()})
    result = check_sensor(device("climate", "bme280", 0x76), lambda n: bus)
    assert result.ok is False
    assert "BME280 (chip id 0x60) answers at 0x77" in result.detail
    assert "set address = 0x77" in result.detail


def test_garbled_replies_are_called_a_wiring_fault_not_a_wrong_chip() -> None:
    chip = SimSCD4x()
    chip.corrupt_checksum = True
    result = check_sensor(device("co2", "scd4x"), lambda n: SimBus({0x62: chip}))
    assert result.ok is False
    assert "checksum" in result.detail
    assert "pull-up" in result.fix


class Eeprom(RegisterChip):
    """A chip we have no driver for: all its registers read 0."""


def test_an_unknown_chip_at_the_address_is_opened_for_the_drivers_reason() -> None:
    bus = SimBus({0x76: Eeprom()})
    result = check_sensor(device("climate", "bme280", 0x76), lambda n: bus)
    assert result.ok is False
    assert "something answers, but not a bme280" in result.detail
    assert "chip id 0x00" in result.detail  # what the driver read, expected 0x60


def test_a_chip_without_an_id_passes_on_its_address_alone() -> None:
    result = check_sensor(device("light", "bh1750"), lambda n: SimBus({0x23: SimBH1750()}))
    assert result.ok is True and "no id" in result.detail


def test_a_bus_that_cannot_be_opened_leaves_the_sensors_unchecked() -> None:
    def no_bus(number: int) -> Any:
        raise NoBusError("/dev/i2c-1 does not exist")

    result = check_sensor(device("climate", "bme280"), no_bus)
    assert result.ok is None and "see 'i2c bus 1'" in result.detail


# I2C and config.txt -----------------------------------------------------------------------

# Raspberry Pi OS's own config.txt (pi-gen stage1), with I2C still commented out.
STOCK = """\
# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on
dtoverlay=vc4-kms-v3d
max_framebuffers=2

[cm4]
otg_mode=1

[all]
"""


def test_i2c_switched_on_with_the_bus_present(tmp_path: Path) -> None:
    switched_on = STOCK.replace("#dtparam=i2c_arm=on", "dtparam=i2c_arm=on")
    put(tmp_path, "/boot/firmware/config.txt", switched_on)
    put(tmp_path, "/dev/i2c-1")
    host = make_host(tmp_path)
    result = check_i2c(1, read_boot_config(tmp_path), host)
    assert result.ok is True, result


def test_i2c_left_off_in_a_stock_config_txt(tmp_path: Path) -> None:
    put(tmp_path, "/boot/firmware/config.txt", STOCK)
    result = check_i2c(1, read_boot_config(tmp_path), make_host(tmp_path))
    assert result.ok is False and "switched off" in result.detail
    assert "raspi-config nonint do_i2c 0" in result.fix and "reboot" in result.fix


def test_i2c_switched_on_but_not_yet_rebooted(tmp_path: Path) -> None:
    # The alias `i2c` and a comma list on one line, after an overlay that has no such
    # parameter: it falls through to the base tree.
    put(tmp_path, "/boot/firmware/config.txt", STOCK + "dtparam=i2c=on,spi=on\n")
    result = check_i2c(1, read_boot_config(tmp_path), make_host(tmp_path))
    assert result.ok is False and "reboot" in result.fix


def test_i2c_on_without_the_i2c_dev_module(tmp_path: Path) -> None:
    put(tmp_path, "/boot/firmware/config.txt", "dtparam=i2c_arm=on\n")
    (tmp_path / "sys/class/i2c-adapter/i2c-1").mkdir(parents=True)
    result = check_i2c(1, read_boot_config(tmp_path), make_host(tmp_path))
    assert result.ok is False and "i2c-dev" in result.detail and "i2c-dev" in result.fix


def test_the_service_user_must_be_able_to_open_the_bus(tmp_path: Path) -> None:
    put(tmp_path, "/boot/firmware/config.txt", "dtparam=i2c_arm=on\n")
    put(tmp_path, "/dev/i2c-1", mode=0o600)  # owner only, and the service is not the owner
    result = check_i2c(1, read_boot_config(tmp_path), make_host(tmp_path))
    assert result.ok is False and "cannot read and write" in result.detail
    assert "udev rule" in result.fix  # no group may use it: a group is no answer


def test_a_device_group_the_service_lacks(tmp_path: Path) -> None:
    put(tmp_path, "/boot/firmware/config.txt", "dtparam=i2c_arm=on\n")
    device_file = put(tmp_path, "/dev/i2c-1", mode=0o660)
    gid = os.getgid() or 4321  # any group but root's (root may give a file any group)
    os.chown(device_file, -1, gid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    host = make_host(tmp_path, service_ids=lambda: (4242, frozenset()))
    result = check_i2c(1, read_boot_config(tmp_path), host)
    assert result.ok is False
    assert (
        result.fix == f"sudo usermod -aG {group} roomagent, then sudo systemctl restart roomagent"
    )


def test_config_txt_rules_the_firmware_follows(tmp_path: Path) -> None:
    put(tmp_path, "/boot/config.txt", "dtparam=i2c_arm=on\n")  # Bullseye's place: not read
    put(tmp_path, "/boot/firmware/config.txt", textwrap.dedent("""\
        dtparam=i2c_arm=on
        [none]
        dtparam=spi=on
        [all]
        include extra.txt
        dtoverlay=w1-gpio:gpiopin=17
        dtoverlay=i2c-gpio,i2c_gpio_sda=5
        """))  # fmt: skip
    put(tmp_path, "/boot/firmware/extra.txt", "dtparam=i2c_arm=off\nenable_uart=1\n")
    boot = read_boot_config(tmp_path)
    assert boot.path == tmp_path / "boot/firmware/config.txt"
    assert not boot.on("i2c_arm")  # the last setting wins, an included one too
    assert not boot.on("spi")  # [none] never applies
    claimed = boot.claimed_pins()
    assert claimed[17] == "dtoverlay=w1-gpio"  # its gpiopin, after a colon
    assert claimed[5] == claimed[24] == "dtoverlay=i2c-gpio"  # sda given, scl default 24
    assert claimed[14] == claimed[15] == "the serial port (enable_uart=1)"


# GPIO -------------------------------------------------------------------------------------

RELAY_AND_INPUT = """
[[relays]]
name = "heater"
pin = {relay}
kind = "heat"
[[inputs]]
name = "pir"
pin = {input}
kind = "motion"
"""
SENSOR = '[[devices]]\nname = "climate"\ndriver = "bme280"\ninterval = 5\n'


def gpio_tree(tmp_path: Path, config_txt: str = "dtparam=i2c_arm=on\n") -> Host:
    put(tmp_path, "/boot/firmware/config.txt", config_txt)
    put(tmp_path, "/dev/gpiochip0")
    return make_host(tmp_path)


@pytest.mark.parametrize(
    ("relay", "input_", "config_txt", "expected"),
    [
        (17, 4, "dtoverlay=w1-gpio\n", "input 'pir' is on GPIO 4 (pin 7), which is taken by "
         "dtoverlay=w1-gpio"),
        (8, 4, "dtparam=spi=on\n", "relay 'heater' is on GPIO 8 (pin 24), which is taken by "
         "SPI (dtparam=spi=on)"),
    ],
)  # fmt: skip
def test_pins_in_conflict(tmp_path: Path, relay: int, input_: int, config_txt: str,
                          expected: str) -> None:  # fmt: skip
    host = gpio_tree(tmp_path, config_txt)
    cfg = load(tmp_path, SENSOR + RELAY_AND_INPUT.format(relay=relay, input=input_))
    result = check_gpio(cfg, read_boot_config(tmp_path), host)
    assert result.ok is False and expected in result.detail, result.detail


@pytest.mark.parametrize(
    ("relay", "input_", "expected"),
    [
        (2, 4, "relays[0].pin: GPIO 2 is already taken by I2C bus 1 SDA"),
        (0, 4, "relays[0].pin: GPIO 0 is ID_SD (HAT EEPROM)"),
        (30, 4, "relays[0].pin: GPIO 30 is not on the Raspberry Pi's header"),
        (4, 4, "inputs[0].pin: GPIO 4 is already taken by relay 'heater'"),
    ],
)  # fmt: skip
def test_pin_mistakes_fail_the_config_check(tmp_path: Path, relay: int, input_: int,
                                            expected: str) -> None:  # fmt: skip
    """The doctor used to call such a config valid and catch the pin later, in the GPIO check."""
    from agent.tools.doctor import check_config

    with pytest.raises(ConfigError):
        load(tmp_path, SENSOR + RELAY_AND_INPUT.format(relay=relay, input=input_))
    result, cfg = check_config(tmp_path / "room.toml")
    assert cfg is None and result.ok is False and expected in result.detail, result.detail


def test_free_pins_and_a_usable_gpiochip(tmp_path: Path) -> None:
    host = gpio_tree(tmp_path)
    cfg = load(tmp_path, SENSOR + RELAY_AND_INPUT.format(relay=17, input=4))
    result = check_gpio(cfg, read_boot_config(tmp_path), host)
    detail = "1 relay and 1 input on free pins; gpiochip0 usable by roomagent"
    assert result == Result("gpio", True, detail)


def test_no_gpiochip_or_no_access(tmp_path: Path) -> None:
    cfg = load(tmp_path, RELAY_AND_INPUT.format(relay=17, input=4))
    host = make_host(tmp_path)
    assert check_gpio(cfg, None, host).ok is False  # no /dev/gpiochip*
    put(tmp_path, "/dev/gpiochip0", mode=0o600)
    result = check_gpio(cfg, None, host)
    assert result.ok is False and "cannot read and write" in result.detail
    no_user = make_host(tmp_path, service_ids=lambda: None)
    put(tmp_path, "/dev/gpiochip0", mode=0o660)
    assert "no 'roomagent' user" in check_gpio(cfg, None, no_user).detail


def test_simulated_pins_are_opened_with_gpiozero(tmp_path: Path) -> None:
    from gpiozero.pins.mock import MockFactory

    cfg = load(tmp_path, RELAY_AND_INPUT.format(relay=17, input=4))
    factory = MockFactory()
    result = check_gpio(cfg, None, make_host(tmp_path), pin_factory=factory)
    assert result.ok is True and "simulated" in result.detail
    # Opened and released: the agent can take them afterwards.
    assert factory.pin(17).function == "input" and factory.pin(4).function == "input"


# Bluetooth, clock, service ----------------------------------------------------------------


def test_bluetooth(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    boot = read_boot_config(tmp_path)
    assert check_bluetooth(False, boot, host).ok is None  # not needed: information only
    put(tmp_path, "/boot/firmware/config.txt", "dtoverlay=disable-bt\n")
    result = check_bluetooth(True, read_boot_config(tmp_path), host)
    assert result.ok is False and "remove dtoverlay=disable-bt" in result.fix
    (tmp_path / "sys/class/bluetooth/hci0").mkdir(parents=True)
    for name, value in (("type", "bluetooth"), ("name", "hci0"), ("soft", "1"), ("hard", "0")):
        put(tmp_path, f"/sys/class/rfkill/rfkill0/{name}", value + "\n")
    result = check_bluetooth(True, read_boot_config(tmp_path), host)
    assert result.ok is False and result.fix == "sudo rfkill unblock bluetooth"
    put(tmp_path, "/sys/class/rfkill/rfkill0/soft", "0\n")
    assert check_bluetooth(True, read_boot_config(tmp_path), host).ok is True


def test_clock(tmp_path: Path) -> None:
    assert check_clock(None, make_host(tmp_path, clock_synced=lambda: True)).ok is True
    unsynced = check_clock(None, make_host(tmp_path, clock_synced=lambda: False))
    assert unsynced.ok is False and "UDP port 123" in unsynced.fix
    # adjtimex refused (a seccomp filter): timesyncd's flag file decides, as in the agent.
    unknown = make_host(tmp_path, clock_synced=lambda: None)
    assert check_clock(None, unknown).ok is False
    put(tmp_path, "/run/systemd/timesync/synchronized")
    assert check_clock(None, unknown).ok is True


def systemctl_show(**values: str) -> Callable[[Sequence[str]], tuple[int, str]]:
    def systemctl(args: Sequence[str]) -> tuple[int, str]:
        assert list(args[:2]) == ["show", "roomagent.service"]
        return 0, "".join(f"{key}={value}\n" for key, value in values.items())

    return systemctl


def test_service(tmp_path: Path) -> None:
    assert check_service(service_state(make_host(tmp_path))).ok is None  # no systemd here
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    running = make_host(tmp_path, systemctl=systemctl_show(
        LoadState="loaded", ActiveState="active", SubState="running",
        StatusText="connected; backlog 0; devices 6/6 up"))  # fmt: skip
    result = check_service(service_state(running))
    assert result.ok is True and "connected; backlog 0; devices 6/6 up" in result.detail
    crashed = make_host(tmp_path, systemctl=systemctl_show(
        LoadState="loaded", ActiveState="failed", SubState="failed", StatusText=""))  # fmt: skip
    assert "journalctl -u roomagent" in check_service(service_state(crashed)).fix
    missing = make_host(tmp_path, systemctl=systemctl_show(
        LoadState="not-found", ActiveState="inactive", SubState="dead"))  # fmt: skip
    assert "install.sh" in check_service(service_state(missing)).fix


def test_the_service_groups_are_the_units() -> None:
    unit = (REPO / "scripts" / "roomagent.service").read_text()
    assert f"SupplementaryGroups={' '.join(SERVICE_GROUPS)}\n" in unit


# Disk and buffer --------------------------------------------------------------------------


def statvfs(free_bytes: int) -> Callable[[str], Any]:
    return lambda path: SimpleNamespace(f_bavail=free_bytes // 4096, f_frsize=4096)


def test_disk(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")  # buffer.max_bytes 256 MiB by default
    mib = 2**20
    full = check_disk(cfg, make_host(tmp_path, statvfs=statvfs(2 * mib)), None)
    assert full.ok is False and "the card is full" in full.detail
    # 100 MiB free, but the buffer may grow to 256 MiB in an outage.
    short = check_disk(cfg, make_host(tmp_path, statvfs=statvfs(100 * mib)), None)
    assert short.ok is False and "may grow by 256.0 MiB" in short.detail
    assert "buffer.max_bytes" in short.fix
    assert check_disk(cfg, make_host(tmp_path, statvfs=statvfs(300 * mib)), None).ok is True


def fill(cfg: Config, stamps: Sequence[float]) -> None:
    """Readings taken at these times, committed by the agent's own outbox and then closed."""
    outbox = Outbox(cfg.buffer.path, max_rows=cfg.buffer.max_rows,
                    max_bytes=cfg.buffer.max_bytes)  # fmt: skip
    reading = {"temperature": 21.0}
    for ts in stamps:
        outbox.append("roomagent/room-a/telemetry/climate",
                      lambda seq, ts=ts: telemetry_payload(ts, seq, True, reading))  # fmt: skip
    outbox.close()


def test_buffer_states(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    host = make_host(tmp_path)
    result, _ = check_buffer(cfg, host)
    assert result.ok is None and "no buffer yet" in result.detail

    fill(cfg, [])
    result, backlog = check_buffer(cfg, host)
    assert result.ok is True and result.detail.startswith("empty")

    fill(cfg, [NOW - 30, NOW - 20])
    result, backlog = check_buffer(cfg, host)
    assert backlog is not None and backlog.rows == 2
    assert result.ok is True and "2 readings waiting" in result.detail
    assert "the oldest taken 30 s ago" in result.detail

    fill(cfg, [NOW - 10])  # behind the two above: the oldest is 20 min old now
    later = make_host(tmp_path, now=lambda: NOW + 20 * 60 - 30)
    result, _ = check_buffer(cfg, later)
    assert result.ok is False and "not getting out" in result.detail
    assert "the oldest taken 20 min ago" in result.detail


def test_a_nearly_full_buffer(tmp_path: Path) -> None:
    cfg = load(tmp_path, "[buffer]\nmax_rows = 100\n")
    fill(cfg, [NOW - 5] * 95)
    result, _ = check_buffer(cfg, make_host(tmp_path))
    assert result.ok is False and "95 readings waiting (95% of the buffer)" in result.detail
    assert "nearly full" in result.detail


def test_reading_the_buffer_creates_no_file_beside_it(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    fill(cfg, [NOW])
    before = sorted(p.name for p in cfg.buffer.path.parent.iterdir())
    check_buffer(cfg, make_host(tmp_path))
    assert sorted(p.name for p in cfg.buffer.path.parent.iterdir()) == before
    # While the agent has it open (its WAL holds the newest rows), those rows are seen too.
    live = Outbox(cfg.buffer.path, max_rows=1000, max_bytes=2**20)
    live.append("t", lambda seq: telemetry_payload(NOW, seq, True, {}))
    try:
        _, backlog = check_buffer(cfg, make_host(tmp_path))
        assert backlog is not None and backlog.rows == 2
    finally:
        live.close()


def test_the_backlog_counts_the_ram_stage_too(tmp_path: Path) -> None:
    # With durability "staged" the newest readings wait in a RAM stage, not on the card: a
    # doctor reading the card alone said "empty" while an outage's last seconds were waiting.
    stage = tmp_path / "stage"
    cfg = load(tmp_path, f'[buffer]\nstage_dir = "{stage}"\n')
    fill(cfg, [NOW - 40])  # one on the card: the oldest
    staged = StagedOutbox(cfg.buffer.path, max_rows=1000, max_bytes=2**20, stage_dir=stage)
    for ts in (NOW - 5, NOW - 4):
        staged.append("roomagent/room-a/telemetry/climate",
                      lambda seq, ts=ts: telemetry_payload(ts, seq, True, {}))  # fmt: skip
    try:  # the agent running: the stage's WAL is open
        result, backlog = check_buffer(cfg, make_host(tmp_path))
        assert backlog is not None and backlog.rows == 3
        assert (
            "3 readings waiting" in result.detail and "the oldest taken 40 s ago" in result.detail
        )
    finally:  # the agent killed: no spill, the stage stays in RAM for its next start
        staged.db.close()
        staged.disk.close()
        os.close(staged._lock)
    result, backlog = check_buffer(cfg, make_host(tmp_path))
    assert backlog is not None and backlog.rows == 3

    # Only the stage holds readings: its oldest is the backlog's oldest.
    empty = tmp_path / "other"
    empty.mkdir()
    cfg2 = load(empty, f'[buffer]\nstage_dir = "{stage}2"\n')
    staged2 = StagedOutbox(
        cfg2.buffer.path, max_rows=1000, max_bytes=2**20, stage_dir=Path(f"{stage}2")
    )
    staged2.append("roomagent/room-a/telemetry/climate",
                   lambda seq: telemetry_payload(NOW - 90, seq, True, {}))  # fmt: skip
    try:
        result, backlog = check_buffer(cfg2, make_host(tmp_path))
        assert backlog is not None and backlog.rows == 1
        assert "the oldest taken 90 s ago" in result.detail
    finally:
        staged2.close()


# The broker -------------------------------------------------------------------------------


def test_a_reachable_broker_and_nothing_published(tmp_path: Path, broker: Broker) -> None:
    central = Subscriber(broker.port, "#")
    try:
        result = check_broker(load(tmp_path, "", port=broker.port), NO_SYSTEMD)
        assert result == Result(
            "broker", True, f"logged in to 127.0.0.1:{broker.port}, protocol MQTT 5"
        )
        # A barrier: had the doctor published (a status, a will), it would have arrived first.
        broker_client = Subscriber(broker.port, "barrier")
        broker_client.client.publish("barrier", "x", qos=1)
        assert central.wait_for(lambda ms: any(m.topic == "barrier" for m in ms))
        assert [m.topic for m in central.messages] == ["barrier"]
        broker_client.close()
    finally:
        central.close()


def test_nothing_listening(tmp_path: Path) -> None:
    result = check_broker(load(tmp_path, "", port=free_port()), NO_SYSTEMD)
    assert result.ok is False and "connection refused" in result.detail


def credentials(tmp_path: Path, secret: str) -> str:
    path = tmp_path / "mqtt-password"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return f'username = "room-a"\npassword_file = "{path}"\n'


def test_the_login_against_a_password_file_and_acl(tmp_path: Path, secured: Broker) -> None:
    right = load(tmp_path, credentials(tmp_path, password("room-a")), port=secured.port)
    assert check_broker(right, NO_SYSTEMD).ok is True
    wrong = load(tmp_path, credentials(tmp_path, "guess"), port=secured.port)
    result = check_broker(wrong, NO_SYSTEMD)
    assert result.ok is False and "refused the login 'room-a'" in result.detail
    assert "password" in result.fix


@pytest.fixture(scope="module")
def two_cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Path]]:
    base = tmp_path_factory.mktemp("certs")
    return make_certificates(base / "real"), make_certificates(base / "other")


def test_tls_with_the_right_and_a_wrong_ca(tmp_path: Path, two_cas: Any) -> None:
    real, other = two_cas
    tls = f"cafile {real['ca.crt']}\ncertfile {real['server.crt']}\nkeyfile {real['server.key']}\n"
    broker = Broker(tmp_path / "broker", extra_conf=tls)
    broker.start()
    try:
        good = load(tmp_path, f'[broker.tls]\nca = "{real["ca.crt"]}"\n', port=broker.port)
        result = check_broker(good, NO_SYSTEMD)
        assert result.ok is True and "(TLS)" in result.detail
        bad = load(tmp_path, f'[broker.tls]\nca = "{other["ca.crt"]}"\n', port=broker.port)
        result = check_broker(bad, NO_SYSTEMD)
        assert result.ok is False and "not trusted" in result.detail
        assert f"[broker.tls] ca ({other['ca.crt']})" in result.fix
    finally:
        broker.stop()


def test_a_connected_service_is_not_pushed_off_the_broker(tmp_path: Path) -> None:
    cfg = load(tmp_path, "", port=free_port())  # nothing listens: a login would fail
    service = ServiceState(True, "loaded", "active", "running", "connected; backlog 0")
    result = check_broker(cfg, service)
    assert result.ok is True and "does not log in again" in result.detail


# The whole run ----------------------------------------------------------------------------

ROOM = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 5
[[devices]]
name = "light"
driver = "bh1750"
interval = 5
""" + RELAY_AND_INPUT.format(relay=17, input=4)


def pi_tree(tmp_path: Path) -> Host:
    put(tmp_path, "/boot/firmware/config.txt", "dtparam=i2c_arm=on\n")
    put(tmp_path, "/dev/i2c-1")
    put(tmp_path, "/dev/gpiochip0")
    (tmp_path / "sys/class/bluetooth/hci0").mkdir(parents=True)
    return make_host(tmp_path)


def test_a_healthy_room(tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")  # no lgpio off a Pi: gpiozero's mock pins
    cfg = load(tmp_path, ROOM, port=broker.port)
    bus = SimBus({0x76: SimBME280(), 0x23: SimBH1750()})
    report = run(cfg.source, host=pi_tree(tmp_path), open_bus=lambda n: bus)
    names = [r.name for r in report.results]
    assert names == ["config", "service", "i2c bus 1", "sensor climate", "sensor light", "gpio",
                     "pin factory", "bluetooth", "broker", "clock", "disk", "buffer"]  # fmt: skip
    failures = [r for r in report.results if r.ok is False]
    assert failures == []
    assert exit_status(report.results) == EXIT_OK
    text = render(report.results, "heading")
    assert "pin factory" in text and "GPIOZERO_PIN_FACTORY=mock" in text
    # Service, Bluetooth (no BLE sensors) and buffer (none yet) are information here.
    assert "✗" not in text and text.count("✓") == 9 and text.count("–") == 3
    assert text.endswith("All checks passed.")


def test_a_room_with_faults_says_how_to_fix_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    cfg = load(tmp_path, ROOM, port=free_port())
    bus = SimBus({0x76: SimBME280(chip_id=0x58)})  # a BMP280 fitted, the light sensor absent
    report = run(cfg.source, host=pi_tree(tmp_path), open_bus=lambda n: bus)
    failed = {r.name for r in report.results if r.ok is False}
    assert failed == {"sensor climate", "sensor light", "broker"}
    assert exit_status(report.results) == EXIT_FAILED
    lines = render(report.results, "heading").splitlines()
    for name in failed:
        [row] = [i for i, line in enumerate(lines) if line.startswith(f"✗ {name} ")]
        assert lines[row + 1].lstrip().startswith("fix: ")  # the fix right under its ✗
    assert lines[-1].startswith("3 of ")
    # The summary is one line naming what failed, in the order shown.
    # 9: the pin factory line counts too (relays and inputs in the config)
    assert lines[-1].startswith("3 of 9 checks failed (sensor climate, sensor light, broker): ")


def test_a_bad_config_exits_2_and_still_checks_what_needs_none(tmp_path: Path) -> None:
    path = tmp_path / "room.toml"
    path.write_text('[node]\nid = "room-a"\n[[devices]]\ndriver = "bme280"\ninterval = 0\n')
    report = run(path, host=pi_tree(tmp_path))
    assert report.results[0].ok is False
    assert "devices[0].interval: must be ≥ 1 s, got 0" in report.results[0].detail
    assert [r.name for r in report.results] == ["config", "service", "i2c bus 1", "bluetooth",
                                                "clock"]  # fmt: skip
    assert exit_status(report.results) == EXIT_CONFIG


def test_a_scene_naming_no_such_light_is_a_config_error(tmp_path: Path) -> None:
    scene = '[[scenes]]\nname = "s"\n[scenes.targets]\n"lights:nope" = "on"\n'
    with pytest.raises(ConfigError):  # the config refuses it at load since it checks scenes
        load(tmp_path, ROOM + scene)
    report = run(tmp_path / "room.toml", simulate=True, host=pi_tree(tmp_path))
    first = report.results[0]
    assert first.ok is False and "scenes[0].targets" in first.detail
    assert "no lights 'nope'" in first.detail
    assert exit_status(report.results) == EXIT_CONFIG


@pytest.fixture
def demo_copy(tmp_path: Path, broker: Broker) -> Path:
    """The demo room's config, pointed at this test's broker and state directory."""
    text = (REPO / "firmware_configs" / "demo.toml").read_text()
    text = text.replace('state_dir = "../.demo/state"', f'state_dir = "{tmp_path / "state"}"')
    text = text.replace("port = 1883", f"port = {broker.port}")
    path = tmp_path / "demo.toml"
    path.write_text(text)
    return path


def test_the_cli_on_the_demo_room(demo_copy: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "doctor", "--config", str(demo_copy), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )  # fmt: skip
    body = json.loads(done.stdout)
    assert body["node"] == "demo-room" and body["simulated"] is True
    by_name = {c["name"]: c for c in body["checks"]}
    # Every simulated chip of the demo answers as what the config says it is.
    sensors = [c for c in body["checks"] if c["name"].startswith("sensor ")]
    assert len(sensors) == 6 and all(c["ok"] for c in sensors), sensors
    assert by_name["broker"]["ok"] is True and by_name["gpio"]["ok"] is True
    # The clock is this machine's; everything else passed or is information.
    others = [c for c in body["checks"] if c["ok"] is False and c["name"] != "clock"]
    assert others == []
    assert done.returncode == (EXIT_OK if by_name["clock"]["ok"] else EXIT_FAILED)
    assert body["ok"] is (done.returncode == EXIT_OK)
    assert set(body["checks"][0]) == {"name", "ok", "detail", "fix"}


def test_the_example_in_installing_md_is_what_the_doctor_prints(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "installing.md").read_text(encoding="utf-8")
    marked = re.search(r"<!-- begin doctor-example -->\n```\n(.*?)```\n<!-- end doctor-example -->",
                       doc, re.S)  # fmt: skip
    assert marked
    # The situation it shows: a BME280 at 0x76, no SCD4x, Bluetooth present but not needed.
    (tmp_path / "sys/class/bluetooth/hci0").mkdir(parents=True)
    results = [
        check_sensor(device("climate", "bme280", 0x76), lambda n: SimBus({0x76: SimBME280()})),
        check_sensor(device("co2", "scd4x"), lambda n: SimBus()),
        check_bluetooth(False, read_boot_config(tmp_path), make_host(tmp_path)),
    ]
    printed = {" ".join(line.split()) for line in render(results, "").splitlines()}
    for line in marked.group(1).splitlines():
        assert " ".join(line.split()) in printed, line


def test_a_missing_config_says_where_the_installed_one_is(tmp_path: Path) -> None:
    missing = run(tmp_path / "nowhere.toml", host=make_host(tmp_path)).results[0]
    assert missing.ok is False and missing.detail.endswith("nowhere.toml: no such file")
    assert "--config" in missing.fix and "/etc/roomagent/roomagent.toml" in missing.fix

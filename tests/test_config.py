from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.config import schema as config
from agent.config.schema import ConfigError

REPO = Path(__file__).resolve().parent.parent

MINIMAL = """
[node]
id = "room-1"
[broker]
host = "broker.example"
"""


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_every_shipped_config_is_valid() -> None:
    files = sorted((REPO / "firmware_configs").glob("*.toml"))
    assert files
    for f in files:
        config.load(f)


def test_defaults(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, MINIMAL))
    assert cfg.node.base_topic == "roomagent/room-1"
    assert cfg.broker.port == 1883 and cfg.broker.protocol == "5" and cfg.broker.tls is None
    assert cfg.buffer.path == Path("/var/lib/roomagent/buffer.sqlite")
    assert cfg.devices == ()


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        cfg.node.id = "other"  # type: ignore[misc]


DEVICES = """
[[devices]]
name = "a"
driver = "bme280"
interval = 5
[[devices]]
name = "b"
driver = "bmp280"
address = 0x77
interval = 5
"""

BAD = [
    ("[node]\n", "node.id: is required"),
    ('[node]\nid = "room 1"\n', "node.id: must be 1-64 letters"),
    ('[node]\nid = "r"\nsimulate = "yes"\n', "node.simulate: must be true or false, got 'yes'"),
    ('[node]\nid = "r"\ncolour = 1\n', "node.colour: unknown key"),
    (
        '[node]\nid = "r"\nbase_topic = "a/+/b"\n',
        "node.base_topic: must be a topic without wildcards",
    ),
    ('[node]\nid = "r"\n[broker]\nport = 0\n', "broker.port: must be 1..65535, got 0"),
    (
        '[node]\nid = "r"\n[broker]\nprotocol = "4"\n',
        "broker.protocol: must be one of '5', '3.1.1'",
    ),
    (
        '[node]\nid = "r"\n[broker]\npassword_file = "x"\n',
        "broker.password_file: needs broker.username",
    ),
    ('[node]\nid = "r"\n[broker.tls]\nca = "missing.pem"\n', "broker.tls.ca: no such file"),
    ('[node]\nid = "r"\n[buffer]\ndurability = "fast"\n', "buffer.durability: must be one of"),
    ('[node]\nid = "r"\n[buffer]\nmax_rows = 10\n', "buffer.max_rows: must be ≥ 100 rows, got 10"),
    (
        '[node]\nid = "r"\n' + DEVICES + '[[devices]]\ndriver = "bme280"\ninterval = 0\n',
        "devices[2].interval: must be ≥ 1 s, got 0",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "bme281"\ninterval = 5\n',
        "devices[0].driver: unknown driver 'bme281' - did you mean 'bme280'? (known: bh1750, "
        "bme280, bmp280, em24, ina219",
    ),
    ('[node]\nid = "r"\n[[devices]]\ndriver = "bme280"\n', "devices[0].interval: is required"),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "bme280"\ninterval = 5\naddress = 0x90\n',
        "devices[0].address: must be 3..119, got 144",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "bme280"\ninterval = 5\n[devices.options]\n'
        "oversampling_pressure = 3\n",
        "devices[0].options: oversampling_pressure must be one of",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "bme280"\ninterval = 5\n[devices.options]\n'
        'oversampling_pressure = "x"\n',
        "devices[0].options: option 'oversampling_pressure' must be int",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\nname = "agent"\ndriver = "bme280"\ninterval = 5\n',
        "devices[0].name: 'agent' is reserved",
    ),
    (
        '[node]\nid = "r"\n' + DEVICES.replace('name = "b"', 'name = "a"'),
        "devices[1].name: 'a' is already used by devices[0]",
    ),
    (
        '[node]\nid = "r"\n' + DEVICES.replace("address = 0x77", "address = 0x76"),
        "devices[1].address: bus 1 address 0x76 is already used by devices[0]",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "bme280"\ninterval = 5\nunavailable_after = 0\n',
        "devices[0].unavailable_after: must be 1..1000, got 0",
    ),
    (
        '[node]\nid = "r"\n' + DEVICES.replace('name = "b"', 'name = "b"\ncompensate_from = "a"'),
        "devices[1].compensate_from: driver 'bmp280' takes no compensation",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "sgp40"\ninterval = 1\ncompensate_from = "x"\n',
        "devices[0].compensate_from: no other device named 'x' (devices: none)",
    ),
    (
        '[node]\nid = "r"\n' + DEVICES + '[[devices]]\ndriver = "sgp40"\ninterval = 1\n'
        'compensate_from = "b"\n',
        "devices[2].compensate_from: 'b' (bmp280) does not measure humidity, which sgp40 needs",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "scd4x"\ninterval = 30\ntimeout = 20\n'
        "[devices.options]\nlow_power = true\n",
        "devices[0].timeout: must be ≥ 72.5 s: a healthy scd4x with these options may take",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "scd4x"\ninterval = 2\n',
        "devices[0].interval: the SCD4x makes one measurement every 5 s",
    ),
    (
        '[node]\nid = "r"\n[[devices]]\ndriver = "sgp40"\ninterval = 5\n',
        "devices[0].interval:",
    ),
    ('devices = 3\n[node]\nid = "r"\n', "devices: must be an array of tables"),
    ("[node\n", "not valid TOML"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m for _, m in BAD])
def test_bad_config_names_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text, "demo.toml")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_world_readable_secrets_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    path = write(tmp_path, MINIMAL + 'username = "u"\npassword_file = "password"\n')
    with pytest.raises(
        ConfigError, match=r"broker\.password_file: .* is world-readable; chmod 600"
    ):
        config.load(path)
    secret.chmod(0o600)
    assert config.load(path).broker.password_file == secret


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nid = "r"\nstate_dir = "state"\n')
    assert config.load(path).buffer.path == tmp_path / "state" / "buffer.sqlite"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)  # fmt: skip


def test_check_config_cli_exit_status(tmp_path: Path) -> None:
    good = run_cli("check-config", str(REPO / "firmware_configs" / "demo.toml"))
    assert good.returncode == 0, good.stderr
    assert "demo-room" in good.stdout
    bad = write(tmp_path, '[node]\nid = "r"\n' + DEVICES + '[[devices]]\ndriver = "bme280"\n'
                'interval = 0\n', "demo.toml")  # fmt: skip
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert f"{bad}: devices[2].interval: must be ≥ 1 s, got 0" in result.stderr


def test_run_with_bad_config_exits_2_before_starting(tmp_path: Path) -> None:
    bad = write(tmp_path, "[node]\n", "demo.toml")
    result = run_cli("run", str(bad))
    assert result.returncode == 2
    assert f"{bad}: node.id: is required" in result.stderr
    assert not (tmp_path / "buffer.sqlite").exists()


def test_default_timeout_covers_the_drivers_longest_healthy_read(tmp_path: Path) -> None:
    # SCD4x low-power: up to two samples of 30 s x 1.2 plus a 0.5 s stop = 72.5 s; 1.5 x that.
    path = write(tmp_path, '[node]\nid = "r"\n[[devices]]\ndriver = "scd4x"\ninterval = 30\n'
                 "[devices.options]\nlow_power = true\n")  # fmt: skip
    assert config.load(path).devices[0].timeout == 1.5 * 72.5
    path = write(tmp_path, '[node]\nid = "r"\n[[devices]]\ndriver = "bme280"\ninterval = 5\n')
    assert config.load(path).devices[0].timeout == 10.0


def test_a_whole_number_is_accepted_for_a_float_option(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nid = "r"\n[[devices]]\ndriver = "scd4x"\ninterval = 5\n'
                 "[devices.options]\ntemperature_offset = 4\n")  # fmt: skip
    assert config.load(path).devices[0].options["temperature_offset"] == 4

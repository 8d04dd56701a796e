"""`roomagent register` against a real HTTPS server (http.server in a thread, TLS with a CA and
server certificate made by openssl): what the node sends, retries while offline, refusals, and
a config or credentials received that are validated before anything is written."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import __version__
from agent.config import schema as config_mod
from agent.tools.registration import RegistrationError, identity, register, retry_delays
from tests.conftest import REPO
from tests.mqtt_fixtures import free_port, make_certificates
from tests.provision_support import Inventory


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def inventory(certs: dict[str, Path]) -> Iterator[Inventory]:
    inv = Inventory(free_port())
    yield inv
    inv.stop()


def node_dir(tmp_path: Path, url: str, ca: Path, extra: str = "") -> Path:
    """/etc/roomagent as install.sh leaves it: the config, a token, both 0640."""
    d = tmp_path / "etc-roomagent"
    d.mkdir()
    token = d / "registration-token"
    token.write_text("s3cret-token\n")
    token.chmod(0o640)
    (d / "inventory-ca.crt").write_bytes(ca.read_bytes())
    config = d / "roomagent.toml"
    config.write_text(
        f"""[node]
id = "room-a"
[broker]
host = "mqtt.example"
[registration]
url = "{url}"
token_file = "registration-token"
ca = "inventory-ca.crt"
retry_min = 5
retry_max = 30
attempts = 4
{extra}
[[devices]]
name = "climate"
driver = "bme280"
interval = 5
"""
    )
    config.chmod(0o640)
    return d


def fake_root(tmp_path: Path) -> Path:
    """The files identity() reads on a Pi 4: the device tree model (NUL-terminated, as the
    kernel exposes it) and /sys/class/net/<if>/address."""
    root = tmp_path / "root"
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\x00")
    for name, mac in (("lo", "00:00:00:00:00:00"), ("wlan0", "DC:A6:32:00:00:02"),
                      ("eth0", "dc:a6:32:00:00:01")):  # fmt: skip
        (root / "sys/class/net" / name).mkdir(parents=True)
        (root / "sys/class/net" / name / "address").write_text(mac + "\n")
    return root


def tree(d: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mode & 0o777) for p in d.iterdir()}


def test_registers_with_id_model_mac_version_and_token(
    tmp_path: Path, certs: dict[str, Path], inventory: Inventory
) -> None:
    inventory.start(certs)
    d = node_dir(tmp_path, inventory.url, certs["ca.crt"])
    cfg = config_mod.load(d / "roomagent.toml")
    outcome = register(cfg, root=fake_root(tmp_path), sleep=pytest.fail)
    assert outcome.attempts == 1 and not outcome.config_written
    path, headers, body = inventory.requests[0]
    assert path == "/api/nodes"
    assert headers["Authorization"] == "Bearer s3cret-token"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "id": "room-a",
        "model": "Raspberry Pi 4 Model B Rev 1.5",
        "mac": "dc:a6:32:00:00:01",  # eth0 first, as written in sysfs
        "version": __version__,
        "config_sha256": hashlib.sha256((d / "roomagent.toml").read_bytes()).hexdigest(),
    }


def test_identity_without_ethernet_takes_wifi_and_without_device_tree_says_unknown(
    tmp_path: Path,
) -> None:
    root = fake_root(tmp_path)
    (root / "sys/class/net/eth0/address").unlink()
    (root / "proc/device-tree/model").unlink()
    ident = identity("room-a", root)
    assert ident.mac == "dc:a6:32:00:00:02" and ident.model == "unknown"


def test_backoff_doubles_to_the_maximum_plus_jitter() -> None:
    reg = config_mod.RegistrationConfig("https://x", retry_min=5, retry_max=30, attempts=6)
    assert retry_delays(reg, lambda: 0.0) == [5, 10, 20, 30, 30]
    assert retry_delays(reg, lambda: 1.0) == [7.5, 15, 30, 45, 45]  # up to half again


def test_offline_retries_with_backoff_until_the_inventory_answers(
    tmp_path: Path, certs: dict[str, Path], inventory: Inventory
) -> None:
    """Nothing listens on the port at first (the site network is not up); the server starts
    during the second wait, and the third attempt registers."""
    d = node_dir(tmp_path, inventory.url, certs["ca.crt"])
    cfg = config_mod.load(d / "roomagent.toml")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            inventory.start(certs)

    outcome = register(cfg, root=fake_root(tmp_path), sleep=sleep, rng=lambda: 0.0)
    assert outcome.attempts == 3 and waits == [5, 10] and len(inventory.requests) == 1


def test_gives_up_after_the_configured_attempts(tmp_path: Path, certs: dict[str, Path]) -> None:
    d = node_dir(tmp_path, f"https://localhost:{free_port()}/api/nodes", certs["ca.crt"])
    cfg = config_mod.load(d / "roomagent.toml")
    waits: list[float] = []
    with pytest.raises(RegistrationError, match=r"cannot reach .*gave up after 4 attempts"):
        register(cfg, root=fake_root(tmp_path), sleep=waits.append, rng=lambda: 0.0)
    assert waits == [5, 10, 20]


def test_server_errors_are_retried_and_refusals_are_not(
    tmp_path: Path, certs: dict[str, Path], inventory: Inventory
) -> None:
    inventory.start(certs)
    d = node_dir(tmp_path, inventory.url, certs["ca.crt"])
    cfg = config_mod.load(d / "roomagent.toml")
    root = fake_root(tmp_path)
    inventory.replies = [(503, b"busy"), (204, b"")]
    waits: list[float] = []
    assert register(cfg, root=root, sleep=waits.append).attempts == 2
    assert len(waits) == 1
    inventory.replies = [(401, b"bad token")]
    waits.clear()
    with pytest.raises(RegistrationError, match="refused the registration: HTTP 401: bad token"):
        register(cfg, root=root, sleep=waits.append)
    assert waits == []


def test_an_inventory_certificate_from_another_ca_is_refused_at_once(
    tmp_path: Path, certs: dict[str, Path], inventory: Inventory
) -> None:
    inventory.start(certs)
    other = make_certificates(tmp_path / "other")
    d = node_dir(tmp_path, inventory.url, other["ca.crt"])
    cfg = config_mod.load(d / "roomagent.toml")
    with pytest.raises(RegistrationError, match="TLS verification failed"):
        register(cfg, root=fake_root(tmp_path), sleep=pytest.fail)
    assert inventory.requests == []


def new_config(url: str, extra: str = "") -> str:
    return f"""[node]
id = "room-a"
name = "Room A (from the inventory)"
[broker]
host = "mqtt.example"
username = "room-a"
password_file = "mqtt-password"
[broker.tls]
ca = "broker-ca.crt"
[registration]
url = "{url}"
token_file = "registration-token"
ca = "inventory-ca.crt"
{extra}
[[devices]]
name = "climate"
driver = "bme280"
interval = 5
"""


def test_config_and_credentials_received_are_validated_then_written_0640(
    tmp_path: Path, certs: dict[str, Path], inventory: Inventory
) -> None:
    inventory.start(certs)
    d = node_dir(tmp_path, inventory.url, certs["ca.crt"])
    cfg = config_mod.load(d / "roomagent.toml")
    reply = {
        "config": new_config(inventory.url),
        "credentials": {"mqtt-password": "pw-1\n", "broker-ca.crt": certs["ca.crt"].read_text()},
    }
    inventory.replies = [(200, json.dumps(reply).encode())]
    outcome = register(cfg, root=fake_root(tmp_path), sleep=pytest.fail)
    assert outcome.config_written and set(outcome.credentials_written) == {
        "mqtt-password",
        "broker-ca.crt",
    }
    after = tree(d)
    assert after["roomagent.toml"] == (reply["config"].encode(), 0o640)
    assert after["mqtt-password"] == (b"pw-1\n", 0o640)
    assert after["broker-ca.crt"][1] == 0o640
    assert not [n for n in after if n.startswith(".register-")]  # staging removed
    loaded = config_mod.load(d / "roomagent.toml")
    assert loaded.node.name == "Room A (from the inventory)"
    assert loaded.broker.password_file == d / "mqtt-password"


@pytest.mark.parametrize(
    "reply, reason",
    [
        ({"config": "[node]\nid = 'room-b'\n"}, "it is for node 'room-b', this node is 'room-a'"),
        ({"config": "[node]\nid = 'room-a'\ncolour = 1\n"}, "node.colour: unknown key"),
        # The new config names a password file that neither exists nor came with it.
        ({"config": None}, "broker.tls.ca: no such file: {d}/broker-ca.crt"),
        ({"credentials": {"../evil": "x"}}, "must be a plain file name"),
        ({"credentials": {"roomagent.toml": "x"}}, "must be a plain file name"),
        ({"credentials": {"token": 5}}, "must be text"),
        ({"config": "x", "extra": 1}, "unknown keys: extra"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_a_bad_reply_is_refused_with_the_reason_and_changes_nothing(
    tmp_path: Path,
    certs: dict[str, Path],
    inventory: Inventory,
    reply: Any,
    reason: str,
) -> None:
    inventory.start(certs)
    d = node_dir(tmp_path, inventory.url, certs["ca.crt"])
    cfg = config_mod.load(d / "roomagent.toml")
    if isinstance(reply, dict) and reply.get("config", "") is None:
        reply = {"config": new_config(inventory.url)}  # references files it does not send
    before = tree(d)
    inventory.replies = [(200, json.dumps(reply).encode())]
    with pytest.raises(RegistrationError) as e:
        register(cfg, root=fake_root(tmp_path), sleep=pytest.fail)
    assert reason.format(d=d) in str(e.value)
    assert tree(d) == before


def test_register_command_without_registration_section_does_nothing(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[node]\nid = "room-a"\n')
    result = subprocess.run(
        [sys.executable, "-m", "agent", "register", "--config", str(config)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and "nothing to do" in result.stdout, result


def test_register_command_reports_success(
    tmp_path: Path, certs: dict[str, Path], inventory: Inventory
) -> None:
    inventory.start(certs)
    d = node_dir(tmp_path, inventory.url, certs["ca.crt"])
    result = subprocess.run(
        [sys.executable, "-m", "agent", "register", "--config", str(d / "roomagent.toml")],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result
    assert f"registered 'room-a' with {inventory.url}; nothing to change" in result.stdout
    assert json.loads(inventory.requests[0][2])["id"] == "room-a"


@pytest.mark.parametrize(
    "section, error",
    [
        ('url = "http://inventory.example/api"', "registration.url: must be an https:// URL"),
        ('url = "https://x"\nattempts = 0', "registration.attempts: must be 1..1000"),
        ('url = "https://x"\nretry_min = 60\nretry_max = 10', "retry_max: must be ≥ retry_min"),
        ('url = "https://x"\ntoken_file = "nope"', "registration.token_file: no such file"),
        ('url = "https://x"\nretries = 3', "registration.retries: unknown key"),
    ],
)
def test_registration_section_is_validated(tmp_path: Path, section: str, error: str) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\nid = "room-a"\n[registration]\n{section}\n')
    with pytest.raises(config_mod.ConfigError, match=error.replace(".", r"\.")):
        config_mod.load(config)


def test_world_readable_token_is_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t\n")
    (tmp_path / "token").chmod(0o644)
    config = tmp_path / "node.toml"
    config.write_text('[node]\nid = "a"\n[registration]\nurl = "https://x"\ntoken_file = "token"\n')
    with pytest.raises(config_mod.ConfigError, match="world-readable; chmod 600 it"):
        config_mod.load(config)

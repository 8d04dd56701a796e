"""scripts/provision.py against directories laid out like freshly flashed Raspberry Pi OS boot
partitions (tests/data/boot/README.md says where each layout comes from): every file it
writes, checked with the programs that will read it (cloud-init's schema and network parser,
netplan, systemd-analyze, bash, shellcheck); then the first boot installs into a temporary
root from what is on the card.

Expected values come from the sources: the kernel arguments Raspberry Pi Imager adds
(rpi-imager src/customization_generator.cpp and imagewriter), config.txt's documented syntax,
the WPA PSK test vectors of IEEE 802.11i-2004 Annex H.4.3.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agent.config import schema as config_mod
from agent.provision import ProvisionError
from agent.provision.boot import detect, edit_cmdline, enable_i2c_and_bluetooth
from agent.provision.cli import main as provision
from agent.provision.node import NodeSpec, compose
from agent.provision.osfiles import check_ssh_key, wpa_psk
from agent.provision.toml_write import dumps
from tests.mqtt_fixtures import free_port
from tests.provision_support import (
    BOOT_DATA,
    HOST_PYTHON,
    REPO,
    SYSTEM_PYTHON,
    DebianTools,
    Inventory,
    agent_wheel,
    card,
    check_installed,
    run_ok,
    shell_ok,
    tree,
    unit_verifies,
    wants,
)

# Independent of the Python version: run on one leg of CI (see .ci/run).
# One xdist worker runs this file: its session fixtures (the wheelhouse, the Debian tools
# cache, which two workers would download into at once) are made once.
pytestmark = [pytest.mark.one_leg, pytest.mark.xdist_group("provision")]

pytest_plugins = ("tests.provision_fixtures",)  # its fixtures: wheelhouse, ...

# IEEE 802.11i-2004, H.4.3 test vector 2 (the one the cards use) and vector 1.
IEEE_SSID, IEEE_PASSPHRASE = "ThisIsASSID", "ThisIsAPassword"
IEEE_PSK = "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
IEEE_PSK_1 = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
# What Imager appends to cmdline.txt to run firstrun.sh once (Bookworm mounts the boot
# partition at /boot/firmware).
FIRSTRUN_ARGS = (
    "systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot "
    "systemd.unit=kernel-command-line.target"
)
SCRIPTS = ("install.sh", "firstboot.sh", "ready_check.py", "roomagent.service",
           "roomagent-firstboot.service")  # fmt: skip

ROOM = """\
# A small meeting room: temperature and humidity, light. I2C bus 1.
[node]
id = "meeting-room"
name = "Meeting room"

[broker]
host = "mqtt.site.example"

[broker.tls]
ca = "/etc/roomagent/ca.crt"

[[devices]]
name = "climate"
driver = "sht4x"
interval = 10

[[devices]]
name = "light"
driver = "bh1750"
address = 0x23
interval = 10
"""


def expected_config(profile: Path) -> str:
    """The node config as docs/config.md describes it, written out by hand."""
    return textwrap.dedent(f"""\
        # roomagent node room-2-14, written by scripts/provision.py from {profile}.
        # Change those files and provision again rather than editing this one;
        # the profile's comments say what each part is for. Keys: docs/config.md.

        [node]
        id = "room-2-14"
        name = "Room 2.14"
        state_dir = "/var/lib/roomagent"

        [broker]
        host = "mqtt.site.example"
        password_file = "mqtt-password"
        username = "room-2-14"

        [broker.tls]
        ca = "ca.crt"

        [[devices]]
        name = "climate"
        driver = "sht4x"
        interval = 10

        [[devices]]
        name = "light"
        driver = "bh1750"
        address = 0x23
        interval = 10
        """)


@pytest.fixture
def inputs(
    tmp_path: Path, ssh_key: Path, wheelhouse: Path, certs: dict[str, Path]
) -> dict[str, Path]:
    d = tmp_path / "laptop"
    d.mkdir()
    (d / "room.toml").write_text(ROOM)
    (d / "password").write_text("room-2-14-secret\n")
    (d / "psk").write_text(IEEE_PASSPHRASE + "\n")
    return {"room": d / "room.toml", "ca": certs["ca.crt"], "password": d / "password",
            "psk": d / "psk", "key": ssh_key, "wheelhouse": wheelhouse}  # fmt: skip


def args(boot: Path, inputs: dict[str, Path], *extra: str, agent: bool = True) -> list[str]:
    wheels = ["--agent-wheel", str(agent_wheel(inputs["wheelhouse"]))] if agent else []
    return [
        str(boot), "--room", str(inputs["room"]), "--node-id", "room-2-14", "--name", "Room 2.14",
        "--ca", str(inputs["ca"]), "--password-file", str(inputs["password"]),
        "--user", "installer", "--ssh-key", str(inputs["key"]),
        "--wifi-ssid", IEEE_SSID, "--wifi-psk-file", str(inputs["psk"]), "--country", "GB",
        "--wheelhouse", str(inputs["wheelhouse"]), "--offline", *wheels,
        "--arch", "x86_64", "--python-version", HOST_PYTHON, *extra,
    ]  # fmt: skip


def provisioned(tmp_path: Path, generation: str, inputs: dict[str, Path], *extra: str) -> Path:
    boot = card(tmp_path, generation)
    assert provision(args(boot, inputs, *extra)) == 0
    return boot


def check_payload(boot: Path, inputs: dict[str, Path]) -> set[str]:
    """roomagent/ on the card, file by file; returns the paths checked."""
    p = boot / "roomagent"
    checked = set()
    for name in SCRIPTS:
        assert (p / name).read_bytes() == (REPO / "scripts" / name).read_bytes(), name
        checked.add(f"roomagent/{name}")
    assert (p / "install.sh").stat().st_mode & 0o755 == 0o755
    for doc in (REPO / "docs").glob("*.md"):
        assert (p / "docs" / doc.name).read_bytes() == doc.read_bytes()
        checked.add(f"roomagent/docs/{doc.name}")
    readme = (p / "README.txt").read_text()
    assert "node room-2-14" in readme and "etc/ holds secrets" in readme
    checked.add("roomagent/README.txt")
    assert (p / "etc/roomagent.toml").read_text() == expected_config(inputs["room"].resolve())
    assert (p / "etc/ca.crt").read_bytes() == inputs["ca"].read_bytes()
    assert (p / "etc/mqtt-password").read_bytes() == inputs["password"].read_bytes()
    for name in ("roomagent.toml", "ca.crt", "mqtt-password"):
        assert (p / "etc" / name).stat().st_mode & 0o777 == 0o600, name
        checked.add(f"roomagent/etc/{name}")
    # The card's /etc/roomagent loads as the agent will load it on the Pi.
    cfg = config_mod.load(p / "etc/roomagent.toml")
    assert cfg.node.id == "room-2-14" and cfg.broker.password_file == p / "etc/mqtt-password"
    assert cfg.broker.tls is not None and cfg.broker.tls.ca == p / "etc/ca.crt"
    wheels = {w.name: w.read_bytes() for w in inputs["wheelhouse"].glob("*.whl")}
    on_card = {w.name: w.read_bytes() for w in (p / "wheels").iterdir()}
    assert on_card == wheels  # every dependency and pip, nothing else
    checked |= {f"roomagent/wheels/{n}" for n in wheels}
    return checked


def test_bookworm_card_gets_firstrun_and_everything_else(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    boot = provisioned(tmp_path, "bookworm", inputs)
    original = BOOT_DATA / "bookworm"
    checked = check_payload(boot, inputs)

    # config.txt: the image's commented `#dtparam=i2c_arm=on` (unfiltered part) is switched
    # on; nothing else changes, and no overlay disables Bluetooth.
    config_txt = (original / "config.txt").read_text()
    assert config_txt.count("\n#dtparam=i2c_arm=on\n") == 1
    assert (boot / "config.txt").read_text() == config_txt.replace(
        "\n#dtparam=i2c_arm=on\n", "\ndtparam=i2c_arm=on\n"
    )
    cmdline = (original / "cmdline.txt").read_text().rstrip("\n")
    assert (boot / "cmdline.txt").read_text() == (
        f"{cmdline} cfg80211.ieee80211_regdom=GB {FIRSTRUN_ARGS}\n"
    )
    firstrun = boot / "firstrun.sh"
    shell_ok(firstrun)
    text = firstrun.read_text()
    key = inputs["key"].read_text().strip()
    lines = [line.strip() for line in text.splitlines()]
    for line in (
        "NEW_HOSTNAME=room-2-14",
        "NEW_USER=installer",
        f"SSH_KEY='{key}'",
        f"WIFI_SSID={IEEE_SSID}",
        f"WIFI_PSK={IEEE_PSK}",
        "WIFI_COUNTRY=GB",
        'bash "$BOOT/roomagent/firstboot.sh" --arm',
        'rm -f "$BOOT/firstrun.sh"',
    ):
        assert line in lines, line
    for f in boot.rglob("*"):  # only the derived PSK is on the card, never the passphrase
        assert not f.is_file() or IEEE_PASSPHRASE.encode() not in f.read_bytes(), f
    # It holds the Wi-Fi key: owner only, like the other secrets (issue 18; was 0755).
    assert firstrun.stat().st_mode & 0o777 == 0o700
    checked |= {"config.txt", "cmdline.txt", "firstrun.sh"}
    # Nothing else: every file on the card is the image's or checked above.
    assert set(tree(boot)) == set(tree(original)) | checked


def test_trixie_card_gets_a_valid_cloud_init_seed(
    tmp_path: Path, inputs: dict[str, Path], debian_tools: DebianTools
) -> None:
    boot = provisioned(tmp_path, "trixie", inputs)
    original = BOOT_DATA / "trixie"
    checked = check_payload(boot, inputs)
    config_txt = (original / "config.txt").read_text()
    assert (boot / "config.txt").read_text() == config_txt.replace(
        "\n#dtparam=i2c_arm=on\n", "\ndtparam=i2c_arm=on\n"
    )
    cmdline = (original / "cmdline.txt").read_text().rstrip("\n")
    assert (boot / "cmdline.txt").read_text() == f"{cmdline} cfg80211.ieee80211_regdom=GB\n"
    assert not (boot / "firstrun.sh").exists()

    # user-data: cloud-init's own schema check, then what a YAML parser reads in it.
    result = debian_tools.cloud_init("schema", "--config-file", str(boot / "user-data"), cwd=boot)
    assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result
    parsed = json.loads(run_ok([SYSTEM_PYTHON, "-c", "import json, sys, yaml; "
                                "print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                                str(boot / "user-data")]).stdout)  # fmt: skip
    key = inputs["key"].read_text().strip()
    assert parsed["hostname"] == "room-2-14" and parsed["ssh_pwauth"] is False
    (user,) = parsed["users"]
    assert user["name"] == "installer" and user["ssh_authorized_keys"] == [key]
    assert user["lock_passwd"] is True and "i2c" in user["groups"]
    assert ["bash", "/boot/firmware/roomagent/firstboot.sh", "--arm", "--now"] in parsed["runcmd"]

    # network-config: cloud-init turns it into netplan, and netplan into NetworkManager
    # connections, as on the Pi (pi-gen's /lib/netplan/00-network-manager-all.yaml).
    out = tmp_path / "netplan"
    result = debian_tools.cloud_init("devel", "net-convert", "-p", str(boot / "network-config"),
                                     "-k", "yaml", "-D", "debian", "-O", "netplan", "-d", str(out),
                                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result
    (out / "lib/netplan").mkdir(parents=True)
    (out / "lib/netplan/00-network-manager-all.yaml").write_text(
        "network:\n  version: 2\n  renderer: NetworkManager\n"
    )
    for f in (out / "lib/netplan").iterdir():
        f.chmod(0o600)
    (out / "etc/netplan/50-cloud-init.yaml").chmod(0o600)
    result = debian_tools.netplan_generate(out)
    assert result.returncode == 0, result
    connections = out / "run/NetworkManager/system-connections"
    wifi = (connections / f"netplan-wlan0-{IEEE_SSID}.nmconnection").read_text()
    assert f"ssid={IEEE_SSID}" in wifi and f"psk={IEEE_PSK}" in wifi
    assert "method=auto" in (connections / "netplan-eth0.nmconnection").read_text()
    assert "iw reg set GB" in (out / "run/systemd/system/netplan-regdom.service").read_text()

    meta = (boot / "meta-data").read_text()
    assert re.search(r"^instance-id: roomagent-room-2-14-[0-9a-f]{12}$", meta, re.MULTILINE)
    assert "\ndsmode: local\n" in meta and "\nlocal-hostname: room-2-14\n" in meta
    checked |= {"config.txt", "cmdline.txt", "user-data", "network-config", "meta-data"}
    assert set(tree(boot)) == set(tree(original)) | checked


def test_the_schema_check_used_above_rejects_a_broken_user_data(
    tmp_path: Path, debian_tools: DebianTools
) -> None:
    bad = tmp_path / "user-data"
    bad.write_text("#cloud-config\nhostname: 5\nruncmd: 3\n")
    result = debian_tools.cloud_init("schema", "--config-file", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and "runcmd: 3 is not of type 'array'" in result.stderr


def test_ethernet_only_writes_no_wifi(tmp_path: Path, inputs: dict[str, Path]) -> None:
    boot = card(tmp_path, "trixie")
    argv = args(boot, inputs)
    i = argv.index("--wifi-ssid")
    del argv[i : i + 4]  # --wifi-ssid IEEE --wifi-psk-file psk
    assert provision([*argv, "--ethernet-only"]) == 0
    network = (boot / "network-config").read_text()
    assert "wifis" not in network and "eth0" in network
    assert (boot / "network-config").stat().st_mode & 0o777 == 0o644  # no secret in it


def test_the_wifi_key_in_network_config_is_owner_only(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    boot = provisioned(tmp_path, "trixie", inputs)
    assert IEEE_PSK in (boot / "network-config").read_text()
    assert (boot / "network-config").stat().st_mode & 0o777 == 0o600


def test_running_twice_gives_the_same_card_byte_for_byte(
    tmp_path: Path, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The second time without --agent-wheel, so the agent's wheel is built again from this
    checkout: its zip timestamps differ, its contents do not, and the card keeps the first."""
    boot = card(tmp_path, "bookworm")
    assert provision(args(boot, inputs)) == 0
    first = tree(boot)
    capsys.readouterr()
    assert provision(args(boot, inputs, agent=False)) == 0
    assert tree(boot) == first
    assert "0 created, 0 updated, 0 removed" in capsys.readouterr().out


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EPERM, errno.ENOTSUP, errno.EINVAL])
def test_a_card_whose_filesystem_refuses_chmod_is_written_whole(
    tmp_path: Path,
    inputs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    code: int,
) -> None:
    """A FUSE FAT mount (fusefat) answers chmod with ENOSYS, the kernel's vfat with EPERM:
    neither may stop the card half written. The second run, where chmod works, finds every
    file already there and only sets the modes."""
    reference = provisioned(tmp_path / "reference", "bookworm", inputs)
    boot = card(tmp_path, "bookworm")
    real_chmod = os.chmod
    refused = []

    def chmod(path: Any, mode: int, *a: Any, **kw: Any) -> None:
        if str(path).startswith(str(boot)):
            refused.append(path)
            raise OSError(code, os.strerror(code), str(path))
        real_chmod(path, mode, *a, **kw)

    monkeypatch.setattr(os, "chmod", chmod)
    assert provision(args(boot, inputs)) == 0
    assert refused, "the test must have refused some chmod calls"
    contents = {k: v[0] for k, v in tree(boot).items()}
    assert contents == {k: v[0] for k, v in tree(reference).items()}
    monkeypatch.setattr(os, "chmod", real_chmod)
    capsys.readouterr()
    assert provision(args(boot, inputs)) == 0
    assert "0 created, 0 updated, 0 removed" in capsys.readouterr().out
    assert tree(boot) == tree(reference)


def test_a_card_with_a_real_write_error_stops_with_it(
    tmp_path: Path, inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only chmod's 'not supported here' answers are shrugged off: an I/O error on the card
    is reported (exit status 1, no traceback) and the next run finishes the card."""
    boot = card(tmp_path, "bookworm")
    real_chmod = os.chmod

    def chmod(path: Any, mode: int, *a: Any, **kw: Any) -> None:
        if str(path).startswith(str(boot)):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        real_chmod(path, mode, *a, **kw)

    monkeypatch.setattr(os, "chmod", chmod)
    assert provision(args(boot, inputs)) == 1
    monkeypatch.setattr(os, "chmod", real_chmod)
    assert provision(args(boot, inputs)) == 0
    reference = provisioned(tmp_path / "reference", "bookworm", inputs)
    assert tree(boot) == tree(reference)


def test_a_second_run_with_other_settings_leaves_no_stale_files(
    tmp_path: Path, inputs: dict[str, Path]
) -> None:
    boot = provisioned(tmp_path, "trixie", inputs)
    argv = args(boot, inputs)
    i = argv.index("--password-file")
    del argv[i : i + 2]
    host = 'host = "mqtt.site.example"'
    inputs["room"].write_text(ROOM.replace(host, f'{host}\nusername = "x"'))
    assert provision(argv) == 0
    assert not (boot / "roomagent/etc/mqtt-password").exists()
    assert (boot / "cmdline.txt").read_text().count("cfg80211.ieee80211_regdom=") == 1


def test_dry_run_lists_every_file_and_writes_nothing(
    tmp_path: Path, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    boot = card(tmp_path, "bookworm")
    before = tree(boot)
    # No agent wheel and an empty wheelhouse, offline: a dry run builds and downloads nothing
    # (it used to fetch ~11 MB and fail without a wheel built for the Pi).
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    argv = args(boot, {**inputs, "wheelhouse": empty}, "--dry-run", agent=False)
    assert provision(argv) == 0
    assert tree(boot) == before
    out = capsys.readouterr().out
    assert "--dry-run: what would be written" in out
    assert re.search(r"update +config\.txt .*\n +-#dtparam=i2c_arm=on\n +\+dtparam=i2c_arm=on", out)
    assert re.search(r"create +firstrun\.sh .*mode 0700", out)
    assert re.search(r"create +roomagent/etc/mqtt-password .*mode 0600", out)
    assert "roomagent/wheels/" in out and "not built or downloaded in a dry run" in out
    assert "build" not in out.split("--dry-run")[0].lower()  # no wheel build was started


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "no config.txt, no cmdline.txt, no firmware or kernel"),
        ({"config.txt": "", "cmdline.txt": "x\n"}, "no firmware or kernel (start*.elf"),
        # The root file system of a card, not its boot partition.
        ({"etc/fstab": "", "boot/firmware/config.txt": ""}, "is not a Raspberry Pi boot partition"),
        ({"config.txt": "", "cmdline.txt": "x\n", "start.elf": "",
          "issue.txt": "Raspberry Pi reference 2023-05-03\n"}, "before Raspberry Pi OS Bookworm"),
    ],
)  # fmt: skip
def test_refuses_what_is_not_a_raspberry_pi_os_boot_partition(
    tmp_path: Path,
    inputs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    layout: dict[str, str],
    message: str,
) -> None:
    boot = tmp_path / "disk"
    boot.mkdir()
    for name, text in layout.items():
        (boot / name).parent.mkdir(parents=True, exist_ok=True)
        (boot / name).write_text(text)
    before = tree(boot)
    assert provision(args(boot, inputs)) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was written to the card" in err
    assert tree(boot) == before


@pytest.mark.parametrize(
    "change, message",
    [
        (("interval = 10", "interval = 0"), "devices[0].interval: must be ≥ 1 s, got 0"),
        (('driver = "sht4x"', 'driver = "sht99"'), "devices[0].driver: unknown driver 'sht99'"),
        (("[node]", "[node]\ncolour = 'red'"), "node.colour: unknown key"),
        (
            ("[node]", "[buffer]\npath = '/home/b.sqlite'\n[node]"),
            "buffer.path = '/home/b.sqlite': on a Pi the buffer must be under /var/lib/roomagent",
        ),
    ],
)
def test_a_bad_room_config_is_refused_before_the_card_is_touched(
    tmp_path: Path,
    inputs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    message: str,
) -> None:
    inputs["room"].write_text(ROOM.replace(*change, 1))
    boot = card(tmp_path, "trixie")
    before = tree(boot)
    assert provision(args(boot, inputs)) == 2
    err = capsys.readouterr().err
    assert message in err and str(inputs["room"].resolve()) in err
    assert tree(boot) == before


@pytest.mark.parametrize(
    "drop, add, message",
    [
        ("--ca", (), "broker.tls.ca = '/etc/roomagent/ca.crt' names a file on the Pi; give it "
                     "with --ca FILE"),
        ("--country", (), "Wi-Fi needs --country"),
        ("--ssh-key", ("--ssh-key", "{password}"), "not an OpenSSH public key"),
        ("--user", ("--user", "root"), "--user 'root'"),
        ("--name", ("--hostname", "Room_2"), "host name 'Room_2'"),
        ("--wifi-psk-file", ("--wifi-psk-file", "{short}"), "8 to 63 printable ASCII"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_naming_what_to_fix(
    tmp_path: Path,
    inputs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    drop: str,
    add: tuple[str, ...],
    message: str,
) -> None:
    (tmp_path / "short").write_text("1234567\n")
    boot = card(tmp_path, "bookworm")
    argv = args(boot, inputs)
    i = argv.index(drop)
    del argv[i : i + 2]
    argv += [a.format(password=inputs["password"], short=tmp_path / "short") for a in add]
    before = tree(boot)
    assert provision(argv) == 2
    assert message in capsys.readouterr().err
    assert tree(boot) == before


def test_inventory_maps_a_node_to_its_profile_with_site_settings(
    tmp_path: Path, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    (site / "rooms").mkdir(parents=True)
    shutil.copy(inputs["room"], site / "rooms" / "meeting-room.toml")
    shutil.copy(inputs["ca"], site / "ca.crt")
    shutil.copy(inputs["password"], site / "b.password")
    os.chmod(site / "b.password", 0o600)
    inventory = site / "site.toml"
    inventory.write_text(
        textwrap.dedent("""\
        [site]
        profiles = "rooms"
        country = "GB"
        user = "installer"
        ca = "ca.crt"
        [site.override.broker]
        host = "mqtt.townhall.example"

        [[nodes]]
        id = "room-a"
        profile = "meeting-room"

        [[nodes]]
        id = "room-b"
        profile = "meeting-room"
        name = "Room B"
        password_file = "b.password"
        [nodes.override.node]
        hold_unsynced = 60
        """)
    )
    boot = card(tmp_path, "trixie")
    argv = [str(boot), "--inventory", str(inventory), "--node", "room-b",
            "--ssh-key", str(inputs["key"]), "--ethernet-only",
            "--wheelhouse", str(inputs["wheelhouse"]), "--offline",
            "--agent-wheel", str(agent_wheel(inputs["wheelhouse"])),
            "--arch", "x86_64", "--python-version", HOST_PYTHON]  # fmt: skip
    assert provision(argv) == 0
    cfg = config_mod.load(boot / "roomagent/etc/roomagent.toml")
    assert (cfg.node.id, cfg.node.name, cfg.node.hold_unsynced) == ("room-b", "Room B", 60)
    assert cfg.broker.host == "mqtt.townhall.example" and cfg.broker.username == "room-b"
    text = (boot / "roomagent/etc/roomagent.toml").read_text()
    assert f"from {site / 'rooms' / 'meeting-room.toml'}, {inventory}" in text
    assert '"GB"' not in (boot / "network-config").read_text()  # Ethernet only
    assert (boot / "cmdline.txt").read_text().endswith(" cfg80211.ieee80211_regdom=GB\n")

    capsys.readouterr()
    assert provision([*argv[:3], "--node", "room-c", *argv[5:]]) == 2
    assert "no node 'room-c' in the inventory (nodes: room-a, room-b)" in capsys.readouterr().err
    inventory.write_text(inventory.read_text().replace("[site]", "[site]\nbroker = 1"))
    assert provision(argv) == 2
    assert "site.broker: unknown key" in capsys.readouterr().err


def test_the_profiles_placeholder_broker_is_refused(tmp_path: Path) -> None:
    profile = REPO / "firmware_configs" / "office.toml"
    assert 'host = "mqtt.example.org"' in profile.read_text()
    with pytest.raises(ProvisionError, match=r"broker\.host is the profile's placeholder "
                       r"'mqtt\.example\.org': give the site's broker with --broker"):  # fmt: skip
        compose(NodeSpec(profile, node_id="room-x"))


@pytest.mark.parametrize(
    "given, host, port",
    [("mqtt.site.lan", "mqtt.site.lan", None), ("mqtt.site.lan:8883", "mqtt.site.lan", 8883),
     ("10.0.0.5:1884", "10.0.0.5", 1884), ("[fd00::5]:8883", "fd00::5", 8883),
     ("fd00::5", "fd00::5", None)],
)  # fmt: skip
def test_broker_option_sets_the_node_configs_broker(
    tmp_path: Path, inputs: dict[str, Path], given: str, host: str, port: int | None
) -> None:
    boot = card(tmp_path, "bookworm")
    assert provision(args(boot, inputs, "--broker", given, "--dry-run", agent=False)) == 0
    broker = config_mod.tomllib.loads(_card_config(boot, inputs, given))["broker"]
    assert broker["host"] == host and broker.get("port") == port


def _card_config(boot: Path, inputs: dict[str, Path], given: str) -> str:
    from agent.provision.cli import broker_override

    creds = {"ca": inputs["ca"], "password_file": inputs["password"]}
    spec = NodeSpec(inputs["room"], node_id="room-2-14", overrides=broker_override(given),
                    credentials=creds)  # fmt: skip
    return compose(spec).config


@pytest.mark.parametrize(
    "given", ["", ":1883", "host:0", "host:99999", "host:x", "host:", "[fd00::5]x"]
)
def test_a_bad_broker_option_is_refused(
    tmp_path: Path, inputs: dict[str, Path], given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    boot = card(tmp_path, "bookworm")
    assert provision(args(boot, inputs, "--broker", given, "--dry-run", agent=False)) == 2
    assert "--broker must be HOST or HOST:PORT" in capsys.readouterr().err


def test_a_password_over_plain_tcp_needs_to_be_allowed(
    tmp_path: Path, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    boot = card(tmp_path, "bookworm")
    plain = tmp_path / "plain.toml"
    plain.write_text(ROOM.replace('[broker.tls]\nca = "/etc/roomagent/ca.crt"\n', ""))
    argv = args(boot, {**inputs, "room": plain}, "--dry-run", agent=False)
    i = argv.index("--ca")
    del argv[i : i + 2]
    assert provision(argv) == 2
    err = capsys.readouterr().err
    assert "password would cross the network in clear" in err and "--allow-plain-password" in err
    assert provision([*argv, "--allow-plain-password"]) == 0


def test_every_room_profile_composes_into_a_valid_node_config(tmp_path: Path) -> None:
    """The profiles in firmware_configs/ as provisioning uses them; credentials a profile
    names are given as files, as an installer would."""
    (tmp_path / "f").write_text("x\n")
    os.chmod(tmp_path / "f", 0o600)
    creds = {n: tmp_path / "f" for n in ("ca", "cert", "key", "password_file")}
    profiles = sorted((REPO / "firmware_configs").glob("*.toml"))
    assert profiles
    for profile in profiles:
        tls = "tls" in config_mod.tomllib.loads(profile.read_text()).get("broker", {})
        site = ({"broker": {"host": "mqtt.site.example"}},)  # as --broker gives it
        node = compose(NodeSpec(profile, node_id="room-x", credentials=creds if tls else {},
                                overrides=site))  # fmt: skip
        assert config_mod.tomllib.loads(node.config)["node"]["id"] == "room-x"


@pytest.mark.parametrize(
    "text, expected",
    [
        # The image's own: uncomment the unfiltered line.
        ("#dtparam=i2c_arm=on\n[cm4]\notg_mode=1\n[all]\n",
         "dtparam=i2c_arm=on\n[cm4]\notg_mode=1\n[all]\n"),
        # Already on (also as the `i2c` alias, or in a parameter list): unchanged.
        ("dtparam=audio=on,i2c=on\n", "dtparam=audio=on,i2c=on\n"),
        # Switched off: switched on in place, other parameters kept.
        ("dtparam=i2c_arm=off,spi=on\n", "dtparam=i2c_arm=on,spi=on\n"),
        # Only in a board filter, or commented there: append under [all] for every board.
        ("[pi4]\ndtparam=i2c_arm=on\n#dtparam=i2c_arm=on\n",
         "[pi4]\ndtparam=i2c_arm=on\n#dtparam=i2c_arm=on\n[all]\ndtparam=i2c_arm=on\n"),
        # Nothing: appended; after [all] no new filter is needed.
        ("arm_64bit=1\n[all]\n", "arm_64bit=1\n[all]\ndtparam=i2c_arm=on\n"),
        # Bluetooth turned off anywhere: commented out.
        ("dtparam=i2c_arm=on\ndtoverlay=disable-bt\n[pi3]\ndtoverlay=pi3-disable-bt\n",
         "dtparam=i2c_arm=on\n#dtoverlay=disable-bt\n[pi3]\n#dtoverlay=pi3-disable-bt\n"),
    ],
)  # fmt: skip
def test_config_txt_gets_i2c_and_keeps_bluetooth(text: str, expected: str) -> None:
    assert enable_i2c_and_bluetooth(text) == expected
    assert enable_i2c_and_bluetooth(expected) == expected  # idempotent


def test_cmdline_replaces_earlier_run_arguments_and_country() -> None:
    """A card Imager customised for Bookworm (its /boot/firstrun.sh path, a country)."""
    base = "console=tty1 root=PARTUUID=1-02 rootwait"
    imager_run = FIRSTRUN_ARGS.replace("/boot/firmware/", "/boot/")
    once = edit_cmdline(f"{base} cfg80211.ieee80211_regdom=FR {imager_run}\n", firstrun=True,
                        regdom="GB")  # fmt: skip
    assert once == f"{base} cfg80211.ieee80211_regdom=GB {FIRSTRUN_ARGS}\n"
    assert edit_cmdline(once, firstrun=True, regdom="GB") == once
    assert edit_cmdline(once, firstrun=False, regdom=None) == (
        f"{base} cfg80211.ieee80211_regdom=GB\n"
    )
    with pytest.raises(ProvisionError, match="more than one line"):
        edit_cmdline("a\nb\n", firstrun=False, regdom=None)


def test_wpa_psk_matches_the_ieee_802_11i_test_vectors() -> None:
    assert wpa_psk("password", "IEEE") == IEEE_PSK_1
    assert wpa_psk(IEEE_PASSPHRASE, IEEE_SSID) == IEEE_PSK
    assert wpa_psk(IEEE_PSK.upper(), "any") == IEEE_PSK  # already a PSK


def test_ssh_key_check(ssh_key: Path) -> None:
    line = ssh_key.read_text().strip()
    assert check_ssh_key(line + "\n", "k") == line
    kind, blob, comment = line.split()
    with pytest.raises(ProvisionError, match="its data is ssh-ed25519"):
        check_ssh_key(f"ssh-rsa {blob} {comment}", "k")
    with pytest.raises(ProvisionError, match="does not decode"):
        check_ssh_key(f"{kind} {blob[:-5]}", "k")
    private = ssh_key.with_suffix("").read_text()
    with pytest.raises(ProvisionError, match="this is a private key"):
        check_ssh_key(private, "k")


def test_node_config_writer_reads_back_the_same() -> None:
    data = config_mod.tomllib.loads((REPO / "firmware_configs" / "demo.toml").read_text())
    text = dumps(data)
    assert config_mod.tomllib.loads(text) == data
    assert "address = 0x76" in text
    odd = {"a b": {"k\x7f": ["x\ny", 1.5, True]}, "t": [{"u": {"v": 1}}, {"u": {"v": 2}}]}
    assert config_mod.tomllib.loads(dumps(odd)) == odd


def test_detects_the_generation_from_the_cloud_init_seed(tmp_path: Path) -> None:
    assert detect(card(tmp_path, "bookworm")).generation.name == "bookworm"
    trixie = detect(card(tmp_path, "trixie"))
    assert trixie.generation.name == "trixie" and trixie.generation.python == "3.13.5"
    assert "user-data" in trixie.why


def test_missing_wheels_for_the_pi_are_all_named_with_how_to_get_them(
    tmp_path: Path, inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Against PyPI, for a real Pi (aarch64, Bookworm's CPython 3.11): Sensirion's gas index
    algorithm publishes only its source, so it is named; everything else has a wheel."""
    boot = card(tmp_path, "bookworm")
    argv = args(boot, inputs)
    for option in ("--wheelhouse", "--arch", "--python-version"):
        i = argv.index(option)
        del argv[i : i + 2]
    argv.remove("--offline")
    before = tree(boot)
    assert provision(argv) == 2
    err = capsys.readouterr().err
    assert "no wheel for Linux aarch64, CPython 3.11.2, glibc 2.36 in PyPI for: " \
        "sensirion-gas-index-algorithm.\n" in err  # fmt: skip
    assert "python3 -m pip wheel -w wheels sensirion-gas-index-algorithm" in err
    assert tree(boot) == before


def test_the_first_boot_unit_verifies() -> None:
    unit_verifies(REPO / "scripts" / "roomagent-firstboot.service")


def test_script_runs_as_a_program(tmp_path: Path) -> None:
    script = str(REPO / "scripts/provision.py")
    result = subprocess.run([sys.executable, script, str(tmp_path), "--room", "nope.toml"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "nope.toml: cannot read" in result.stderr


def first_boot(boot: Path, root: Path) -> subprocess.CompletedProcess[str]:
    """What happens on the Pi after the OS's own first boot (firstrun.sh or cloud-init):
    firstboot.sh --arm installs the unit, and the unit runs firstboot.sh."""
    root.mkdir()
    run_ok(["bash", str(boot / "roomagent/firstboot.sh"), "--arm", "--root", str(root)])
    unit = root / "etc/systemd/system/roomagent-firstboot.service"
    assert unit.read_bytes() == (REPO / "scripts/roomagent-firstboot.service").read_bytes()
    assert (wants(root) / "roomagent-firstboot.service").is_symlink()
    exec_start = next(ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart="))
    assert exec_start == "ExecStart=/bin/bash /boot/firmware/roomagent/firstboot.sh"
    return run_ok(["bash", str(boot / "roomagent/firstboot.sh"), "--root", str(root),
                   "--python", sys.executable])  # fmt: skip


@pytest.mark.parametrize("generation", ["bookworm", "trixie"])
def test_done_when_a_provisioned_card_installs_at_first_boot(
    tmp_path: Path, inputs: dict[str, Path], certs: dict[str, Path], generation: str
) -> None:
    """The issue's closing test: provision a simulated card of each generation, then run the
    first boot's install from the card into a temporary root. The Trixie card also registers
    with a site inventory (a real HTTPS server here), which sends back a new node name."""
    extra: list[str] = []
    inventory = Inventory(free_port())
    if generation == "trixie":
        (tmp_path / "token").write_text("site-token\n")
        extra = ["--registration-url", inventory.url, "--registration-ca", str(certs["ca.crt"]),
                 "--registration-token", str(tmp_path / "token")]  # fmt: skip
        inventory.start(certs)
    try:
        boot = provisioned(tmp_path, generation, inputs, *extra)
        if generation == "trixie":
            card_config = (boot / "roomagent/etc/roomagent.toml").read_text()
            renamed = card_config.replace('name = "Room 2.14"', 'name = "Room 2.14, west wing"')
            inventory.replies = [(200, json.dumps({"config": renamed}).encode())]
        root = tmp_path / "root"
        result = first_boot(boot, root)
    finally:
        inventory.stop()
    assert "ready after" in result.stdout and "stopped cleanly" in result.stdout
    check_installed(root, inputs)
    name = config_mod.load(root / "etc/roomagent/roomagent.toml").node.name
    if generation == "trixie":
        ((_, headers, body),) = inventory.requests
        assert headers["Authorization"] == "Bearer site-token"
        assert json.loads(body)["id"] == "room-2-14"
        assert f"registered 'room-2-14' with {inventory.url}; wrote config" in result.stdout
        assert name == "Room 2.14, west wing"
    else:
        assert name == "Room 2.14" and "nothing to do" in result.stdout
    # The unit removed itself, and the card's copy of the secrets and wheels is gone.
    assert not (root / "etc/systemd/system/roomagent-firstboot.service").exists()
    assert not (wants(root) / "roomagent-firstboot.service").exists()
    assert not (boot / "roomagent/etc").exists() and not (boot / "roomagent/wheels").exists()
    assert (boot / "roomagent/install.sh").is_file()

"""scripts/install.sh into a temporary root (--root): install from wheels with no network,
upgrade, an upgrade that never becomes ready and is rolled back, failures that change nothing,
rollback, uninstall that keeps the buffer, --purge.

What --root exercises and what it does not (docs/provisioning.md says the same): the venv, the
files under /opt, /etc and /var/lib with their modes, the unit (verified by systemd-analyze)
and its enablement (`systemctl --root enable`), and readiness the way systemd judges a
Type=notify service: the new release's agent is started on simulated chips with NOTIFY_SOCKET
and must send READY=1 and stop cleanly (scripts/ready_check.py). Not exercised: useradd and the
root:roomagent group owner (skipped, and said so), and a real `systemctl restart`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.provision_support import (
    REPO,
    agent_wheel,
    check_installed,
    shell_ok,
    tree,
)

# Independent of the Python version: run on one leg of CI (see .ci/run).
# One xdist worker runs this file: its session wheelhouse is built once.
pytestmark = [pytest.mark.one_leg, pytest.mark.xdist_group("install")]

pytest_plugins = ("tests.provision_fixtures",)  # wheelhouse, certs, ssh_key

INSTALL = REPO / "scripts" / "install.sh"
ROOM = """\
[node]
id = "room-9"
name = "{name}"
[broker]
host = "mqtt.site.example"
[[devices]]
name = "climate"
driver = "bme280"
interval = 5
"""


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """install.sh into root. --no-compile saves seconds a run; the first-boot tests in
    test_provision.py install as the Pi does, with byte-compiling."""
    return subprocess.run(
        ["bash", str(INSTALL), *args, "--root", str(root), "--python", sys.executable,
         "--no-compile"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def config_dir(tmp_path: Path, name: str) -> Path:
    d = tmp_path / f"etc-{name.replace(' ', '-')}"
    d.mkdir()
    (d / "roomagent.toml").write_text(ROOM.format(name=name))
    return d


def releases(root: Path) -> set[str]:
    return {p.name for p in (root / "opt/roomagent/releases").iterdir()}


def link(root: Path, name: str) -> str:
    return os.readlink(root / "opt/roomagent" / name).removeprefix("releases/")


def state(root: Path) -> dict[str, tuple[str, int]]:
    return {k: v for k, v in tree(root).items() if not k.startswith("var/")}


@pytest.fixture(scope="module")
def broken_wheelhouse(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same wheels, but roomagent 0.1.1 is a release that dies as it starts: the agent's
    wheel with `roomagent run` made to exit at once (check-config still passes), its version
    changed in the file name, the .dist-info folder and METADATA, as pip requires."""
    d = tmp_path_factory.mktemp("broken-wheelhouse")
    for w in wheelhouse.glob("*.whl"):
        if not w.name.startswith("roomagent-"):
            shutil.copy2(w, d / w.name)
    good = agent_wheel(wheelhouse)
    with (
        zipfile.ZipFile(good) as src,
        zipfile.ZipFile(
            d / good.name.replace("-0.1.0-", "-0.1.1-"), "w", zipfile.ZIP_DEFLATED
        ) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            name = info.filename.replace("roomagent-0.1.0.dist-info", "roomagent-0.1.1.dist-info")
            if info.filename == "agent/app/cli.py":
                data = data.replace(
                    b"def cmd_run(args: argparse.Namespace) -> int:\n",
                    b"def cmd_run(args: argparse.Namespace) -> int:\n"
                    b"    raise SystemExit('a release that fails as it starts')\n",
                )
                assert b"fails as it starts" in data
            if name.endswith(".dist-info/METADATA"):
                data = data.replace(b"\nVersion: 0.1.0\n", b"\nVersion: 0.1.1\n")
            dst.writestr(name, data)
    return d


def test_install_upgrade_failed_upgrade_rollback_uninstall(
    tmp_path: Path, wheelhouse: Path, broken_wheelhouse: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()

    # A first install, from wheels only.
    result = install(root, "install", "--wheels", str(wheelhouse),
                     "--config-dir", str(config_dir(tmp_path, "Room 9")))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped under --root: groupadd" in result.stdout
    assert "ready after" in result.stdout and "stopped cleanly" in result.stdout
    first = check_installed(root).removeprefix("releases/")
    assert releases(root) == {first} and not (root / "opt/roomagent/previous").exists()
    # `roomagent` on PATH, following the release in use (issue 18).
    command = root / "usr/local/bin/roomagent"
    assert os.readlink(command) == "/opt/roomagent/current/bin/roomagent"
    assert (root / "opt/roomagent/current/bin/roomagent").is_file()

    # An upgrade (the same version again here) keeps the one before.
    result = install(root, "install", "--wheels", str(wheelhouse),
                     "--config-dir", str(config_dir(tmp_path, "Room 9 upgraded")))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    second = link(root, "current")
    assert second != first and link(root, "previous") == first
    assert releases(root) == {first, second}
    assert 'name = "Room 9 upgraded"' in (root / "etc/roomagent/roomagent.toml").read_text()
    buffer = root / "var/lib/roomagent/buffer.sqlite"
    buffer.write_bytes(b"readings waiting for the broker")

    # A release that never sends READY=1 is rolled back, with the config it came with.
    before = state(root)
    result = install(root, "install", "--wheels", str(broken_wheelhouse),
                     "--config-dir", str(config_dir(tmp_path, "Room 9 broken")))  # fmt: skip
    assert result.returncode == 1
    assert "roomagent 0.1.1 did not become ready: rolling back to " + second in result.stdout
    assert "not ready: no READY=1" in result.stderr
    assert "a release that fails as it starts" in result.stderr
    assert state(root) == before  # current, previous, config, unit: as they were

    # Failures before the switch change nothing either.
    incomplete = tmp_path / "incomplete"
    shutil.copytree(wheelhouse, incomplete)
    next(incomplete.glob("paho_mqtt-*.whl")).unlink()
    result = install(root, "install", "--wheels", str(incomplete))
    assert result.returncode == 1 and "installing roomagent 0.1.0 failed" in result.stderr
    bad = config_dir(tmp_path, "Room 9 bad")
    (bad / "roomagent.toml").write_text(ROOM.format(name="x").replace("= 5", "= 0"))
    result = install(root, "install", "--wheels", str(wheelhouse), "--config-dir", str(bad))
    assert result.returncode == 1 and "devices[0].interval: must be ≥ 1 s" in result.stderr
    assert state(root) == before

    # Back to the version before, by hand.
    result = install(root, "rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert link(root, "current") == first and link(root, "previous") == second

    # Uninstall keeps the config and the buffer; --purge removes them.
    result = install(root, "uninstall")
    assert result.returncode == 0, result.stderr
    assert not (root / "opt/roomagent").exists()
    assert not (root / "etc/systemd/system/roomagent.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/roomagent.service").exists()
    assert not command.is_symlink()
    assert buffer.read_bytes() == b"readings waiting for the broker"
    assert (root / "etc/roomagent/roomagent.toml").is_file()
    result = install(root, "uninstall", "--purge")
    assert result.returncode == 0 and "skipped under --root: userdel roomagent" in result.stdout
    assert not (root / "etc/roomagent").exists() and not (root / "var/lib/roomagent").exists()


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_a_first_install_that_fails_is_undone_and_says_so(
    tmp_path: Path, wheelhouse: Path, broken_wheelhouse: Path
) -> None:
    """A first install that never becomes ready leaves nothing behind (not a unit enabled
    for a release that cannot start) and names what it removed; so does one whose config is
    refused. (Under --root the user and groups are skipped; on a Pi they are removed too.)"""
    root = tmp_path / "root"
    root.mkdir()
    result = install(root, "install", "--wheels", str(broken_wheelhouse),
                     "--config-dir", str(config_dir(tmp_path, "Room 9")))  # fmt: skip
    assert result.returncode == 1
    assert "roomagent 0.1.1 did not become ready" in result.stderr
    assert "undone: removed" in result.stderr
    for made in ("opt/roomagent", "etc/roomagent", "var/lib/roomagent",
                 "etc/systemd/system/roomagent.service", "usr/local/bin/roomagent"):  # fmt: skip
        assert str(root / made) in result.stderr, made
    assert "nothing else was changed" not in result.stderr
    assert files_under(root) == []

    bad = config_dir(tmp_path, "Room 9 bad")
    (bad / "roomagent.toml").write_text(ROOM.format(name="x").replace("= 5", "= 0"))
    result = install(root, "install", "--wheels", str(wheelhouse), "--config-dir", str(bad))
    assert result.returncode == 1 and "devices[0].interval: must be ≥ 1 s" in result.stderr
    assert f"undone: removed {root / 'etc/roomagent'}" in result.stderr
    assert files_under(root) == []


def test_a_rollback_whose_old_release_fails_too_says_the_service_is_down(
    tmp_path: Path, wheelhouse: Path, broken_wheelhouse: Path
) -> None:
    """install.sh used to say "<old> is running again" without looking."""
    root = tmp_path / "root"
    root.mkdir()
    result = install(root, "install", "--wheels", str(wheelhouse),
                     "--config-dir", str(config_dir(tmp_path, "Room 9")))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    first = link(root, "current")
    # The installed release stops starting (a damaged card, say): its `run` now exits at once.
    (cli,) = (root / "opt/roomagent/releases" / first).glob(
        "lib/python*/site-packages/agent/app/cli.py"
    )
    text = cli.read_text()
    marker = "def cmd_run(args: argparse.Namespace) -> int:\n"
    assert marker in text
    cli.write_text(text.replace(marker, marker + "    raise SystemExit('damaged')\n"))
    result = install(root, "install", "--wheels", str(broken_wheelhouse),
                     "--config-dir", str(config_dir(tmp_path, "Room 9 broken")))  # fmt: skip
    assert result.returncode == 1
    assert f"rolling back to {first}" in result.stdout
    assert f"{first}, rolled back to, did not become ready either: the service is DOWN" in (
        result.stderr
    )
    assert "running again" not in result.stderr and link(root, "current") == first


def test_install_refuses_a_wheel_folder_without_the_agent(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "wheels").mkdir()
    result = install(tmp_path / "root", "--wheels", str(tmp_path / "wheels"))
    assert result.returncode == 1 and "must hold exactly one roomagent-*.whl" in result.stderr
    assert list((tmp_path / "root").iterdir()) == []


def test_rollback_without_a_previous_version_is_refused(tmp_path: Path) -> None:
    result = install(tmp_path, "rollback")
    assert result.returncode == 1 and "no previous version" in result.stderr


NOTIFIER = textwrap.dedent("""\
    import os, signal, socket, sys, time
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(int(sys.argv[2])))
    if sys.argv[1] != "silent":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"STATUS=starting\\nREADY=1", os.environ["NOTIFY_SOCKET"])
    time.sleep(30)
    """)


@pytest.mark.parametrize(
    "mode, status, ok, message",
    [
        ("ready", 0, True, "stopped cleanly"),
        ("ready", 3, False, "stopped with status 3 after READY=1"),
        ("silent", 0, False, "no READY=1 within 1 s"),
    ],
)
def test_ready_check_judges_readiness_as_systemd_does_for_type_notify(
    mode: str, status: int, ok: bool, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/ready_check.py"), "--timeout", "1", "--",
         sys.executable, "-c", NOTIFIER, mode, str(status)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode == 0) == ok
    assert message in result.stdout + result.stderr


def test_scripts_pass_bash_and_shellcheck() -> None:
    for name in ("install.sh", "firstboot.sh"):
        shell_ok(REPO / "scripts" / name)


def test_agent_wheel_is_the_checkout(wheelhouse: Path) -> None:
    """The wheel every install test uses is this checkout's code, not an installed copy."""
    with zipfile.ZipFile(agent_wheel(wheelhouse)) as z:
        assert z.read("agent/app/cli.py") == (REPO / "agent/app/cli.py").read_bytes()

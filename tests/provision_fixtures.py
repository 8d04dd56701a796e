"""Fixtures of the provisioning and install tests (pytest_plugins in those modules): a wheelhouse
for this machine, certificates, an SSH key, and cloud-init and netplan as Debian ships them.

This machine is x86_64 while a Pi is aarch64, so the tests build wheels for the Python running
them and pass them with --wheelhouse --offline --arch x86_64 --python-version X.Y; the aarch64
resolution against PyPI is tested on its own (test_provision.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.provision.wheels import build_agent_wheel
from tests.mqtt_fixtures import make_certificates
from tests.provision_support import DebianTools, run_ok

# Debian packages whose programs check what provisioning writes. They are downloaded and
# unpacked here, not installed: installing cloud-init would make this machine run it at boot.
# scripts/test.sh installs the Python libraries cloud-init imports (python3-jsonschema, ...).
DEBS = ("cloud-init", "netplan.io", "libnetplan0")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "roomagent-tests"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent and all its dependencies as wheels for this machine's Python, and pip (the
    Pi installs with pip run from its wheel). pip's cache makes this quick after the first run;
    sensirion-gas-index-algorithm is built from source, as a site does on a Pi."""
    d = tmp_path_factory.mktemp("wheelhouse")
    build = tmp_path_factory.mktemp("agent-build")
    agent = build_agent_wheel(build, (), offline=False, log=lambda line: None)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(d),
         str(agent), "pip"],
        check=True, timeout=600,
    )  # fmt: skip
    return d


@pytest.fixture(scope="session")
def debian_tools() -> DebianTools:
    """cloud-init and netplan as Debian ships them, fetched with `apt-get download` once."""
    root = CACHE / "debian-tools"
    stamp = root / ".complete"
    if not stamp.exists():
        debs = CACHE / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", *DEBS], cwd=debs, check=True,
                       capture_output=True, timeout=300)  # fmt: skip
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
        stamp.touch()
    return DebianTools(root)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real key pair made by ssh-keygen; provisioning takes the .pub."""
    d = tmp_path_factory.mktemp("ssh")
    run_ok(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "installer@laptop",
            "-f", str(d / "id_ed25519")])  # fmt: skip
    return d / "id_ed25519.pub"

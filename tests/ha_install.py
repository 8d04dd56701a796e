"""Install a real Home Assistant core into a cached venv, outside the repository.

A plain ``pip install homeassistant`` backtracks for a very long time; the release's own
``package_constraints.txt`` (read out of its wheel) pins every dependency, so the install is a
straight download. The venv is cached (``ROOMAGENT_HA_CACHE``, default ``~/.cache/roomagent-ha``)
and reused while its marker file names the same release.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HA_VERSION = "2025.4.4"
# The newest interpreter 2025.4 supports (it requires >= 3.13; 2025.5+ wants newer ones).
HA_PYTHON_CANDIDATES = ("/root/.pyenv/versions/3.13.0/bin/python3",)
_MARKER = "installed-version"


def cache_dir() -> Path:
    return Path(os.environ.get("ROOMAGENT_HA_CACHE", Path.home() / ".cache" / "roomagent-ha"))


def ha_python() -> str | None:
    override = os.environ.get("ROOMAGENT_HA_PYTHON")
    if override:
        return override
    for candidate in HA_PYTHON_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return None


def venv_dir() -> Path:
    return cache_dir() / f"ha-{HA_VERSION}"


def hass_executable() -> Path:
    return venv_dir() / "bin" / "hass"


def is_installed() -> bool:
    marker = venv_dir() / _MARKER
    if not (hass_executable().exists() and marker.exists()):
        return False
    return marker.read_text().strip() == HA_VERSION


def install(log=sys.stderr) -> Path:
    """Create the venv and install the release with its own constraints; return ``hass``."""
    if is_installed():
        return hass_executable()
    python = ha_python()
    if python is None:
        raise RuntimeError("no Python 3.13 for Home Assistant; set ROOMAGENT_HA_PYTHON")
    venv = venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip", "wheel"], check=True, stdout=log)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [*pip, "download", "-q", "--no-deps", "-d", tmp, f"homeassistant=={HA_VERSION}"],
            check=True,
            stdout=log,
        )
        wheel = next(Path(tmp).glob("homeassistant-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            constraints = zf.read("homeassistant/package_constraints.txt")
        constraints_file = Path(tmp) / "constraints.txt"
        constraints_file.write_bytes(constraints)
        subprocess.run(
            [*pip, "install", "-q", "-c", str(constraints_file), str(wheel)],
            check=True,
            stdout=log,
        )
    (venv / _MARKER).write_text(HA_VERSION + "\n")
    return hass_executable()


if __name__ == "__main__":
    print(install())

"""The agent and every dependency as wheels for the Pi, so first boot installs with
`pip install --no-index --find-links` and no network.

pip downloads wheels for another platform when told the target exactly (`--platform`,
`--python-version`, `--implementation`, `--abi`) and `--only-binary=:all:`. A package that
publishes no wheel for the target cannot be had this way: sensirion-gas-index-algorithm ships
source only (a C extension), so a site builds its wheel once on a Pi (`pip wheel`, see
docs/provisioning.md) and passes the folder with --wheelhouse. What is missing is named, with
that advice, before anything is written to the card.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from agent.provision import ProvisionError

REPO = Path(__file__).resolve().parents[2]
# What building the agent's wheel needs from the checkout (pyproject.toml's packages).
SOURCES = ("pyproject.toml", "README.md", "agent", "drivers")
MISSING_RE = re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)")
NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# pip's lines worth showing as progress; the rest is kept for error messages.
PROGRESS = ("Collecting", "Downloading", "Saved", "File was already downloaded", "Processing",
            "Building wheel", "Created wheel", "Looking in links")  # fmt: skip
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}

Log = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    arch: str  # "aarch64" on every 64-bit Raspberry Pi OS
    python: str  # "3.11.2"
    glibc: tuple[int, int]

    def platforms(self) -> list[str]:
        """Every platform tag the target's pip accepts, newest first. pip does not widen an
        explicit --platform to older manylinux versions, so each is listed."""
        major, newest = self.glibc
        tags = []
        for minor in range(newest, 4, -1):
            tags.append(f"manylinux_{major}_{minor}_{self.arch}")
            legacy = LEGACY_MANYLINUX.get(minor)
            if legacy and (minor == 17 or self.arch in ("x86_64", "i686")):
                tags.append(f"{legacy}_{self.arch}")
        tags.append(f"linux_{self.arch}")  # what `pip wheel` on the Pi itself produces
        return tags

    def pip_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--implementation", "cp"]
        major, minor = self.python.split(".")[:2]
        args += ["--python-version", self.python, "--abi", f"cp{major}{minor}"]
        for tag in self.platforms():
            args += ["--platform", tag]
        return args

    def describe(self) -> str:
        return f"Linux {self.arch}, CPython {self.python}, glibc {self.glibc[0]}.{self.glibc[1]}"

    def markers(self) -> dict[str, str]:
        """PEP 508's environment markers as they are on the target. pip evaluates a
        requirement's markers on the machine it runs on (only python_version follows
        --python-version), so `lgpio; platform_machine == 'aarch64'` would be dropped on a
        laptop: provisioning evaluates them for the Pi itself."""
        major, minor = self.python.split(".")[:2]
        return {
            "platform_machine": self.arch, "sys_platform": "linux", "platform_system": "Linux",
            "os_name": "posix", "python_version": f"{major}.{minor}",
            "python_full_version": self.python, "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "extra": "",
        }  # fmt: skip


def for_target(reqs: list[str], target: Target) -> list[str]:
    """The requirements that apply on the target, without their markers."""
    from packaging.requirements import Requirement

    out = []
    for r in reqs:
        req = Requirement(r)
        if req.marker is None or req.marker.evaluate(target.markers()):
            req.marker = None
            out.append(str(req))
    return out


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip(args: list[str], log: Log, offline: bool) -> tuple[int, str]:
    # Offline, --isolated keeps the laptop's pip configuration (extra indexes, find-links)
    # out of it: only the wheelhouses given are used.
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    cmd += [*(["--isolated"] if offline else []), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.lstrip().startswith(PROGRESS):
            log(f"    {line.strip()}")
    return proc.wait(), "".join(lines)


def _finder(wheelhouses: tuple[Path, ...], offline: bool) -> list[str]:
    args = ["--no-index"] if offline else []
    for w in wheelhouses:
        args += ["--find-links", str(w)]
    return args


def build_agent_wheel(
    dest: Path, wheelhouses: tuple[Path, ...], offline: bool, log: Log, source: Path = REPO
) -> Path:
    """Builds roomagent's wheel from a clean copy of the checkout: an old build/ folder in
    the checkout could otherwise leave deleted modules in it."""
    with tempfile.TemporaryDirectory(prefix="roomagent-src-") as d:
        src = Path(d)
        for name in SOURCES:
            path = source / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, src / name)
        log(f"==> building the roomagent wheel from {source} (pip wheel)")
        status, output = _pip(
            ["wheel", "--no-deps", "-w", str(dest), *_finder(wheelhouses, offline), str(src)],
            log,
            offline,
        )
    wheels = sorted(dest.glob("roomagent-*.whl"))
    if status != 0 or len(wheels) != 1:
        raise ProvisionError(f"building the roomagent wheel failed:\n{output[-3000:]}")
    return wheels[0]


def requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA, without those of extras."""
    with zipfile.ZipFile(wheel) as z:
        metadata = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(metadata).decode()
    reqs = []
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line; the description follows
        if line.startswith("Requires-Dist:"):
            req = line.split(":", 1)[1].strip()
            if "extra ==" not in req.replace('"', "").replace("'", ""):
                reqs.append(req)
    return reqs


def download(
    target: Target,
    agent_wheel: Path,
    wheelhouses: tuple[Path, ...],
    offline: bool,
    dest: Path,
    log: Log,
) -> list[Path]:
    """Every wheel the agent needs on the target, in `dest`. If some have no wheel for the
    target, names all of them (pip stops at the first, so each is set aside and the rest
    resolved again) and says how to get them."""
    reqs = [*for_target(requirements(agent_wheel), target), "pip"]  # pip: the Pi installs with it
    direct = {}
    for r in reqs:
        match = NAME_RE.match(r)
        if match:
            direct[canonical(match.group(1))] = r
    missing: list[str] = []
    where = "the wheelhouse" if offline else "PyPI" + (" or the wheelhouse" if wheelhouses else "")
    log(f"==> wheels for {target.describe()} from {where} (pip download)")
    while True:
        wanted = [r for name, r in direct.items() if name not in missing]
        status, output = _pip(
            ["download", "--dest", str(dest), *target.pip_args(), *_finder(wheelhouses, offline),
             *wanted],
            log,
            offline,
        )  # fmt: skip
        if status == 0:
            break
        match = MISSING_RE.search(output)
        if match is None:
            raise ProvisionError(f"pip download failed:\n{output[-3000:]}")
        name = canonical(match.group(1))
        missing.append(name)
        if name not in direct:
            break  # a dependency of a dependency: it cannot be set aside to look further
    if missing:
        raise ProvisionError(
            f"no wheel for {target.describe()} in {where} for: {', '.join(missing)}.\n"
            "Build them once on a Raspberry Pi with this OS, then give the folder with "
            "--wheelhouse DIR:\n"
            f"    python3 -m pip wheel -w wheels {' '.join(missing)}\n"
            "(docs/provisioning.md, 'Wheels for the Pi')"
        )
    shutil.copy2(agent_wheel, dest / agent_wheel.name)
    return sorted(dest.glob("*.whl"))


def signature(wheel: Path) -> list[tuple[str, int, int]]:
    """What a wheel contains, without the zip's timestamps: two builds of the same source
    differ only in those."""
    with zipfile.ZipFile(wheel) as z:
        return sorted((i.filename, i.CRC, i.file_size) for i in z.infolist())


def same_wheel(a: Path, b: Optional[Path]) -> bool:
    if b is None or not b.is_file() or a.name != b.name:
        return False
    try:
        return signature(a) == signature(b)
    except zipfile.BadZipFile:
        return False

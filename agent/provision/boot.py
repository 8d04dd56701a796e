"""The boot partition of a freshly flashed Raspberry Pi OS card: is it one, which generation of
the OS is it, and the two text files every generation reads (config.txt, cmdline.txt).

What the partition holds (Raspberry Pi OS images built by pi-gen; Raspberry Pi Imager writes
its customisation onto the same partition):
- every generation: config.txt, cmdline.txt (one line), the firmware (start*.elf, fixup*.dat,
  bootcode.bin), kernels (kernel*.img), device trees (bcm27*.dtb), overlays/, and issue.txt,
  a copy of /etc/rpi-issue: "Raspberry Pi reference YYYY-MM-DD" then "Generated using pi-gen,
  <url>, <commit>, <stage>". It names no Debian release, only the build date.
- Trixie images (from 2025-10) ship cloud-init's NoCloud seed on this partition: user-data,
  meta-data and network-config (pi-gen stage2/04-cloud-init). Imager writes its settings there.
- Bookworm images (2023-10 to 2025) have no cloud-init; Imager writes firstrun.sh and runs it
  once with `systemd.run=` on the kernel command line.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from agent.provision import ProvisionError


@dataclass(frozen=True)
class Generation:
    name: str
    # The system python3 the venv is made from, as Debian ships it: pip checks Requires-Python
    # against all three numbers (cryptography excludes 3.9.0 and 3.9.1, for one).
    python: str
    glibc: tuple[int, int]  # newest manylinux tag its libc accepts
    init: str  # how first boot is configured: "firstrun" or "cloud-init"


GENERATIONS = {
    "bookworm": Generation("bookworm", "3.11.2", (2, 36), "firstrun"),
    "trixie": Generation("trixie", "3.13.5", (2, 41), "cloud-init"),
}
FIRST_BOOKWORM = datetime.date(2023, 10, 10)  # the first Raspberry Pi OS Bookworm release
CLOUD_INIT_SEED = ("user-data", "meta-data", "network-config")
ISSUE_RE = re.compile(r"^Raspberry Pi reference (\d{4})-(\d{2})-(\d{2})", re.MULTILINE)


@dataclass(frozen=True)
class BootPartition:
    path: Path
    generation: Generation
    built: Optional[datetime.date]  # from issue.txt, when present
    why: str  # how the generation was decided, for the installer to see


def detect(path: Path, override: Optional[str] = None) -> BootPartition:
    """Refuses anything that is not a Raspberry Pi OS boot partition, then tells Bookworm from
    Trixie by the cloud-init seed Trixie images carry."""
    if not path.is_dir():
        raise ProvisionError(f"{path}: no such directory (mount the card's boot partition first)")
    names = {p.name for p in path.iterdir()}
    missing = [n for n in ("config.txt", "cmdline.txt") if not (path / n).is_file()]
    if not any(re.match(r"^(start\w*\.elf|kernel\w*\.img)$", n) for n in names):
        missing.append("firmware or kernel (start*.elf, kernel*.img)")
    if missing:
        raise ProvisionError(
            f"{path} is not a Raspberry Pi boot partition: no {', no '.join(missing)}. Give the "
            "mounted FAT partition of a freshly flashed Raspberry Pi OS card (labelled "
            "'bootfs'; e.g. /media/$USER/bootfs), not the root file system or another disk."
        )
    built = _built(path / "issue.txt")
    if built is not None and built < FIRST_BOOKWORM:
        raise ProvisionError(
            f"{path}: this image was built on {built}, before Raspberry Pi OS Bookworm "
            f"({FIRST_BOOKWORM}); flash a Bookworm or Trixie image"
        )
    seed = [n for n in CLOUD_INIT_SEED if n in names]
    detected = "trixie" if seed else "bookworm"
    why = (
        f"cloud-init seed on the card ({', '.join(seed)})"
        if seed
        else "no cloud-init seed (user-data, meta-data, network-config) on the card"
    )
    if override is not None:
        if override not in GENERATIONS:
            raise ProvisionError(f"--os must be one of {', '.join(GENERATIONS)}, got {override!r}")
        if override != detected:
            why = f"--os {override}, although the card looks like {detected}: {why}"
        else:
            why = f"--os {override}, as detected: {why}"
        detected = override
    return BootPartition(path, GENERATIONS[detected], built, why)


def _built(issue: Path) -> Optional[datetime.date]:
    try:
        match = ISSUE_RE.search(issue.read_text(errors="replace"))
    except OSError:
        return None
    if not match:
        return None
    try:
        return datetime.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


# config.txt: https://www.raspberrypi.com/documentation/computers/config_txt.html. Lines are
# `name=value`; `#` starts a comment line; `[filter]` lines make what follows apply to some
# boards only, until the next filter; `[all]` applies to every board again.
I2C_PARAMS = ("i2c_arm", "i2c")  # `i2c` is an alias of `i2c_arm`
ON = ("on", "true", "yes", "1", "")  # a dtparam given without a value means "on"
BT_OFF_OVERLAYS = ("disable-bt", "pi3-disable-bt")


def enable_i2c_and_bluetooth(text: str) -> str:
    """config.txt with the ARM I2C bus on for every board and Bluetooth not disabled.

    Idempotent: a second pass returns its input. An existing commented `#dtparam=i2c_arm=on`
    in an unfiltered part is uncommented (as Imager does); otherwise the line is appended under
    `[all]`. Overlays that turn Bluetooth off are commented out wherever they are."""
    lines = text.splitlines()
    unfiltered = True
    i2c_on = False
    commented: Optional[int] = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            unfiltered = s[1:-1].strip().lower() == "all"
            continue
        if s.startswith("#"):
            bare = s.lstrip("#").strip()
            if unfiltered and commented is None and _i2c_state(bare) is True:
                commented = i
            continue
        if s.startswith("dtoverlay="):
            overlay = s.split("=", 1)[1].split(",", 1)[0].strip()
            if overlay in BT_OFF_OVERLAYS:
                lines[i] = "#" + line
            continue
        state = _i2c_state(s)
        if state is not None and unfiltered:
            if state:
                i2c_on = True
            else:
                lines[i] = _i2c_switched_on(line)
                i2c_on = True
    if not i2c_on:
        if commented is not None:
            lines[commented] = lines[commented].strip().lstrip("#").strip()
        else:
            if not unfiltered:
                lines.append("[all]")
            lines.append("dtparam=i2c_arm=on")
    return "\n".join(lines) + "\n"


def _i2c_state(line: str) -> Optional[bool]:
    """True/False when the line is a dtparam that sets the ARM I2C bus, else None."""
    if not line.startswith("dtparam="):
        return None
    state = None
    for param in line.split("=", 1)[1].split(","):
        name, _, value = param.partition("=")
        if name.strip() in I2C_PARAMS:
            state = value.strip().lower() in ON
    return state


def _i2c_switched_on(line: str) -> str:
    params = []
    for param in line.split("=", 1)[1].split(","):
        name = param.partition("=")[0].strip()
        params.append(f"{name}=on" if name in I2C_PARAMS else param)
    return "dtparam=" + ",".join(params)


# cmdline.txt: the kernel command line, one line. Imager appends these three to run
# firstrun.sh once; Bookworm mounts the boot partition at /boot/firmware.
FIRSTRUN = "/boot/firmware/firstrun.sh"
FIRSTRUN_ARGS = (
    f"systemd.run={FIRSTRUN}",
    "systemd.run_success_action=reboot",
    "systemd.unit=kernel-command-line.target",
)


def edit_cmdline(text: str, *, firstrun: bool, regdom: Optional[str]) -> str:
    """cmdline.txt with our first-run arguments (Bookworm) and the Wi-Fi regulatory domain.

    Any earlier `systemd.run*` arguments (ours, or Imager's) are replaced, so running this twice
    gives the same line."""
    lines = text.splitlines()
    if len([ln for ln in lines if ln.strip()]) > 1:
        raise ProvisionError("cmdline.txt has more than one line; the kernel reads only the first")
    tokens = (lines[0] if lines else "").split()
    tokens = [t for t in tokens if not _ours(t)]
    if regdom is not None:
        tokens = [t for t in tokens if not t.startswith("cfg80211.ieee80211_regdom=")]
        tokens.append(f"cfg80211.ieee80211_regdom={regdom}")
    if firstrun:
        tokens.extend(FIRSTRUN_ARGS)
    return " ".join(tokens) + ("\n" if text.endswith("\n") else "")


def _ours(token: str) -> bool:
    return (
        token.startswith(
            ("systemd.run=", "systemd.run_success_action=", "systemd.run_failure_action=")
        )
        or token == "systemd.unit=kernel-command-line.target"
    )

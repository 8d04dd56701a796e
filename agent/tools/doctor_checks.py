"""`roomagent doctor`'s checks of the node as a whole: broker, clock, disk, buffer, service.

Each check is a function returning one frozen Result. What a check reads of the machine comes
through a Host, so a test gives it a fake filesystem tree, a statvfs answer or a systemctl of
its own; the broker and the buffer are always the real thing (a mosquitto, an SQLite file).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from agent.common.clock import TIMESYNC_FLAG, kernel_clock_synced
from agent.config.schema import Config
from agent.pipeline.outbox import MIN_FREE_BYTES
from agent.pipeline.staged_outbox import stage_candidates

SERVICE = "roomagent.service"
SERVICE_USER = "roomagent"
# The unit's SupplementaryGroups= (scripts/roomagent.service): the service has these groups
# whatever /etc/group says, so device permissions are judged with them (a test keeps the two
# in step).
SERVICE_GROUPS = ("i2c", "gpio", "bluetooth", "dialout")  # dialout: Modbus RS-485
# A backlog whose oldest reading is older than this is not a sending delay: nothing goes out.
BACKLOG_STALE = 15 * 60.0  # s
BACKLOG_NEARLY_FULL = 0.9  # of max_rows or max_bytes: the oldest readings are dropped soon


@dataclass(frozen=True)
class Result:
    """One line of the doctor's table. ok: True passed, False failed (then `fix` says what to
    do, in one line), None for information only or a check that does not apply here."""

    name: str
    ok: Optional[bool]
    detail: str
    fix: str = ""


def passed(name: str, detail: str) -> Result:
    return Result(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Result:
    return Result(name, False, detail, fix)


def info(name: str, detail: str) -> Result:
    return Result(name, None, detail)


def _systemctl(args: Sequence[str]) -> Optional[tuple[int, str]]:
    """(exit status, stdout) of systemctl, or None where there is no systemctl."""
    binary = shutil.which("systemctl")
    if binary is None:
        return None
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=20)
    return done.returncode, done.stdout


def _ids(user: str, groups: Sequence[str]) -> Optional[tuple[int, frozenset[int]]]:
    """The uid of `user` and every gid it acts with (its own, /etc/group's, `groups`), or None
    when there is no such user."""
    import grp

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    gids = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for name in groups:
        with contextlib.suppress(KeyError):
            gids.add(grp.getgrnam(name).gr_gid)
    return entry.pw_uid, frozenset(gids)


@dataclass(frozen=True)
class Host:
    """Where the doctor looks. root: the filesystem root (config.txt, /dev, /sys, /run are read
    under it); the callables reach what a tree cannot hold."""

    root: Path = Path("/")
    statvfs: Callable[[str], Any] = os.statvfs
    clock_synced: Callable[[], Optional[bool]] = kernel_clock_synced
    systemctl: Callable[[Sequence[str]], Optional[tuple[int, str]]] = _systemctl
    # (uid, gids) of the service user with the unit's groups; None: no such user
    service_ids: Callable[[], Optional[tuple[int, frozenset[int]]]] = field(
        default=lambda: _ids(SERVICE_USER, SERVICE_GROUPS)
    )
    now: Callable[[], float] = time.time

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


# The service ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceState:
    present: bool  # systemd runs this machine
    load: str = ""  # "loaded", "not-found", ...
    active: str = ""  # "active", "activating", "inactive", "failed", ...
    sub: str = ""  # "running", "dead", ...
    status: str = ""  # the agent's own STATUS= line, e.g. "connected; backlog 0; devices 6/6 up"


def service_state(host: Host) -> ServiceState:
    # sd_booted(3): systemd is running if this directory exists.
    if not host.path("/run/systemd/system").is_dir():
        return ServiceState(present=False)
    answer = host.systemctl(
        ["show", SERVICE, "--property=LoadState,ActiveState,SubState,StatusText"]
    )
    if answer is None:
        return ServiceState(present=False)
    values = dict(line.partition("=")[::2] for line in answer[1].splitlines() if "=" in line)
    return ServiceState(
        True,
        values.get("LoadState", ""),
        values.get("ActiveState", ""),
        values.get("SubState", ""),
        values.get("StatusText", ""),
    )


def check_service(state: ServiceState) -> Result:
    name = "service"
    if not state.present:
        return info(name, "no systemd on this machine (a laptop or a container): not checked")
    if state.load == "not-found":
        return failed(
            name,
            f"{SERVICE} is not installed",
            "install it: sudo scripts/install.sh --config <room>.toml (docs/installing.md)",
        )
    said = f" ({state.status})" if state.status else ""
    if state.active == "active":
        return passed(name, f"{SERVICE} is running{said}")
    if state.active in ("activating", "reloading"):
        return failed(
            name,
            f"{SERVICE} is starting ({state.sub}){said}",
            "wait a minute and run roomagent doctor again; if it stays so: "
            "journalctl -u roomagent -n 50",
        )
    if state.active == "failed":
        return failed(
            name,
            f"{SERVICE} has stopped with an error ({state.sub})",
            "read why: journalctl -u roomagent -n 50; after fixing it: "
            "sudo systemctl restart roomagent",
        )
    return failed(
        name,
        f"{SERVICE} is not running ({state.active or 'unknown'})",
        "start it, and at every boot: sudo systemctl enable --now roomagent",
    )


# The clock --------------------------------------------------------------------------------


def check_clock(cfg: Optional[Config], host: Host) -> Result:
    name = "clock"
    synced = host.clock_synced()
    how = "the kernel says"
    if synced is None:  # adjtimex refused: timesyncd's flag file, as agent.common.clock does
        synced, how = host.path(TIMESYNC_FLAG).exists(), f"{TIMESYNC_FLAG} says"
    forced = ""
    if cfg is not None and cfg.node.clock != "auto":
        forced = f"; note: the config forces node.clock = {cfg.node.clock!r}"
    if synced:
        return passed(name, f"set from the network (NTP): {how} it is synchronised{forced}")
    hold = ""
    if cfg is not None and cfg.node.hold_unsynced > 0:
        hold = (
            f": readings wait up to {cfg.node.hold_unsynced:g} s for it, then go out "
            "marked clock_synced=false"
        )
    elif cfg is not None:
        hold = ": readings go out at once, marked clock_synced=false"
    return failed(
        name,
        f"not set from the network yet ({how}){hold}{forced}",
        "the Pi has no battery clock: let it reach a time server (internet or the "
        "building's NTP server, UDP port 123); `timedatectl` must say "
        "'System clock synchronized: yes'",
    )


# Disk and buffer --------------------------------------------------------------------------


def _mib(size: float) -> str:
    if size >= 10 * 2**30:
        return f"{size / 2**30:,.1f} GiB"
    return f"{size / 2**20:,.1f} MiB"


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@dataclass(frozen=True)
class Backlog:
    rows: int
    bytes: int
    dropped: int
    oldest_ts: Optional[float]  # epoch of the oldest waiting reading, when its stamp says


def read_backlog(path: Path, stage_dir: Optional[Path] = None) -> Backlog:
    """The buffer's contents, the card's outbox and the RAM stage of `staged` together (every
    seq on the card is below every seq in the stage: agent/pipeline/staged_outbox.py)."""
    rows, size, dropped, oldest = _read_table(path, "outbox", dropped=True)
    for stage in stage_candidates(path, stage_dir):
        if stage.exists():
            s_rows, s_size, _, s_oldest = _read_table(stage, "stage", dropped=False)
            if s_rows and not rows:
                oldest = s_oldest
            rows, size = rows + s_rows, size + s_size
            break
    return Backlog(rows, size, dropped, _stamp(oldest))


def _read_table(
    path: Path, table: str, dropped: bool
) -> tuple[int, int, int, Optional[tuple[Any, ...]]]:
    """Rows, bytes, the dropped count and the oldest row of one database, read without
    writing anything next to it.

    SQLite opening a WAL database read-only creates its -wal and -shm files when they are
    missing; made by root (doctor under sudo), they would lock the agent out of its own buffer.
    So with no -wal file (the agent closed it cleanly, or never wrote since) the file is opened
    as immutable, which creates nothing; with one (the agent is running) read-only, which uses
    the agent's own files.
    """
    wal = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    uri = path.resolve().as_uri() + ("?mode=ro" if wal else "?immutable=1")
    db = sqlite3.connect(uri, uri=True)
    try:
        rows, size = db.execute(
            f"SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM {table}"
        ).fetchone()
        row = (
            db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
            if dropped
            else None
        )
        oldest = db.execute(f"SELECT payload FROM {table} ORDER BY seq LIMIT 1").fetchone()
    finally:
        db.close()
    return int(rows), int(size), int(row[0]) if row else 0, oldest


def _stamp(row: Optional[tuple[Any, ...]]) -> Optional[float]:
    """The `ts` of a buffered payload (docs/mqtt.md), if it was taken with a set clock."""
    import json

    if row is None:
        return None
    try:
        body = json.loads(bytes(row[0]))
        if body.get("clock_synced") is False:
            return None
        return datetime.fromisoformat(str(body["ts"]).replace("Z", "+00:00")).timestamp()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def check_disk(cfg: Config, host: Host, backlog: Optional[Backlog]) -> Result:
    name = "disk"
    state_dir = cfg.node.state_dir
    where = _existing(state_dir)
    try:
        st = host.statvfs(str(where))
    except OSError as e:
        return failed(
            name,
            f"cannot see the free space under {state_dir}: {e.strerror}",
            "check that the SD card is mounted and readable",
        )
    free = st.f_bavail * st.f_frsize
    used = backlog.bytes if backlog is not None else 0
    room = max(0, cfg.buffer.max_bytes - used)  # what the buffer may still grow by
    what = f"{_mib(free)} free under {state_dir}"
    if where != state_dir:
        what += " (not created yet: the agent makes it at its first start)"
    if free < MIN_FREE_BYTES:
        return failed(
            name,
            f"{what}: the card is full, and the buffer has stopped growing",
            "free space on the SD card (sudo journalctl --vacuum-size=50M; delete "
            "old files) or fit a larger card",
        )
    if free - MIN_FREE_BYTES < room:
        return failed(
            name,
            f"{what}, but during an outage the buffer may grow by "
            f"{_mib(room)} (buffer.max_bytes): it would stop early and drop readings",
            "free space on the SD card, or lower buffer.max_bytes in the config",
        )
    return passed(name, f"{what}; the buffer may grow by {_mib(room)}")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def check_buffer(cfg: Config, host: Host) -> tuple[Result, Optional[Backlog]]:
    name = "buffer"
    path = cfg.buffer.path
    if not path.exists():
        return info(name, f"no buffer yet at {path}: the agent creates it when it starts"), None
    try:
        backlog = read_backlog(path, cfg.buffer.stage_dir)
    except (sqlite3.Error, OSError) as e:
        return failed(
            name,
            f"cannot read the buffer {path}: {e}",
            "run the doctor as root (sudo), or see docs/reliability.md if the buffer is damaged",
        ), None
    dropped = ""
    if backlog.dropped:
        dropped = f"; {backlog.dropped} readings were dropped earlier, when it was full"
    if backlog.rows == 0:
        return passed(name, f"empty: every reading has been delivered{dropped}"), backlog
    fill = max(backlog.rows / cfg.buffer.max_rows, backlog.bytes / cfg.buffer.max_bytes)
    waiting = f"{backlog.rows} readings waiting ({fill:.0%} of the buffer)"
    age = None if backlog.oldest_ts is None else host.now() - backlog.oldest_ts
    if age is not None:
        waiting += f", the oldest taken {_ago(age)} ago"
    if fill >= BACKLOG_NEARLY_FULL:
        return failed(
            name,
            f"{waiting}: nearly full, the oldest will soon be dropped{dropped}",
            "get the broker connection working (see 'broker'); the backlog then goes out by itself",
        ), backlog
    if age is not None and age > BACKLOG_STALE:
        return failed(
            name,
            f"{waiting}: they are not getting out{dropped}",
            "get the broker connection working (see 'broker'); nothing is lost, "
            "they go out once it connects",
        ), backlog
    return passed(name, f"{waiting}: normal while sending{dropped}"), backlog

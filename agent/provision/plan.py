"""What provisioning writes to the card, worked out in full before the first byte is written;
then either shown (--dry-run) or applied.

Applying writes only what differs: each file goes to a temporary name next to its place and is
renamed over it, and files left in our own folder from an earlier run are removed. Running it
twice leaves the card byte for byte the same.
"""

from __future__ import annotations

import difflib
import errno
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from agent.provision import ProvisionError
from agent.provision.wheels import same_wheel

Log = Callable[[str], None]
MARGIN = 4 * 1024 * 1024  # free space left on the card after writing, for the OS's own use


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the boot partition, with '/'
    mode: int
    content: Optional[bytes] = None
    source: Optional[Path] = None  # copied from here instead (wheels)
    note: str = ""

    def size(self) -> int:
        if self.content is not None:
            return len(self.content)
        assert self.source is not None
        return self.source.stat().st_size


@dataclass(frozen=True)
class Change:
    action: str  # "create", "update", "unchanged", "remove"
    path: str
    entry: Optional[Entry]


@dataclass
class Plan:
    boot: Path
    entries: list[Entry] = field(default_factory=list)
    owned: tuple[str, ...] = ()  # folders that are ours: anything else in them is removed

    def add(self, path: str, mode: int, content: bytes | str, note: str = "") -> None:
        data = content.encode() if isinstance(content, str) else content
        self.entries.append(Entry(path, mode, content=data, note=note))

    def copy(self, path: str, mode: int, source: Path, note: str = "") -> None:
        self.entries.append(Entry(path, mode, source=source, note=note))

    def changes(self) -> list[Change]:
        wanted = {e.path for e in self.entries}
        if len(wanted) != len(self.entries):
            raise ProvisionError("internal error: one file planned twice")
        out = [Change(self._action(e), e.path, e) for e in self.entries]
        for folder in self.owned:
            for path in sorted(_files(self.boot / folder)):
                rel = path.relative_to(self.boot).as_posix()
                if rel not in wanted:
                    out.append(Change("remove", rel, None))
        return out

    def _action(self, e: Entry) -> str:
        target = self.boot / e.path
        if not target.is_file():
            return "create"
        if e.source is not None and e.source.suffix == ".whl":
            # A rebuilt wheel of the same code differs only in zip timestamps: keep the card's.
            same = same_wheel(e.source, target)
        elif target.stat().st_size != e.size():
            same = False
        else:
            same = target.read_bytes() == (
                e.content if e.content is not None else e.source.read_bytes()  # type: ignore[union-attr]
            )
        return "unchanged" if same else "update"

    def describe(self, log: Log) -> None:
        """The dry run: every file, what would happen to it, and the lines that would change
        in the card's own text files."""
        for c in self.changes():
            if c.entry is None:
                log(f"  remove     {c.path}")
                continue
            e = c.entry
            note = f"  ({e.note})" if e.note else ""
            log(f"  {c.action:<10} {c.path}  {_size(e.size())}, mode {e.mode:04o}{note}")
            target = self.boot / c.path
            if c.action == "update" and e.content is not None and target.stat().st_size < 65536:
                old = target.read_text(errors="replace").splitlines()
                new = e.content.decode(errors="replace").splitlines()
                for line in list(difflib.unified_diff(old, new, lineterm="", n=0))[2:]:
                    if not line.startswith("@@"):
                        log(f"               {line}")

    def apply(self, log: Log) -> list[Change]:
        changes = self.changes()
        needed = sum(c.entry.size() for c in changes if c.entry and c.action != "unchanged")
        free = shutil.disk_usage(self.boot).free
        if needed + MARGIN > free:
            raise ProvisionError(
                f"{self.boot}: {_size(needed)} to write but {_size(free)} free; nothing written"
            )
        # Wheels are the slow part (megabytes to a card): number them as they go.
        copies = [c for c in changes if c.action != "unchanged" and c.path.endswith(".whl")]
        done = 0
        for c in changes:
            target = self.boot / c.path
            if c.action == "remove":
                target.unlink()
                continue
            assert c.entry is not None
            if c.action != "unchanged":
                if c.path.endswith(".whl"):
                    done += 1
                    log(f"    [{done}/{len(copies)}] {c.path} ({_size(c.entry.size())})")
                _write(target, c.entry)
            _chmod(target, c.entry.mode)
        for folder in self.owned:
            _remove_empty_dirs(self.boot / folder)
        return changes


def _files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for root, _dirs, files in os.walk(folder):
            for name in files:
                yield Path(root) / name


def _write(target: Path, e: Entry) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.new")
    with open(tmp, "wb") as out:
        if e.content is not None:
            out.write(e.content)
        else:
            assert e.source is not None
            with open(e.source, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)


# How filesystems without permission bits answer chmod: the kernel's vfat EPERM, a FUSE FAT
# mount (fusefat) ENOSYS, others ENOTSUP/EOPNOTSUPP or EINVAL. Any other error (EIO, ENOENT)
# is a real problem with the card and is reported.
CHMOD_UNSUPPORTED = frozenset(
    {errno.EPERM, errno.EACCES, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL}
)


def _chmod(target: Path, mode: int) -> None:
    """FAT has no permission bits: on the card this may fail or do nothing, and that is fine
    (install.sh sets the real owner and mode on the Pi)."""
    try:
        if target.stat().st_mode & 0o7777 != mode:
            os.chmod(target, mode)
    except OSError as e:
        if e.errno not in CHMOD_UNSUPPORTED:
            raise


def _remove_empty_dirs(folder: Path) -> None:
    for root, _dirs, _files in os.walk(folder, topdown=False):
        if Path(root) != folder and not os.listdir(root):
            os.rmdir(root)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"

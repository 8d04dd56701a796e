"""One agent per node: the state directory is locked while an agent runs on it.

Two agents on one state directory hand out the same sequence numbers for different readings
and kick each other off the broker (same client id). The lock is fcntl.flock on
`<state_dir>/agent.lock`: the kernel drops it when the process dies, however it dies, so a
crash never leaves a stale lock behind. The file holds the holder's pid, for the message.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Optional

LOCK_NAME = "agent.lock"


class StateDirLocked(Exception):
    """Another live process holds the state directory."""

    def __init__(self, state_dir: Path, pid: Optional[int]) -> None:
        self.state_dir, self.pid = state_dir, pid
        who = f"another roomagent (pid {pid})" if pid else "another roomagent"
        super().__init__(
            f"{who} is already running on the state directory {state_dir}; stop it first "
            "(sudo systemctl stop roomagent, or end that demo) or give this one its own "
            "--state-dir"
        )


class StateDirUnusable(Exception):
    """The state directory cannot be created or written (read-only disk, permissions)."""


class NodeLock:
    """Held from acquire() until release() or the process's end."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> NodeLock:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StateDirUnusable(
                f"cannot open the state directory {self.state_dir}: {e.strerror}; check that "
                "it is a directory writable by the agent's user and the disk is not full or "
                "read-only"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateDirLocked(self.state_dir, holder) from None
            raise StateDirUnusable(f"cannot lock {self.path}: {e.strerror}") from None
        try:  # the pid, for the next agent's message; a failed write leaves the lock valid
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> NodeLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

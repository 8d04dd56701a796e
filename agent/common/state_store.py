"""A tiny durable key-value store for the node's own state (relay states, timers, energy).

All of it is one JSON object, kept in place in a two-slot checksummed file (agent.common.slot_file):
a flush is one small pwrite and one fdatasync, and a power cut leaves the previous content or
the new, whole. A file of the earlier format (plain JSON) is read, and replaced at the first
flush. set() only marks the store dirty; the owner decides when a flush is worth an fsync (the
relay bank: at a switch a restart reads for a rule, else at least every 5 minutes).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from agent.common.slot_file import SlotFile, SlotFileError

log = logging.getLogger("roomagent.state")


class KeyValueStore(Protocol):
    """What the relay bank needs of a store: StateStore, or MemoryStore in tests."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def flush(self) -> bool: ...


class StateStore:
    def __init__(self, path: Path, now: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._now = now  # only names the file a corrupt state is moved aside to
        self._file = SlotFile(self.path)
        self._data: dict[str, Any] = self._load()
        self._dirty = False

    def _load(self) -> dict[str, Any]:
        try:
            raw = self._file.read()
        except SlotFileError:
            try:  # the earlier format: the JSON object alone
                raw = self.path.read_bytes()
            except OSError as e:
                return self._set_aside(f"cannot be read ({e})")
        except OSError as e:
            return self._set_aside(f"cannot be read ({e})")
        if raw is None:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return self._set_aside(f"is not valid JSON ({e})")
        if not isinstance(data, dict):
            return self._set_aside(f"holds a JSON {type(data).__name__}, not an object")
        return data

    def _set_aside(self, problem: str) -> dict[str, Any]:
        # Kept, not deleted: someone may want to know what the node remembered.
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._now()))
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        try:
            os.replace(self.path, aside)
            where = f"moved to {aside.name}"
        except OSError as e:
            where = f"could not be moved aside ({e}); it will be overwritten"
        log.warning("state file %s %s: %s; starting with no saved state", self.path, problem, where)
        return {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        # A JSON round trip copies the value (the caller may mutate theirs later) and makes a
        # value JSON cannot hold fail here, at its source, rather than at some later flush.
        copy = json.loads(json.dumps(value, allow_nan=False))
        if self._data.get(key, _MISSING) != copy:
            self._data[key] = copy
            self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def flush(self) -> bool:
        """Writes the file if anything changed. False if it could not (logged, kept dirty)."""
        if not self._dirty:
            return True
        data = json.dumps(self._data, sort_keys=True, separators=(",", ":")).encode()
        try:
            self._file.write(data)
        except OSError as e:  # e.g. a full or read-only card: the relays keep working
            log.warning("cannot save state to %s: %s", self.path, e)
            return False
        self._dirty = False
        return True


class MemoryStore:
    """The same API without a file: for tests and for running without a state directory."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.flushes = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value, allow_nan=False))

    def flush(self) -> bool:
        self.flushes += 1
        return True


_MISSING = object()

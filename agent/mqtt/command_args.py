"""The error a command answers with and the readers of its arguments: part of the command
contract (docs/mqtt.md), below the handlers and the controls that take commands
(agent.control.types.Published), so each refuses a bad argument the same way."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Optional

MAX_MINUTES = 7 * 24 * 60

ERRORS = {
    "too_large": "payload over 4096 bytes (65536 for cmd/config)",
    "bad_encoding": "payload is not UTF-8",
    "bad_json": "payload is neither valid JSON (an object) nor a plain value",
    "bad_argument": "a field is missing, of the wrong type, or out of range",
    "unknown_target": "no such relay, zone, scene, light group or device on this node",
    "unknown_command": "the target does not take this command",
    "expired": "the command's expiry time has passed",
    "clock_unsynced": "the command has an expiry, and this node's clock is not yet trusted",
    "refused": "a safety rule refused it (interlock, minimum time, chatter guard)",
    "controlled": "the relay belongs to a zone, light group or ventilation: command that",
    "unavailable": "the node has nothing to act on for this (no room control configured)",
    "invalid_config": "the new config was refused; the reason names the file, key and problem",
}


class CommandError(Exception):
    def __init__(self, code: str, reason: str) -> None:
        assert code in ERRORS
        super().__init__(reason)
        self.code, self.reason = code, reason


def number(body: dict[str, Any], key: str, lo: float, hi: float) -> float:
    value = body.get(key)
    if isinstance(value, str):  # Home Assistant sends setpoints as plain text
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CommandError("bad_argument", f"{key}: must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise CommandError("bad_argument", f"{key}: must be {lo:g}..{hi:g}, got {value:g}")
    return float(value)


def optional_minutes(body: dict[str, Any]) -> Optional[float]:
    return number(body, "minutes", 1, MAX_MINUTES) if "minutes" in body else None


def word(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body.get(key)
    if not isinstance(value, str) or value.lower() not in choices:
        raise CommandError("bad_argument", f"{key}: must be one of {', '.join(choices)}")
    return value.lower()


def command_verb(body: dict[str, Any]) -> str:
    """The body's "command" (Home Assistant's plain ON, OFF, a word), lower case."""
    value = body.get("command")
    if value is None:
        raise CommandError("bad_argument", "command: missing (the payload was empty or had none)")
    if not isinstance(value, str):
        raise CommandError("bad_argument", "command: must be a string")
    return value.lower()

"""Commands from the central side: `<base>/cmd/...`, every one answered, none executed twice.

A command is a topic (what to act on) and a payload: Home Assistant's plain `ON`/`OFF`/a number,
or JSON `{"id": ..., "command": ..., arguments..., "expires"|"ttl"+"ts"}`. Nothing moves unless
the whole command is valid, fresh and allowed; the answer says why not. docs/mqtt.md lists every
command and error code.
"""

from __future__ import annotations

import collections
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from agent.mqtt.command_args import CommandError, number
from agent.mqtt.contract import dumps

log = logging.getLogger("roomagent.commands")

MAX_PAYLOAD = 4096  # bytes: a command is small; anything bigger is a mistake or an attack
MAX_CONFIG_PAYLOAD = 65536  # bytes: cmd/config carries a whole node config
MAX_ID = 128  # characters
REMEMBERED_IDS = 1000  # recent ids whose answer is repeated instead of executing again
MAX_PULSE = 3600.0  # s


@dataclass(frozen=True)
class Response:
    id: Optional[str]
    ok: bool
    code: str  # "ok", or one of ERRORS
    reason: str
    result: dict[str, Any] = field(default_factory=dict)

    def payload(self, ts: str) -> bytes:
        body: dict[str, Any] = {"id": self.id, "ok": self.ok, "code": self.code,
                                "reason": self.reason, "ts": ts}  # fmt: skip
        if self.result:
            body["result"] = self.result
        return dumps(body)


def parse_payload(payload: bytes, limit: int = MAX_PAYLOAD) -> dict[str, Any]:
    """JSON object, or a plain value (`ON`, `21.5`, `eco`) as {"command": value}."""
    if len(payload) > limit:
        raise CommandError("too_large", f"payload is {len(payload)} bytes; at most {limit}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CommandError("bad_encoding", f"payload is not UTF-8 ({e.reason})") from None
    text = text.strip()
    if text.startswith(("{", "[", '"')):
        try:
            body = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise CommandError("bad_json", f"not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise CommandError("bad_json", "JSON must be an object")
        return body
    if not text:
        return {}  # ping, stats, reannounce need nothing; the others say what is missing
    if len(text) > 64 or any(ord(c) < 32 for c in text):
        raise CommandError("bad_json", "a plain payload must be one short word or number")
    return {"command": text}


def command_id(body: dict[str, Any]) -> Optional[str]:
    value = body.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise CommandError("bad_argument", f"id: must be a string of 1-{MAX_ID} characters")
    if len(value) > MAX_ID:
        raise CommandError(
            "bad_argument", f"id: {len(value)} characters; at most {MAX_ID} (not executed)"
        )
    return value


def echoed_id(body: dict[str, Any]) -> Optional[str]:
    """The id to put in a refusal: the sender's own string, even one refused as too long, so
    the answer can be matched to the command."""
    value = body.get("id")
    return value if isinstance(value, str) else None


def check_fresh(body: dict[str, Any], now: float, clock_synced: bool) -> None:
    """`expires` (RFC 3339), or `ttl` seconds counted from `ts` (RFC 3339): refused when past.
    A node whose clock NTP has not set cannot judge either, so it refuses such commands rather
    than carry out one that may be hours late."""
    deadline: Optional[float] = None
    if "expires" in body:
        deadline = _instant(body, "expires")
    elif "ttl" in body:
        ttl = number(body, "ttl", 0.001, 86400.0)
        if "ts" not in body:
            raise CommandError("bad_argument", "ttl: needs ts, the time the command was sent")
        deadline = _instant(body, "ts") + ttl
    if deadline is None:
        return
    if not clock_synced:
        raise CommandError("clock_unsynced", "cannot check the expiry: clock not synchronised")
    if now > deadline:
        raise CommandError("expired", f"expired {now - deadline:.1f} s ago")


def _instant(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if not isinstance(value, str):
        raise CommandError("bad_argument", f"{key}: must be an RFC 3339 time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError("bad_argument", f"{key}: not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise CommandError("bad_argument", f"{key}: needs a time zone (e.g. Z)")
    return parsed.timestamp()


class Deduplicator:
    """Remembers the answers to the last REMEMBERED_IDS commands: a redelivered command (QoS 1
    after a reconnect) gets the same answer again and is not executed twice."""

    def __init__(self) -> None:
        self._answers: collections.OrderedDict[str, Response] = collections.OrderedDict()

    def seen(self, command_id: Optional[str]) -> Optional[Response]:
        return self._answers.get(command_id) if command_id is not None else None

    def remember(self, command_id: Optional[str], response: Response) -> None:
        if command_id is None:
            return
        self._answers[command_id] = response
        while len(self._answers) > REMEMBERED_IDS:
            self._answers.popitem(last=False)


Handler = Callable[[list[str], dict[str, Any]], dict[str, Any]]


class CommandProcessor:
    """Turns one received command into one Response. `handlers` maps the first topic level
    after cmd/ (relay, zone, scene, lights, device, ping, stats, reannounce) to a function of
    (the remaining topic levels, the parsed body) that acts and returns a result, or raises
    CommandError."""

    def __init__(
        self,
        handlers: dict[str, Handler],
        now: Callable[[], float],
        clock_synced: Callable[[], bool],
    ) -> None:
        self.handlers, self.now, self.clock_synced = handlers, now, clock_synced
        self.dedupe = Deduplicator()
        self.executed = self.refused = 0

    def process(self, path: list[str], payload: bytes) -> Response:
        body: dict[str, Any] = {}
        ident: Optional[str] = None
        try:
            limit = MAX_CONFIG_PAYLOAD if path[:1] == ["config"] else MAX_PAYLOAD
            body = parse_payload(payload, limit)
            ident = command_id(body)
            earlier = self.dedupe.seen(ident)
            if earlier is not None:
                return earlier
            check_fresh(body, self.now(), self.clock_synced())
            handler = self.handlers.get(path[0]) if path else None
            if handler is None:
                raise CommandError("unknown_target", f"no command family {'/'.join(path)!r}")
            result = handler(path[1:], body)
            response = Response(ident, True, "ok", result.pop("reason", "done"), result)
            self.executed += 1
        except CommandError as e:
            response = Response(ident or echoed_id(body), False, e.code, e.reason)
            self.refused += 1
        except Exception as e:  # a bug of ours must not stop the agent: answer and log it
            log.exception("command %s failed", "/".join(path))
            response = Response(ident, False, "bad_argument", f"internal error: {e}")
            self.refused += 1
        self.dedupe.remember(ident, response)
        return response

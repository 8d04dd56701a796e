"""Reading one TOML table of a config, checked as it is read: each value's type and range,
and, at the end, every key that was not used (a typo) named with what was meant. Every
section's parser (agent.config.schema and its config_* modules) reads through a Table."""

from __future__ import annotations

from typing import Any, Callable, NoReturn, Optional, TypeVar

from agent.common.suggest import hint
from agent.config.control import NAME_RE
from agent.config.errors import ConfigError, ConfigErrors, unknown_key

T = TypeVar("T")
_REQUIRED: Any = object()


class Table:
    """Reads one TOML table, tracking which keys were used so leftovers (typos) are errors."""

    def __init__(self, data: Any, path: str, file: str) -> None:
        self.file, self.path = file, path
        if not isinstance(data, dict):
            raise ConfigError(file, path, f"must be a table, got {show(data)}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()
        # Bad optional values, reported by finish() with the unknown keys (the default stands in
        # meanwhile), so one table's several mistakes come out together.
        self.problems: list[ConfigError] = []

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), message)

    def get(
        self,
        name: str,
        kind: type[T],
        default: Any = _REQUIRED,
        check: Optional[Callable[[T], Optional[str]]] = None,
    ) -> T:
        self.used.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                near = [k for k in self.data if hint(k, [name])]
                if near:  # "intreval" for "interval": the typo is the news, not the absence
                    self.fail(near[0], f"unknown key {near[0]!r} - did you mean {name!r}?")
                self.fail(name, "is required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        problem: Optional[str]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problem = f"must be {KIND_NAMES.get(kind, kind.__name__)}, got {show(value)}"
        else:
            problem = check(value) if check is not None else None
        if not problem:
            return value
        if default is _REQUIRED:
            self.fail(name, problem)
        self.problems.append(self.error(name, problem))
        return default

    def fail(self, name: str, message: str) -> NoReturn:
        """Raises this problem with those found before it in this table."""
        errors = [*self.problems, self.error(name, message)]
        self.problems = []
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)

    def table(self, name: str) -> Table:
        self.used.add(name)
        return Table(self.data.get(name, {}), self.key(name), self.file)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        errors = self.problems + [self.error(k, unknown_key(k, self.used)) for k in unknown]
        self.problems = []
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ConfigErrors(errors)


KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a table"}  # fmt: skip


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def at_least(minimum: float, unit: str = "") -> Callable[[Any], Optional[str]]:
    suffix = f" {unit}" if unit else ""
    return lambda v: None if v >= minimum else f"must be ≥ {minimum:g}{suffix}, got {v:g}"


def between(lo: float, hi: float, unit: str = "") -> Callable[[Any], Optional[str]]:
    suffix = f" {unit}" if unit else ""
    return lambda v: None if lo <= v <= hi else f"must be {lo:g}..{hi:g}{suffix}, got {v:g}"


def one_of(*choices: str) -> Callable[[str], Optional[str]]:
    return lambda v: (
        None
        if v in choices
        else f"must be one of {', '.join(map(repr, choices))}, got {v!r}{hint(v, choices)}"
    )


def name_check(v: str) -> Optional[str]:
    if NAME_RE.match(v):
        return None
    return f"must be 1-64 letters, digits, '-' or '_' (it becomes part of MQTT topics), got {v!r}"


def topic_check(v: str) -> Optional[str]:
    if not v or v.startswith("/") or v.endswith("/") or any(c in v for c in "+#\0"):
        return f"must be a topic without wildcards or leading/trailing '/', got {v!r}"
    return None

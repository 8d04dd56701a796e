"""A config's errors: each names the file, the key path and the problem; ConfigErrors carries
all of them when a config has several, so an installer fixes them in one round."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from agent.common.suggest import hint
from agent.config.control import Problems

T = TypeVar("T")


class ConfigError(Exception):
    def __init__(self, file: str, key: str, message: str) -> None:
        self.file, self.key, self.message = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")

    @property
    def errors(self) -> list[ConfigError]:
        """Every problem found (ConfigErrors holds several); each prints as one line."""
        return [self]


class ConfigErrors(ConfigError):
    """Several problems in one config, all found in one pass; the first gives file, key and
    message, str() is one line per problem."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.key, first.message)
        self._errors = errors
        self.args = ("\n".join(str(e) for e in errors),)

    @property
    def errors(self) -> list[ConfigError]:
        return list(self._errors)


class Collector:
    """Runs independent parts of a parse, keeping every ConfigError so all are reported."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[ConfigError] = []

    def run(self, part: Callable[[], T], fallback: Any = None) -> Any:
        try:
            return part()
        except ConfigError as e:
            self.add(*e.errors)
        except Problems as p:
            self.add(*(e for e in p.errors if isinstance(e, ConfigError)))
        return fallback

    def add(self, *errors: ConfigError) -> None:
        seen = {str(e) for e in self.errors}
        self.errors.extend(e for e in errors if str(e) not in seen)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)


def unknown_key(key: str, known: Any) -> str:
    """The problem of an unknown key: the near known key if there is one, else all of them."""
    near = hint(key, known)
    if near:
        return f"unknown key {key!r}{near}"
    return f"unknown key (known keys here: {', '.join(sorted(known))})"

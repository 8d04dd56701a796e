"""A device's report policy, as its config declares it: which of its samples become stored
readings (agent.pipeline.reporting applies it). It sits in config so the loader can build and check
it without importing the pipeline above it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable

AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "last": lambda values: values[-1],
    "mean": lambda values: sum(values) / len(values),
    "min": min,
    "max": max,
}


@dataclass(frozen=True)
class ReportPolicy:
    every: int = 1  # report one reading per this many samples
    aggregate: str = "last"  # one of AGGREGATES
    # quantity -> change from the last reported value that is reported at once
    deadband: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def passthrough(self) -> bool:
        return self.every == 1

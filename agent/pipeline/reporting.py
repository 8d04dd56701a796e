"""Sampling apart from reporting: which samples of a device become a stored reading.

A device may sample at its algorithm's cadence (an SGP40's VOC index wants a sample a second)
and report less often: every `every` samples, or at once when a quantity moves more than its
deadband from the value last reported, whichever comes first. What is reported is one statistic
of the samples since the last report, per quantity: the last value, their mean, their minimum
or their maximum (`aggregate`). Samples that are not reported still update the device's
retained state topic, so a dashboard sees the latest value.

This module is pure (no I/O, no clock): the runtime feeds it samples and stores what it says.
It is the same shape as ESPHome's sensor filters (throttle, delta) and Telegraf's aggregators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from agent.config.report import AGGREGATES, ReportPolicy


@dataclass(frozen=True)
class Report:
    values: Mapping[str, float]
    samples: int  # how many samples the values summarise
    aggregate: str


class Aggregator:
    """One device's samples since its last report."""

    def __init__(self, policy: ReportPolicy) -> None:
        if policy.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        if policy.every < 1:
            raise ValueError("every must be at least 1")
        self.policy = policy
        self._window: dict[str, list[float]] = {}
        self._count = 0
        self._reported: dict[str, float] = {}

    def add(self, values: Mapping[str, float]) -> Optional[Report]:
        """Takes one sample; returns what to report now, or None."""
        self._count += 1
        for quantity, value in values.items():
            self._window.setdefault(quantity, []).append(value)
        if self._count < self.policy.every and not self._moved(values):
            return None
        reduce = AGGREGATES[self.policy.aggregate]
        report = Report(
            {q: reduce(v) for q, v in self._window.items()}, self._count, self.policy.aggregate
        )
        self._reported.update(report.values)
        self._window.clear()
        self._count = 0
        return report

    def _moved(self, values: Mapping[str, float]) -> bool:
        for quantity, band in self.policy.deadband.items():
            if quantity not in values:
                continue
            last = self._reported.get(quantity)
            if last is None or abs(values[quantity] - last) > band:
                return True
        return False

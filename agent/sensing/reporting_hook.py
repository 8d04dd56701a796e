"""The runtime's side of agent.pipeline.reporting: one Aggregator per device, kept while its policy
stays the same (a reload that changes it starts a new window)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from agent.config.report import ReportPolicy
from agent.config.schema import DeviceConfig
from agent.pipeline.reporting import Aggregator
from agent.sensing.runner import Sample


class Reports:
    def __init__(self) -> None:
        self._by_device: dict[str, Aggregator] = {}

    def add(
        self, sample: Sample, devices: Sequence[DeviceConfig]
    ) -> Optional[tuple[Sample, Optional[Mapping[str, Any]]]]:
        """The sample to store (its values the aggregate, and what summarises them), or None
        if this sample is not reported."""
        policy = next((d.report for d in devices if d.name == sample.device), ReportPolicy())
        if policy.passthrough and not policy.deadband:
            return sample, None
        aggregator = self._by_device.get(sample.device)
        if aggregator is None or aggregator.policy != policy:
            aggregator = self._by_device[sample.device] = Aggregator(policy)
        report = aggregator.add(sample.values)
        if report is None:
            return None
        summary = {"stat": report.aggregate, "samples": report.samples}
        return dataclasses.replace(sample, values=report.values), summary

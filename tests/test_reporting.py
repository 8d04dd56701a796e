"""Sampling apart from reporting (issue 19): the aggregator, its config, and the agent using it."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Callable

import pytest

from agent.config import schema as config
from agent.config.report import ReportPolicy
from agent.config.schema import ConfigError
from agent.pipeline.reporting import Aggregator
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Subscriber


def feed(agg: Aggregator, temps: list[float]) -> list[object]:
    return [agg.add({"temperature": t}) for t in temps]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("last", 14.0), ("mean", 12.0), ("min", 10.0), ("max", 14.0)],
)
def test_every_n_samples_reports_the_stated_aggregate(aggregate: str, expected: float) -> None:
    agg = Aggregator(ReportPolicy(every=3, aggregate=aggregate))
    out = feed(agg, [10.0, 12.0, 14.0, 20.0])
    assert out[0] is None and out[1] is None and out[3] is None
    report = out[2]
    assert report is not None and report.values == {"temperature": expected}  # type: ignore[attr-defined]
    assert report.samples == 3 and report.aggregate == aggregate  # type: ignore[attr-defined]


def test_a_change_beyond_the_deadband_is_reported_at_once() -> None:
    policy = ReportPolicy(every=60, aggregate="last",
                          deadband=MappingProxyType({"temperature": 0.5}))  # fmt: skip
    agg = Aggregator(policy)
    out = feed(agg, [21.0, 21.2, 21.4, 21.6, 21.7])
    reported = [r.values["temperature"] if r else None for r in out]  # type: ignore[attr-defined]
    # the first sample goes out (nothing reported yet); 21.6 is 0.6 away from 21.0
    assert reported == [21.0, None, None, 21.6, None]


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="aggregate must be one of"):
        Aggregator(ReportPolicy(aggregate="median"))


def _device(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "n.toml"
    path.write_text('[node]\nid = "r"\n[[devices]]\nname = "voc"\ndriver = "sgp40"\n'
                    f"interval = 1\n{extra}")  # fmt: skip
    return path


def test_config_keys(tmp_path: Path) -> None:
    path = _device(tmp_path, 'report_every = 60\nreport_aggregate = "mean"\n'
                             "[devices.report_deadband]\nvoc_index = 25\n")  # fmt: skip
    report = config.load(path).devices[0].report
    assert (report.every, report.aggregate, dict(report.deadband)) == (
        60,
        "mean",
        {"voc_index": 25.0},
    )
    with pytest.raises(ConfigError, match=r"devices\[0\]\.report_aggregate: must be one of"):
        config.load(_device(tmp_path, 'report_aggregate = "median"\n'))
    with pytest.raises(ConfigError, match=r"report_deadband\.co2: sgp40 has no such quantity"):
        config.load(_device(tmp_path, "[devices.report_deadband]\nco2 = 50\n"))


def test_the_agent_stores_one_reading_per_n_samples_and_says_what_it_is(
    tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    sub = Subscriber(broker.port, "roomagent/test-node/#")
    devices = ('[[devices]]\nname = "climate"\ndriver = "bme280"\ninterval = 1\n'
               'report_every = 3\nreport_aggregate = "mean"\n')  # fmt: skip
    agent = agent_process(node_config(broker.port, tmp_path / "state", devices=devices))
    agent.start()
    try:
        assert sub.wait_for(lambda ms: len(sub.on("/telemetry/climate")) >= 3, 40), agent.output()
        states = len(sub.on("/state/climate"))
        assert agent.terminate() == 0
    finally:
        sub.close()
        broker.stop()
    bodies = [json.loads(m.payload) for m in sub.on("/telemetry/climate")]
    assert all(b["aggregate"] == {"stat": "mean", "samples": 3} for b in bodies)
    seqs = [b["seq"] for b in bodies]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one seq per report, not per sample
    assert states >= 2 * len(bodies)  # every sample still moved the retained state

"""Every benchmark runs at its smoke size through the one command, and writes well-formed JSON.

This checks the benchmarks still work, not the figures: those come from a full run
(`python -m benchmarks.run`, docs/benchmarks.md), which is too slow for CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import NAMES

# Independent of the Python version: run on one leg of CI (see .ci/run).
pytestmark = pytest.mark.one_leg

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.long
def test_every_benchmark_runs_small_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--size", "smoke", "--out", str(out)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    whole = json.loads((out / "latest.json").read_text())
    assert whole["size"] == "smoke"
    assert whole["machine"]["nproc"] >= 1 and whole["machine"]["python"]
    assert set(whole["results"]) == set(NAMES)
    for name in NAMES:
        alone = json.loads((out / f"{name}.json").read_text())
        assert alone["results"][name] == whole["results"][name]
        result = whole["results"][name]
        assert "error" not in result, result["error"]
        assert result["figures"], f"{name} reported no figure"
        for f in result["figures"]:
            assert set(f) == {"figure", "value", "baseline"} and f["figure"] and f["value"]
        for t in result["targets"]:
            assert isinstance(t["met"], bool) and t["target"] and t["detail"]
        assert f"{name}" in proc.stdout  # the printed table names every benchmark

    # Figures a run must always have, whatever the machine.
    r = whole["results"]
    assert r["drain"]["runs"]["mosquitto"]["agent_msgs_per_s"] > 0
    assert r["ingest"]["settings"]["full"]["disk_bytes_per_reading"] > 0
    latency = r["latency"]["runs"]["mosquitto-nodelay"]
    assert latency["agent"]["commands"] == 20 and latency["bare_paho"]["commands"] == 20
    assert latency["agent"]["unanswered"] == 0 and latency["agent"]["misrouted_answers"] == 0
    # The agents' own lists of modules, written as they exited: none loads what its config does
    # not use (watchdog it does use: it watches the config file); a node without room control
    # does not even load gpiozero.
    for agent in ("agent", "sensors-only"):
        modules = r["footprint"][agent]["modules"]
        assert modules["count"] > 100 and modules["optional_loaded"] == ["watchdog"]
        # An idle agent waits: one that spins (as a forwarder once did, re-reading an empty
        # buffer) burns a whole core, 60 CPU-seconds a minute.
        assert r["footprint"][agent]["cpu_s_per_min"] < 10
    assert "gpiozero" in r["footprint"]["agent"]["modules"]["third_party"]
    assert "gpiozero" not in r["footprint"]["sensors-only"]["modules"]["third_party"]
    assert r["fleet"]["runs"]["mosquitto"]["loss"]["missing"] == 0
    assert r["decode"]["ble"]["available"] is True
    # What benchmarks.plot draws from: every percentile of each distribution, in order, and
    # the storm's times one per node.
    for who in ("agent", "bare_paho"):
        curve = latency[who]["to_pin_ms"]["percentiles"]
        assert len(curve) == 101 and curve == sorted(curve)
        assert latency[who]["to_pin_ms"]["p50"] == pytest.approx(curve[50], abs=0.006)
    storm = r["fleet"]["runs"]["mosquitto"]["storm"]
    nodes = r["fleet"]["runs"]["mosquitto"]["nodes"]
    assert len(storm["back_after_s"]) == len(storm["drained_after_s"]) == nodes
    # Cadence (issue 15): on the council chamber's bus the SGP40 keeps its algorithm's 1 s
    # (± 5 %) when the bus is scheduled, and does not when each read holds the bus.
    chamber = r["cadence"]["profiles"]["council-chamber.toml"]
    scheduled, baseline = chamber["i2c-1 scheduled"], chamber["i2c-1 one-at-a-time"]
    assert scheduled["devices"]["voc"]["achieved_s"] == pytest.approx(1.0, abs=0.05)
    assert baseline["devices"]["voc"]["achieved_s"] > 1.5
    assert scheduled["devices"]["voc"]["first_value_s"] <= 60
    assert 0 < scheduled["utilisation_transfers"] < baseline["utilisation_held"]
    assert all(t["met"] for t in r["cadence"]["targets"]), r["cadence"]["targets"]


def test_one_benchmark_alone_and_a_parameter(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "ingest", "--size", "smoke",
         "--set", "ingest.rows=7", "--set", "ingest.durability=normal", "--out", str(out)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    whole = json.loads((out / "latest.json").read_text())
    assert list(whole["results"]) == ["ingest"]
    result = whole["results"]["ingest"]
    assert result["params"] == {"rows": 7, "durability": ["normal"]}
    assert list(result["settings"]) == ["normal"]
    assert not (out / "drain.json").exists()


def test_a_bad_parameter_is_refused_with_its_name(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "ingest", "--set", "ingest.rowz=7",
         "--out", str(tmp_path)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "ingest has no parameter 'rowz'" in proc.stderr
    assert not (tmp_path / "latest.json").exists()

"""Draws the two benchmark results that read better as a picture than as a table.

    python -m benchmarks.plot [RESULTS_JSON] [--out DIR]

- latency.svg (or .png): the distribution of command-to-relay times, agent and bare paho, per broker
  (a tail that a p99 alone hides).
- storm.svg: after a broker restart, how many nodes were back and how many had delivered their
  whole backlog, over time, per broker.

RESULTS_JSON is a run's latest.json (default benchmarks/results/latest.json) or a benchmark's
own JSON. matplotlib is needed for this and nothing else: `pip install -e ".[plot]"`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO

BROKER_LABELS = {
    "mosquitto": "mosquitto as shipped",
    "mosquitto-nodelay": "mosquitto, set_tcp_nodelay true",
    "nats": "NATS cluster (MQTT 3.1.1)",
}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit('benchmarks.plot needs matplotlib: pip install -e ".[plot]"') from None
    matplotlib.use("agg")
    # The same results give the same file: no date, fixed ids.
    matplotlib.rcParams["svg.hashsalt"] = "roomagent"
    import matplotlib.pyplot as plt

    return plt


def _panels(runs: dict[str, Any]) -> tuple[Any, list[Any]]:
    """A figure with one panel per broker, side by side, sharing the vertical axis."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(max(6.0, 4.2 * len(runs)), 3.8), sharey=True)
    return fig, list(axes) if len(runs) > 1 else [axes]


def _save(fig: Any, title: str, path: Path) -> Path:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    _pyplot().close(fig)
    return path


def plot_latency(latency: dict[str, Any], out: Path, machine: str, fmt: str = "svg") -> Path:
    runs = latency["runs"]
    fig, axes = _panels(runs)
    percent = list(range(101))
    for ax, (kind, run) in zip(axes, runs.items()):
        for who, style in (("agent", "-"), ("bare_paho", "--")):
            ms = run[who]["to_pin_ms"]["percentiles"]
            label = "roomagent" if who == "agent" else "bare paho-mqtt"
            ax.plot(ms, percent, style, label=label, drawstyle="steps-post")
        ax.set_xscale("log")
        ax.set_title(BROKER_LABELS.get(kind, kind), fontsize=10)
        ax.set_xlabel("command to relay pin, ms (log)")
        ax.axvline(20, color="grey", linewidth=0.8, linestyle=":", label="target for p99")
        ax.grid(True, which="both", linewidth=0.3)
    axes[0].set_ylabel("% of commands at most this slow")
    axes[0].legend(loc="lower right", fontsize=8)
    commands = run["agent"]["commands"]
    title = f"Relay command latency, {commands} commands ({machine})"
    return _save(fig, title, out / f"latency.{fmt}")


def plot_storm(fleet: dict[str, Any], out: Path, machine: str, fmt: str = "svg") -> Path:
    runs = fleet["runs"]
    fig, axes = _panels(runs)
    for ax, (kind, run) in zip(axes, runs.items()):
        storm, nodes = run["storm"], run["nodes"]
        for key, label, style in (
            ("back_after_s", "connected again", "-"),
            ("drained_after_s", "whole backlog delivered", "--"),
        ):
            times = storm[key]
            ax.plot([0, *times], range(len(times) + 1), style, label=label, drawstyle="steps-post")
        ax.set_title(f"{BROKER_LABELS.get(kind, kind)}, {storm['outage_s']} s down", fontsize=10)
        ax.set_xlabel("seconds after the broker restarted")
        ax.set_ylim(0, nodes * 1.02)
        ax.grid(True, linewidth=0.3)
    axes[0].set_ylabel(f"nodes, of {nodes}")
    axes[0].legend(loc="lower right", fontsize=8)
    title = f"Reconnect storm: {nodes} agents after a broker restart ({machine})"
    return _save(fig, title, out / f"storm.{fmt}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.plot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", nargs="?", type=Path,
                        default=REPO / "benchmarks" / "results" / "latest.json")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--format", choices=("svg", "png"), default="svg")
    args = parser.parse_args(argv)
    document = json.loads(args.results.read_text())
    results = document["results"]  # a whole run's, or one benchmark's (same shape)
    m = document.get("machine", {})
    machine = f"{m.get('nproc', '?')} CPUs, Python {m.get('python', '?')}"
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = []
    if "latency" in results:
        drawn.append(plot_latency(results["latency"], args.out, machine, args.format))
    if "fleet" in results:
        drawn.append(plot_storm(results["fleet"], args.out, machine, args.format))
    if not drawn:
        raise SystemExit(f"{args.results}: no latency or fleet results to draw")
    for path in drawn:
        print(path)


if __name__ == "__main__":
    main()

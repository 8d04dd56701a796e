"""What every benchmark shares: its description, sizes, process figures from /proc, the machine.

A benchmark is a module with a `BENCHMARK` (below). `run` gets the parameters of the chosen size
(overridable from the command line) and a scratch directory, and returns a JSON-able dict that
always carries `figures` (rows for the table) and `targets` (the issue's targets, met or not).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Params = dict[str, Any]
Result = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    name: str
    summary: str
    sizes: dict[str, Params]  # "full" (the documented figures) and "smoke" (seconds, for CI)
    run: Callable[[Params, Path], Result]


def figure(what: str, value: str, baseline: str = "") -> dict[str, str]:
    """One row of the printed table: what was measured, the value, and the same-run baseline."""
    return {"figure": what, "value": value, "baseline": baseline}


def target(what: str, met: bool, detail: str) -> dict[str, Any]:
    return {"target": what, "met": bool(met), "detail": detail}


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least the first
    return ordered[int(rank) - 1]


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (/proc/<pid>/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def write_bytes() -> int:
    """Bytes this process has caused to be written to the storage layer (/proc/self/io)."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("write_bytes"))


def filesystem(path: Path) -> str:
    """The file system type and device under path (from /proc/mounts): fsync costs differ."""
    path = path.resolve()
    best = ("", "unknown", "unknown")
    with open("/proc/mounts") as f:
        for line in f:
            device, mount, kind = line.split()[:3]
            inside = path == Path(mount) or Path(mount) in path.parents
            if inside and len(mount) > len(best[0]):
                best = (mount, kind, device)
    return f"{best[1]} on {best[2]}"


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def _version(command: list[str], pattern: str) -> str:
    exe = shutil.which(command[0]) or shutil.which(command[0], path="/usr/sbin:/usr/local/sbin")
    if exe is None:
        return "not installed"
    out = subprocess.run([exe, *command[1:]], capture_output=True, text=True, timeout=10)
    found = re.search(pattern, out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def machine() -> dict[str, Any]:
    """Where the figures were measured: they only mean something next to this."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    import paho.mqtt

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_mib": mem_kib // 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "paho_mqtt": paho.mqtt.__version__,
        "mosquitto": _version(["mosquitto", "-h"], r"mosquitto version (\S+)"),
        "nats_server": _version(["nats-server", "--version"], r"v(\d[\w.]*)"),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def render(results: dict[str, Result]) -> str:
    """The table printed at the end of a run."""
    rows = [("benchmark", "figure", "value", "baseline in the same run")]
    for name, result in results.items():
        for f in result.get("figures", []):
            rows.append((name, f["figure"], f["value"], f["baseline"]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    checks = [
        f"  [{'met' if t['met'] else 'MISSED'}] {name}: {t['target']} ({t['detail']})"
        for name, result in results.items()
        for t in result.get("targets", [])
    ]
    if checks:
        lines += ["", "targets:", *checks]
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def python_env() -> dict[str, str]:
    """The environment for child processes: this checkout's code, whatever was installed."""
    return dict(os.environ, PYTHONPATH=str(REPO))


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def stop_processes(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every agent still running, then each waited for (30 s), killed if it hangs:
    all of them stop together, not one after the other."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


PYTHON = sys.executable

# The profile the footprint, latency and fleet benchmarks run: the council chamber, once it is
# in firmware_configs/; until then the demo room, which has the same kind of sensors and control.
PROFILES = (
    REPO / "firmware_configs" / "council-chamber.toml",
    REPO / "firmware_configs" / "demo.toml",
)


def profile_path(params: Params) -> Path:
    if params.get("config"):
        return Path(params["config"]).resolve()
    return next(p for p in PROFILES if p.exists())


def load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are valid in TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_toml(data: dict[str, Any]) -> str:
    """A node config back to TOML: top-level tables and arrays of tables; anything deeper is
    written inline. Enough for the configs in firmware_configs/, which the benchmarks adapt
    (node id, broker, state directory) for each run."""
    lines: list[str] = []
    for name, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines.append(f"\n[[{_toml_key(name)}]]")
                lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items()]
        elif isinstance(value, dict):
            lines.append(f"\n[{_toml_key(name)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{_toml_key(name)} = {_toml_value(value)}")
    return "\n".join(lines).lstrip() + "\n"


def node_config(
    profile: Path,
    *,
    node_id: str,
    port: int,
    protocol: str,
    state_dir: Path,
    extra: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """The profile, as a node `node_id` on a loopback broker, with its own state directory."""
    data = load_toml(profile)
    # clock = "synced": a benchmark machine whose kernel does not report NTP would otherwise
    # hold readings for hold_unsynced (docs/reliability.md), which is not what is measured.
    data["node"] = {**data.get("node", {}), "id": node_id, "state_dir": str(state_dir),
                    "simulate": True, "clock": "synced"}  # fmt: skip
    data["broker"] = {**data.get("broker", {}), "host": "127.0.0.1", "port": port,
                      "protocol": protocol, "client_id": f"roomagent-{node_id}"}  # fmt: skip
    data["buffer"] = {**data.get("buffer", {}), "path": str(state_dir / "buffer.sqlite")}
    for key, value in (extra or {}).items():
        data[key] = value
    return data


def start_broker(kind: str, workdir: Path) -> Any:
    """A started broker: "mosquitto" (its stock settings, as the tests run it),
    "mosquitto-nodelay" (the same with set_tcp_nodelay true: see docs/benchmarks.md, command
    latency) or "nats" (a three-server cluster speaking MQTT 3.1.1)."""
    from tests.mqtt_fixtures import Broker, make_broker

    if kind == "mosquitto-nodelay":
        broker: Any = Broker(workdir, extra_conf="set_tcp_nodelay true\n")
        broker.kind = kind
    else:
        broker = make_broker(kind, workdir)
    broker.start()
    return broker

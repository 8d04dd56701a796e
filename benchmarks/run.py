"""Runs the benchmarks: all of them, or those named, printing a table and writing JSON.

    python -m benchmarks.run [NAME ...] [--size full|smoke] [--set NAME.KEY=VALUE ...] [--out DIR]

Names: ingest, drain, latency, footprint, fleet, decode, modbus, room, cadence (see
docs/benchmarks.md). `--size smoke` runs each at a tiny size in seconds (what CI runs, through
tests/test_benchmarks_smoke.py); `full` (the default) gives the documented figures.
`--set drain.rows=10000` overrides one parameter (VALUE is read as JSON when it parses, else as
text; a comma list for list keys).
Each benchmark's result goes to DIR/<name>.json and the whole run to DIR/latest.json, DIR being
benchmarks/results/ unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, Benchmark, Params, loadavg, machine, render, write_json

NAMES = (
    "ingest",
    "drain",
    "latency",
    "footprint",
    "fleet",
    "decode",
    "modbus",
    "room",
    "cadence",
    "writes",
)


def load(name: str) -> Benchmark:
    benchmark: Benchmark = importlib.import_module(f"benchmarks.{name}").BENCHMARK
    return benchmark


def _value(text: str, default: Any) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(default, list) and isinstance(value, str):
        value = [v for v in value.split(",") if v]
    return value


def parameters(benchmark: Benchmark, size: str, overrides: list[str]) -> Params:
    params = dict(benchmark.sizes[size])
    for item in overrides:
        key, sep, text = item.partition("=")
        name, dot, field = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"--set {item!r}: expected NAME.KEY=VALUE")
        if name != benchmark.name:
            continue
        if field not in params:
            raise SystemExit(
                f"--set {item!r}: {name} has no parameter {field!r} (it has {sorted(params)})"
            )
        params[field] = _value(text, params[field])
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)}")
    parser.add_argument("--size", choices=("full", "smoke"), default="full")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="NAME.KEY=VALUE")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(NAMES)}")
    names = args.names or list(NAMES)
    for item in args.overrides:
        if item.partition(".")[0] not in NAMES:
            parser.error(f"--set {item!r}: {item.partition('.')[0]!r} is not a benchmark")

    document: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "size": args.size,
        "machine": machine(),
        "loadavg_at_start": loadavg(),
        "results": {},
    }
    failed = False
    # `kill` stops a run as Ctrl-C does, so that each benchmark's clean-up stops what it started
    # (agents, brokers) instead of leaving them running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    scratch = tempfile.mkdtemp(prefix="roomagent-bench-")
    for name in names:
        benchmark = load(name)
        params = parameters(benchmark, args.size, args.overrides)
        print(f"==> {name}: {benchmark.summary} {json.dumps(params)}", flush=True)
        # Whatever the previous benchmark left in the page cache is written out first, so that
        # its writeback does not slow this one's fsyncs.
        os.sync()
        began = time.monotonic()
        try:
            result = benchmark.run(params, Path(scratch) / name)
        except Exception as e:  # one benchmark failing does not lose the others' figures
            traceback.print_exc()
            result = {"error": f"{type(e).__name__}: {e}", "figures": [], "targets": []}
            failed = True
        result = {"params": params, "seconds": round(time.monotonic() - began, 1), **result}
        document["results"][name] = result
        write_json(args.out / f"{name}.json", {**document, "results": {name: result}})
        for f in result["figures"]:
            print(f"    {f['figure']}: {f['value']}" + (f"  [{f['baseline']}]" if f["baseline"]
                                                         else ""), flush=True)  # fmt: skip
    document["loadavg_at_end"] = loadavg()
    write_json(args.out / "latest.json", document)
    print()
    print(render(document["results"]))
    errors = {n: r["error"] for n, r in document["results"].items() if "error" in r}
    for name, error in errors.items():
        print(f"  [ERROR] {name}: {error}")
    print(f"\nJSON: {args.out / 'latest.json'}")
    if not args.keep:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"scratch kept in {scratch}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Write budget: what the agent writes to its SD card, per reading and per day (issue 19).

Method (/work/shared/notes/storage-measurement.md): each agent's state directory is on its own
loop-mounted ext4 (4 KiB blocks, noatime, journal on, as on the Pi), so the loop device's
/sys/block/loopN/stat counts what a card would receive: data, the ext4 journal and metadata
(sectors written; flush requests). fsync and fdatasync calls are counted by strace attached to
the agent for the window. Readings are counted by a subscriber: every telemetry message whose
`ts` falls in the window, de-duplicated on seq, after the backlog has been delivered.

Each run starts two agents side by side on one broker, each on its own loop device: the
baseline, the same profile with `durability = "full"` (every reading fsync'd to the card, the
design before the RAM stage), and the profile as shipped (`staged`). The broker is up for the
warm-up; then for the window it is up, down (stopped for the whole window), or flapping (down
5 s, up 10 s). Needs root (losetup, mount); the RAM stage lives in /dev/shm as on a Pi without
systemd's RuntimeDirectory.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PYTHON,
    REPO,
    Benchmark,
    Params,
    Result,
    dump_toml,
    figure,
    node_config,
    python_env,
    start_broker,
    stop_processes,
    target,
)
from tests.mqtt_fixtures import Subscriber

DESIGNS = {"baseline": "full", "staged": "staged"}
# Issue 19's acceptance, for the council chamber with the default settings.
TARGET_UP_BYTES = 512
TARGET_UP_MB_DAY = 50
TARGET_DOWN_BYTES = 2048
TARGET_FSYNC_MIN = 6
SECTOR = 512


@contextlib.contextmanager
def loop_ext4(image: Path, mount: Path, mib: int, options: str = "noatime") -> Iterator[str]:
    """A fresh ext4 on a loop device, mounted at `mount`; yields the device's name (loopN)."""
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(mib * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", str(image)], check=True)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    try:
        mount.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-o", options, device, str(mount)], check=True)
        try:
            yield Path(device).name
        finally:
            subprocess.run(["umount", str(mount)], check=False)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def block_stat(name: str) -> tuple[int, int]:
    """Bytes written to the device and flush requests completed (/sys/block/NAME/stat)."""
    fields = [int(x) for x in Path(f"/sys/block/{name}/stat").read_text().split()]
    flushes = fields[15] if len(fields) >= 17 else 0
    return fields[6] * SECTOR, flushes


class SyscallCount:
    """fsync and fdatasync calls of a running process (all its threads), by strace."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            # -y names each call's file, so a run says which file each sync was for
            ["strace", "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(out), "-p", str(pid)],
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> tuple[int, dict[str, int]]:
        """(calls, calls by file name); calls is -1 if strace would not stop."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1, {}
        calls = 0
        by_file: dict[str, int] = {}
        started: dict[str, str] = {}  # pid -> file of a call another thread split
        for line in self.out.read_text().splitlines():
            # "1234 fdatasync(7</s/control.json>) = 0", or split by another thread:
            # "1234 fdatasync(7</s/x> <unfinished ...>" then "1234 <... fdatasync resumed>) = 0"
            pid = line.split(" ", 1)[0]
            begun = re.search(r"\bf(?:data)?sync\(\d+(?:<([^>]*)>)?", line)
            if begun and "<unfinished" in line:
                started[pid] = begun.group(1) or "?"
                continue
            if begun and re.search(r"\)\s+= 0", line):
                name = begun.group(1) or "?"
            elif re.search(r"f(data)?sync resumed>.*= 0", line):
                name = started.pop(pid, "?")
            else:
                continue
            calls += 1
            name = Path(name).name
            by_file[name] = by_file.get(name, 0) + 1
        return calls, by_file


def _ts(payload: bytes) -> tuple[int, float]:
    body = json.loads(payload)
    when = datetime.datetime.fromisoformat(body["ts"].replace("Z", "+00:00")).timestamp()
    return int(body["seq"]), when


def counted(sub: Subscriber, node: str, t0: float, t1: float) -> int:
    seqs = set()
    for m in sub.on(f"roomagent/{node}/telemetry/"):
        seq, when = _ts(m.payload)
        if t0 <= when < t1:
            seqs.add(seq)
    return len(seqs)


def run_one(params: Params, workdir: Path, profile: Path, mode: str) -> dict[str, Any]:
    """Both designs, side by side, for one profile and one broker mode."""
    broker = start_broker("mosquitto", workdir / "broker")
    sub = Subscriber(broker.port, "roomagent/+/telemetry/#", client_id="bench-central",
                     persistent=True)  # fmt: skip
    env = python_env()
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        procs: dict[str, subprocess.Popen[bytes]] = {}
        devices: dict[str, str] = {}
        for design, durability in DESIGNS.items():
            mount = workdir / f"{design}-disk"
            devices[design] = stack.enter_context(
                loop_ext4(workdir / f"{design}.img", mount, params["disk_mib"], params["mount"])
            )
            node = f"bench-w-{design}"
            cfg = node_config(profile, node_id=node, port=broker.port, protocol="5",
                              state_dir=mount / "state")  # fmt: skip
            cfg["buffer"] = {**cfg["buffer"], "durability": durability}
            # Back within 2 s of the broker, so the window's backlog is delivered and counted
            # in drain_s (the default backoff reaches 60 s in a long outage).
            cfg["broker"] = {**cfg["broker"], "reconnect_max": 2}
            path = workdir / f"{design}.toml"
            path.write_text(dump_toml(cfg))
            procs[design] = subprocess.Popen(
                [PYTHON, "-m", "agent", "run", str(path), "--simulate", "--log-level", "WARNING"],
                env=env, cwd=REPO,
            )  # fmt: skip
        try:
            time.sleep(params["warmup_s"])
            if mode == "down":
                broker.stop()
            before = {d: block_stat(devices[d]) for d in DESIGNS}
            straces = {d: SyscallCount(procs[d].pid, workdir / f"{d}.strace") for d in DESIGNS}
            t0 = time.time()
            m0 = time.monotonic()
            while time.monotonic() - m0 < params["seconds"]:
                if mode == "flapping":
                    broker.stop()
                    time.sleep(5)
                    broker.start()
                    time.sleep(10)
                else:
                    time.sleep(1)
            t1 = time.time()
            elapsed = time.monotonic() - m0
            after = {d: block_stat(devices[d]) for d in DESIGNS}
            fsyncs = {d: straces[d].stop() for d in DESIGNS}
            if mode != "up":
                with contextlib.suppress(Exception):
                    broker.start()
            # Everything of the window delivered: no reading of it is still buffered.
            time.sleep(params["drain_s"])
            for design in DESIGNS:
                if procs[design].poll() is not None:
                    raise RuntimeError(f"the {design} agent exited with {procs[design].returncode}")
                written = after[design][0] - before[design][0]
                flushes = after[design][1] - before[design][1]
                readings = counted(sub, f"bench-w-{design}", t0, t1)
                out[design] = {
                    "seconds": round(elapsed, 1),
                    "readings": readings,
                    "block_bytes": written,
                    "device_flushes": flushes,
                    "fsync_calls": fsyncs[design][0],
                    "fsyncs_by_file": fsyncs[design][1],
                    "bytes_per_reading": round(written / readings) if readings else None,
                    "mb_per_day": round(written / elapsed * 86400 / 1e6, 1),
                    "fsyncs_per_min": round(fsyncs[design][0] * 60 / elapsed, 1),
                    "flushes_per_min": round(flushes * 60 / elapsed, 1),
                    "readings_per_s": round(readings / elapsed, 2),
                }
        finally:
            stop_processes(procs.values())
            sub.close()
            broker.stop()
    return out


def run(params: Params, workdir: Path) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict[str, Any]] = {}
    for name in params["profiles"]:
        profile = REPO / "firmware_configs" / f"{name}.toml"
        for mode in params["modes"] if name == params["profiles"][0] else ["up"]:
            runs[f"{name}, broker {mode}"] = run_one(params, workdir / f"{name}-{mode}", profile,
                                                     mode)  # fmt: skip
    figures = []
    for label, r in runs.items():
        b, s = r["baseline"], r["staged"]
        figures.append(figure(
            f"{label}: block bytes/reading, MB/day, fsyncs/min (device flushes/min)",
            f"{s['bytes_per_reading']} B, {s['mb_per_day']} MB/day, {s['fsyncs_per_min']} "
            f"({s['flushes_per_min']})",
            f"durability full: {b['bytes_per_reading']} B, {b['mb_per_day']} MB/day, "
            f"{b['fsyncs_per_min']} ({b['flushes_per_min']})",
        ))  # fmt: skip
    first = params["profiles"][0]
    up, down = runs.get(f"{first}, broker up"), runs.get(f"{first}, broker down")
    targets = []
    if up:
        s = up["staged"]
        targets.append(target(f"{first}, broker up: <= {TARGET_UP_BYTES} block bytes/reading",
                              (s["bytes_per_reading"] or 0) <= TARGET_UP_BYTES,
                              f"{s['bytes_per_reading']} B"))  # fmt: skip
        targets.append(
            target(
                f"{first}, broker up: <= {TARGET_UP_MB_DAY} MB/day",
                s["mb_per_day"] <= TARGET_UP_MB_DAY,
                f"{s['mb_per_day']} MB/day",
            )
        )
    if down:
        s = down["staged"]
        targets.append(target(f"{first}, broker down: <= {TARGET_DOWN_BYTES} B/buffered reading",
                              (s["bytes_per_reading"] or 0) <= TARGET_DOWN_BYTES,
                              f"{s['bytes_per_reading']} B"))  # fmt: skip
    worst = max((r["staged"]["fsyncs_per_min"] for r in runs.values()), default=0)
    targets.append(target(f"<= {TARGET_FSYNC_MIN} fsyncs/min, default settings, every mode",
                          worst <= TARGET_FSYNC_MIN, f"worst {worst}/min"))  # fmt: skip
    return {"runs": runs, "figures": figures, "targets": targets}


BENCHMARK = Benchmark(
    name="writes",
    summary="block-device bytes and fsyncs per reading, MB/day: staged buffer vs fsync-all",
    sizes={
        "full": {
            "profiles": ["council-chamber", "meeting-room", "office", "multimedia-space", "demo"],
            "modes": ["up", "down", "flapping"],
            "warmup_s": 40,
            "seconds": 120,
            "drain_s": 15,
            "disk_mib": 256,
            # as Raspberry Pi OS mounts its root; "noatime,lazytime" keeps mtime updates in
            # memory, sparing a journal commit per write (docs/buffer.md)
            "mount": "noatime",
        },
        "smoke": {
            "profiles": ["council-chamber"],
            "modes": ["up"],
            "warmup_s": 3,
            "seconds": 5,
            "drain_s": 3,
            "disk_mib": 64,
            "mount": "noatime",
        },
    },
    run=run,
)

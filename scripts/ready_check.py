"""Starts a command the way systemd starts a Type=notify service and waits for READY=1.

    python3 ready_check.py [--timeout S] -- COMMAND...

COMMAND gets NOTIFY_SOCKET, a unix datagram socket this script listens on (sd_notify(3)).
Exit 0 when COMMAND says READY=1 within S seconds and then stops cleanly (status 0) on SIGTERM,
as `systemctl stop` would ask it; exit 1 otherwise, with the reason and COMMAND's last lines.
install.sh uses it under --root, where there is no systemd to start the agent. Standard
library only: it runs with the Python of the release being checked.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for READY=1")
    p.add_argument("command", nargs="+")
    args = p.parse_args(argv)
    # sun_path holds at most 107 bytes: a short directory, not the caller's TMPDIR.
    directory = tempfile.mkdtemp(prefix="ready-", dir="/tmp")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        sock.settimeout(0.2)
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(args.command, env=dict(os.environ, NOTIFY_SOCKET=path),
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            started = time.monotonic()
            ready = wait_ready(proc, sock, args.timeout)
            stop(proc)
            waited = time.monotonic() - started
            log.seek(0)
            tail = log.read().decode(errors="replace").splitlines()[-20:]
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)
    if ready and proc.returncode == 0:
        print(f"ready after {waited:.1f} s, stopped cleanly")
        return 0
    why = (
        f"stopped with status {proc.returncode} after READY=1"
        if ready
        else f"no READY=1 within {args.timeout:g} s (exit status {proc.returncode})"
    )
    print(f"not ready: {why}; its last lines:", file=sys.stderr)
    for line in tail:
        print(f"    {line}", file=sys.stderr)
    return 1


def wait_ready(proc: subprocess.Popen[bytes], sock: socket.socket, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            message = sock.recv(4096).decode(errors="replace")
        except socket.timeout:
            continue
        if "READY=1" in message.splitlines():
            return True
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as systemctl stop sends; the agent commits, says offline and exits 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

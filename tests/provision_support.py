"""Helpers of the provisioning and install tests (their fixtures are in provision_fixtures.py):
simulated boot partitions, tree hashes, the real validators the generated files are checked with
(cloud-init's own schema and network-config parser, netplan's generator, systemd-analyze,
bash -n, shellcheck), and what an installed root must look like.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from agent.config import schema as config_mod

REPO = Path(__file__).resolve().parent.parent
BOOT_DATA = REPO / "tests" / "data" / "boot"
HOST_PYTHON = "{}.{}.{}".format(*sys.version_info[:3])
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which the apt-installed libraries belong to


@dataclass
class Inventory:
    """The central inventory: answers POSTs from a script of (status, body) replies."""

    port: int
    replies: list[tuple[int, bytes]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    server: Optional[http.server.ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/api/nodes"

    def start(self, certs: dict[str, Path]) -> None:
        inventory = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                inventory.requests.append((self.path, dict(self.headers), body))
                status, reply = inventory.replies.pop(0) if inventory.replies else (204, b"")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs["server.crt"], certs["server.key"])
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def agent_wheel(wheelhouse: Path) -> Path:
    (wheel,) = wheelhouse.glob("roomagent-*.whl")
    return wheel


def card(tmp_path: Path, generation: str) -> Path:
    """A fresh copy of a simulated boot partition (tests/data/boot/README.md)."""
    boot = tmp_path / f"{generation}-bootfs"
    shutil.copytree(BOOT_DATA / generation, boot)
    return boot


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and link below root: content hash (or link target) and mode."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                state[rel] = ("-> " + os.readlink(p), 0)
            else:
                state[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode & 0o7777)
    return state


@dataclass(frozen=True)
class DebianTools:
    root: Path  # the unpacked packages

    def cloud_init(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(self.root / "usr/lib/python3/dist-packages"))
        return subprocess.run(
            [SYSTEM_PYTHON, "-c", "import sys; from cloudinit.cmd.main import main; "
             "sys.exit(main())", *args],
            capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
        )  # fmt: skip

    def netplan_generate(self, root_dir: Path) -> subprocess.CompletedProcess[str]:
        (lib,) = self.root.glob("usr/lib/*/libnetplan.so.0.*")
        link = lib.parent / "libnetplan.so.0"
        if not link.exists():
            link.symlink_to(lib.name)
        return subprocess.run(
            [str(self.root / "usr/libexec/netplan/generate"), "--root-dir", str(root_dir)],
            capture_output=True, text=True, timeout=60,
            env=dict(os.environ, LD_LIBRARY_PATH=str(lib.parent)),
        )  # fmt: skip


def run_ok(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


def unit_verifies(unit: Path) -> None:
    """systemd-analyze verify with nothing printed at all, as tests/test_unit.py requires."""
    result = subprocess.run([shutil.which("systemd-analyze") or "systemd-analyze", "verify",
                             str(unit)], capture_output=True, text=True, timeout=60,
                            cwd=unit.parent)  # fmt: skip
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result


def shell_ok(script: Path) -> None:
    run_ok(["bash", "-n", str(script)])
    run_ok(["shellcheck", "-x", str(script)], cwd=REPO)  # source= paths are from the top


def wants(root: Path) -> Path:
    return root / "etc/systemd/system/multi-user.target.wants"


def check_installed(root: Path, inputs: Optional[dict[str, Path]] = None) -> str:
    """/opt, /etc, /var/lib and the unit as install.sh leaves them; returns the release."""
    current = root / "opt/roomagent/current"
    assert current.is_symlink() and os.readlink(current).startswith("releases/0.1.0-")
    version = run_ok([str(current / "bin/roomagent"), "--version"]).stdout
    assert version.strip() == "roomagent 0.1.0"
    etc = root / "etc/roomagent"
    assert etc.stat().st_mode & 0o777 == 0o750
    for f in etc.iterdir():
        if f.is_file():
            assert f.stat().st_mode & 0o777 == 0o640, f
    if inputs is not None:
        assert (etc / "mqtt-password").read_bytes() == inputs["password"].read_bytes()
        assert config_mod.load(etc / "roomagent.toml").node.id == "room-2-14"
    assert (root / "var/lib/roomagent").stat().st_mode & 0o777 == 0o700
    unit = root / "etc/systemd/system/roomagent.service"
    text = unit.read_text()
    exec_start = "ExecStart=/opt/roomagent/current/bin/roomagent run /etc/roomagent/roomagent.toml"
    assert exec_start in text
    assert "Documentation=file:/opt/roomagent/current/docs/installing.md" in text
    assert os.readlink(wants(root) / "roomagent.service") == (
        "/etc/systemd/system/roomagent.service"
    )
    # The unit verifies as the Pi will run it: here its programs are under the root.
    mapped = root.parent / "verify" / "roomagent.service"
    mapped.parent.mkdir(exist_ok=True)
    mapped.write_text(text.replace("=/opt/", f"={root}/opt/"))
    unit_verifies(mapped)
    assert (current / "docs/installing.md").is_file()
    return os.readlink(current)

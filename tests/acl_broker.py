"""docs/security.md's broker setup for tests: its ACL and mosquitto.conf read from the doc
between its markers, the users' password file, and mosquitto started with both."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO
from tests.mqtt_fixtures import Broker

DOC = REPO / "docs" / "security.md"
USERS = ("room-a", "room-b", "central", "installer")
# Proven by test_end_to_end (TLS, client certificates, identity as user name), not here.
TLS_KEYS = {"listener", "cafile", "certfile", "keyfile", "require_certificate",
            "use_identity_as_username", "tls_version"}  # fmt: skip


def doc_block(name: str) -> str:
    """The fenced block between `<!-- begin NAME -->` and `<!-- end NAME -->` in the doc."""
    marked = re.search(
        rf"<!-- begin {re.escape(name)} -->\s*```[^\n]*\n(.*?)```\s*<!-- end {re.escape(name)} -->",
        DOC.read_text(encoding="utf-8"),
        re.S,
    )
    assert marked, f"{DOC} has no fenced block marked {name}"
    return marked.group(1)


def broker_conf(passwd: Path, acl: Path) -> str:
    """The doc's mosquitto.conf with this test's paths; TLS lines left to test_end_to_end."""
    settings = [line.split(None, 1) for line in doc_block("mosquitto.conf").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
    keys = [key for key, *_ in settings]
    assert {"password_file", "acl_file"} <= set(keys), keys
    assert ["allow_anonymous", "false"] in settings  # Broker(allow_anonymous=False) writes it
    files = {"password_file": passwd, "acl_file": acl}
    lines = [
        f"{key} {files[key]}" if key in files else f"{key} {rest[0]}"
        for key, *rest in settings
        if key not in TLS_KEYS and key != "allow_anonymous"
    ]
    # mosquitto 2.0.11 drops a client after any refused publish when max_queued_messages is 0,
    # which the Broker fixture sets (no limit) for its outage tests; 1000 is mosquitto's default.
    return "\n".join([*lines, "max_queued_messages 1000"]) + "\n"


def password(user: str) -> str:
    return f"pw-{user}"


@contextlib.contextmanager
def secured_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto with docs/security.md's password file (every user in USERS) and ACL."""
    passwd = tmp_path / "roomagent.passwd"
    for i, user in enumerate(USERS):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password(user)],
                       check=True, capture_output=True)  # fmt: skip
    passwd.chmod(0o600)
    acl = tmp_path / "roomagent.acl"
    acl.write_text(doc_block("roomagent.acl"))
    broker = Broker(tmp_path / "broker", extra_conf=broker_conf(passwd, acl),
                    allow_anonymous=False)  # fmt: skip
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()

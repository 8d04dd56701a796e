"""The whole path against a real broker, with the agent as a real subprocess.

The first tests run twice: against mosquitto (MQTT 5), and against a three-server NATS cluster
(MQTT 3.1.1), with the agent on one server and the central subscriber on another, so nothing
relies on mosquitto's particulars or on MQTT 5 (docs/scaling.md)."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Union

import pytest

from tests.conftest import BROKER_KINDS, REPO, AgentProcess, node_config
from tests.mqtt_fixtures import Broker, NatsCluster, Subscriber, make_broker, make_certificates
from tests.waiting import taken_after, wait_until

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BASE = "roomagent/test-node"


def telemetry_seqs(sub: Subscriber) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in sub.on(f"{BASE}/telemetry/")]


AnyBroker = Union[Broker, NatsCluster]


def test_readings_arrive_with_the_documented_payload(
    any_broker: AnyBroker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    broker = any_broker
    sub = Subscriber(broker.ports[-1], f"{BASE}/#")
    agent = agent_process(node_config(broker.port, tmp_path / "state", protocol=broker.protocol))
    agent.start()
    assert sub.wait_for(lambda ms: sum("/telemetry/" in m.topic for m in ms) >= 2), agent.output()

    assert sub.on(f"{BASE}/status")[0].payload == b"online"
    late = Subscriber(broker.ports[-1], f"{BASE}/status")  # a late joiner sees the retained birth
    assert late.wait_for(lambda ms: len(ms) >= 1)
    assert late.messages[0].payload == b"online" and late.messages[0].retain
    late.close()

    msg = sub.on(f"{BASE}/telemetry/climate")[0]
    body = json.loads(msg.payload)
    assert set(body) == {"ts", "seq", "clock_synced", "values"}
    assert TS_RE.match(body["ts"]) and isinstance(body["seq"], int)
    assert body["clock_synced"] is True  # the config forces clock = "synced"
    assert set(body["values"]) == {"temperature", "humidity", "pressure"}
    assert 15 < body["values"]["temperature"] < 30 and 900 < body["values"]["pressure"] < 1100

    state = json.loads(sub.on(f"{BASE}/state/climate")[0].payload)
    assert state["available"] is True and set(state["values"]) == set(body["values"])
    info = json.loads(sub.on(f"{BASE}/info")[0].payload)
    assert info["contract"] == 2 and info["devices"][0]["units"]["pressure"] == "hPa"

    assert agent.terminate() == 0
    assert sub.wait_for(
        lambda ms: ms[-1].topic == f"{BASE}/status" and ms[-1].payload == b"offline"
    )
    sub.close()


@pytest.mark.parametrize("kind", BROKER_KINDS)
@pytest.mark.long
def test_broker_outage_loses_nothing_and_keeps_order(
    kind: str, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    """Stops the agent's broker for 6 s while the agent samples every second; all readings
    arrive."""
    broker = make_broker(kind, tmp_path / "broker")
    broker.start()
    sub = Subscriber(broker.ports[-1], f"{BASE}/telemetry/#", client_id="central",
                     persistent=True)  # fmt: skip
    agent = agent_process(node_config(broker.port, tmp_path / "state", protocol=broker.protocol))
    agent.start()
    try:
        assert sub.wait_for(lambda ms: len(ms) >= 2), agent.output()
        if isinstance(broker, NatsCluster):
            # A cluster is restarted one server at a time: the agent's server goes away while
            # the subscriber's stays. (The fleet benchmark restarts a whole cluster.)
            broker.stop(0)
            time.sleep(6)  # the scenario: an outage of 6 s
            broker.start(0)
        else:
            broker.stop()
            time.sleep(6)  # the scenario: an outage of 6 s
            broker.start()
        back = time.time()
        # Everything held back during the outage is in once a reading taken after it is.
        assert sub.wait_for(lambda ms: taken_after((m.payload for m in ms), back + 1), 30)
        assert agent.terminate() == 0
        with sqlite3.connect(tmp_path / "state" / "buffer.sqlite") as db:
            final = db.execute("SELECT value FROM meta WHERE key = 'seq_next'").fetchone()[0] - 1
            left = [r[0] for r in db.execute("SELECT seq FROM outbox ORDER BY seq")]
        # A reading committed as the agent stopped waits in the buffer for the next start.
        assert left == list(range(final - len(left) + 1, final + 1)) and len(left) <= 2
        final -= len(left)
        assert sub.wait_for(lambda ms: final in telemetry_seqs(sub), 15), agent.output()
        seqs = telemetry_seqs(sub)
        unique = list(dict.fromkeys(seqs))
        assert unique == sorted(unique), "out of order"
        assert unique == list(range(unique[0], final + 1)), "a reading is missing"
        assert final - unique[0] >= 8  # the outage really held back readings
    finally:
        sub.close()
        broker.stop()


@pytest.mark.long
def test_sigkill_loses_nothing_committed(
    any_broker: AnyBroker, tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    broker = any_broker
    state = tmp_path / "state"
    # First run against a port where nothing listens: every reading stays in the buffer.
    offline = agent_process(node_config(1, state, protocol=broker.protocol))
    offline.start()
    db_path = state / "buffer.sqlite"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if db_path.exists():
            # The agent may not have created the table yet ("no such table"), or be writing.
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(db_path) as db:
                if db.execute("SELECT count(*) FROM outbox").fetchone()[0] >= 4:
                    break
        time.sleep(0.2)
    offline.kill()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        committed = [r[0] for r in db.execute("SELECT seq FROM outbox ORDER BY seq")]
    assert len(committed) >= 4

    sub = Subscriber(broker.ports[-1], f"{BASE}/telemetry/#")
    online = agent_process(node_config(broker.port, state, protocol=broker.protocol))
    online.start()
    assert sub.wait_for(lambda ms: set(committed) <= set(telemetry_seqs(sub))), online.output()
    assert sub.wait_for(lambda ms: max(telemetry_seqs(sub)) > max(committed))
    fresh = [s for s in telemetry_seqs(sub) if s not in committed]
    assert min(fresh) > max(committed)  # sequence numbers never repeat across the kill
    online.terminate()
    sub.close()


def test_tls_with_client_certificate(
    tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    certs = make_certificates(tmp_path / "certs")
    broker = Broker(
        tmp_path / "broker",
        extra_conf=(
            f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\n"
            f"keyfile {certs['server.key']}\nrequire_certificate true\n"
            "use_identity_as_username true\ntls_version tlsv1.2\n"
        ),
    )
    broker.start()
    try:
        sub = Subscriber(broker.port, f"{BASE}/#", tls={
            "ca_certs": str(certs["ca.crt"]), "certfile": str(certs["client.crt"]),
            "keyfile": str(certs["client.key"]),
        })  # fmt: skip
        tls = (f'[broker.tls]\nca = "{certs["ca.crt"]}"\ncert = "{certs["client.crt"]}"\n'
               f'key = "{certs["client.key"]}"\n')  # fmt: skip
        agent = agent_process(node_config(broker.port, tmp_path / "state", host="localhost",
                                          broker_extra=tls))  # fmt: skip
        agent.start()
        assert sub.wait_for(lambda ms: any("/telemetry/" in m.topic for m in ms)), agent.output()
        # `roomagent watch --config` logs in as the node does: TLS, CA, client certificate.
        watch = [sys.executable, "-m", "agent", "watch", "--count", "1", "--seconds", "10"]
        seen = subprocess.run([*watch, "--config", str(agent.config)], capture_output=True,
                              text=True, timeout=30, cwd=REPO)  # fmt: skip
        assert seen.returncode == 0 and f"{BASE}/" in seen.stdout, seen.stderr
        plain = [*watch[:-1], "2", "--port", str(broker.port)]  # no TLS: the broker hangs up
        anonymous = subprocess.run(plain, capture_output=True, text=True, timeout=30, cwd=REPO)
        assert anonymous.returncode == 1 and BASE not in anonymous.stdout
        agent.terminate()

        # Without a client certificate the broker refuses the handshake: nothing gets through.
        no_cert = agent_process(
            node_config(
                broker.port,
                tmp_path / "state2",
                host="localhost",
                broker_extra=f'[broker.tls]\nca = "{certs["ca.crt"]}"\n',
            )
        )
        before = len(sub.messages)
        no_cert.start()
        refused = "closed the connection before accepting it"
        assert wait_until(lambda: refused in no_cert.output()), no_cert.output()
        assert not any("/telemetry/" in m.topic for m in sub.messages[before:])
        no_cert.terminate()
        sub.close()
    finally:
        broker.stop()


def test_username_and_password_file(
    tmp_path: Path, agent_process: Callable[[str], AgentProcess]
) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "room", "s3cret"], check=True)
    passwords.chmod(0o644)  # mosquitto (running as root here) reads it; the agent's copy is 0600
    broker = Broker(tmp_path / "broker", extra_conf=f"password_file {passwords}\n",
                    allow_anonymous=False)  # fmt: skip
    broker.start()
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    try:
        sub = Subscriber(broker.port, f"{BASE}/#", auth=("room", "s3cret"))
        good = f'username = "room"\npassword_file = "{secret}"\n'
        agent = agent_process(node_config(broker.port, tmp_path / "state", broker_extra=good))
        agent.start()
        assert sub.wait_for(lambda ms: any("/telemetry/" in m.topic for m in ms)), agent.output()
        agent.terminate()

        wrong = tmp_path / "wrong-password"
        wrong.write_text("guess\n")
        wrong.chmod(0o600)
        bad = f'username = "room"\npassword_file = "{wrong}"\n'
        refused = agent_process(node_config(broker.port, tmp_path / "state2", broker_extra=bad))
        refused.start()
        assert wait_until(lambda: "refused the connection" in refused.output()), refused.output()
        assert refused.proc is not None and refused.proc.poll() is None  # still running, retrying
        refused.terminate()
        sub.close()
    finally:
        broker.stop()

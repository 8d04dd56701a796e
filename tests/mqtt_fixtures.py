"""Real brokers on free loopback ports (mosquitto, or a NATS cluster speaking MQTT 3.1.1), and a
subscriber that records what it receives."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

# Ports handed out in this test session, one empty file each (set by tests/conftest.py to a
# directory all pytest-xdist workers of the session share). The kernel may hand a port one test
# freed to another worker's broker while the first test's agent still reconnects to it (an
# outage test, or an agent pointed where nothing listens): that agent, node id test-node as
# well, then answers the other test's commands ("no lights 'hall'"). So no port is handed out
# twice in a session.
PORT_CLAIMS: Optional[Path] = None
_claimed: set[int] = set()


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port in _claimed:
            continue
        _claimed.add(port)
        if PORT_CLAIMS is None:
            return port
        try:
            (PORT_CLAIMS / str(port)).touch(exist_ok=False)
            return port
        except FileExistsError:
            continue  # another worker of this session had it


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("mosquitto is not installed: run scripts/test.sh, which installs it")
    return found


class Broker:
    """One mosquitto process; stop() and start() keep its port and persistence file."""

    kind = "mosquitto"
    protocol = "5"  # what the agent speaks to it

    def __init__(
        self,
        workdir: Path,
        extra_conf: str = "",
        port: Optional[int] = None,
        allow_anonymous: bool = True,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if allow_anonymous else 'false'}\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_inflight_messages 0\n"
            "max_queued_messages 0\n" + ("user root\n" if os.geteuid() == 0 else "") + extra_conf
            # Started as root, mosquitto would drop to its own user and fail to save its state.
        )
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log = workdir / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @property
    def ports(self) -> list[int]:
        return [self.port]


def nats_binary() -> str:
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError("nats-server is not installed: run scripts/test.sh, which installs it")
    return found


def mqtt_round_trip(port: int, timeout: float) -> bool:
    """Whether a broker on this port does what the tests need within timeout: accepts an MQTT
    3.1.1 session that is kept (clean_session false), and passes a QoS 1 message back to it.
    A NATS server accepts TCP, and even some CONNECTs, before its JetStream streams have
    leaders again after a restart; this waits for the streams too."""
    client_id = f"probe-{port}-{time.monotonic_ns()}"
    done = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=False)  # fmt: skip
    topic = f"probe/{client_id}"

    def on_connect(c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        if not reason.is_failure:
            c.subscribe(topic, qos=1)

    client.on_connect = on_connect
    client.on_subscribe = lambda c, *_: c.publish(topic, b"probe", qos=1)
    client.on_message = lambda *_: done.set()
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not done.is_set() and time.monotonic() < deadline:
            client.loop(0.05)
    except OSError:
        return False
    finally:
        client.disconnect()
    if done.is_set():  # the probe's session is not left behind on the broker
        forget = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=client_id, clean_session=True)  # fmt: skip
        with contextlib.suppress(OSError):
            forget.connect("127.0.0.1", port, keepalive=10)
            forget.loop(0.5)
            forget.disconnect()
    return done.is_set()


class NatsCluster:
    """A cluster of nats-server processes (three by default), each with an MQTT listener.

    NATS speaks MQTT 3.1.1 only, and keeps MQTT sessions, QoS 1 messages and retained messages
    in JetStream, which in turn needs a server_name per server and a store directory. The
    stores are kept across stop() and start(), as a real cluster keeps them across a restart, so
    persistent sessions and retained messages survive it. `port` is the first server's MQTT
    port; `ports` has every server's, so a test can connect its clients to different servers.
    """

    kind = "nats"
    protocol = "3.1.1"

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port() for _ in range(size)]
        self.client_ports = [free_port() for _ in range(size)]
        route_ports = [free_port() for _ in range(size)]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        self.confs: list[Path] = []
        for i in range(size):
            conf = workdir / f"nats-{i}.conf"
            conf.write_text(
                f"server_name: node{i}\n"
                f"listen: 127.0.0.1:{self.client_ports[i]}\n"
                f'jetstream {{ store_dir: "{workdir}/store-{i}", max_memory_store: 64MB, '
                "max_file_store: 2GB }\n"
                f"cluster {{ name: roomagent-test, listen: 127.0.0.1:{route_ports[i]}, "
                f"routes: [{routes}] }}\n"
                f"mqtt {{ listen: 127.0.0.1:{self.ports[i]} }}\n"
            )
            self.confs.append(conf)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.log = workdir / "nats.log"

    @property
    def port(self) -> int:
        return self.ports[0]

    def start(self, *servers: int, timeout: float = 30.0) -> None:
        """Starts the given servers (by index; all when none are given) and waits until each
        of them serves MQTT."""
        chosen = servers or tuple(range(len(self.confs)))
        with open(self.log, "ab") as out:
            for i in chosen:
                self.procs[i] = subprocess.Popen([nats_binary(), "-c", str(self.confs[i])],
                                                 stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        # A server serves MQTT only once JetStream has a meta leader and its MQTT streams have
        # leaders, which needs a majority of the cluster: seconds after a full restart. The
        # servers are probed in parallel, since each probe may wait for stream leaders.
        ready = {i: False for i in chosen}

        def probe(i: int) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.procs[i].poll() is None:
                if mqtt_round_trip(self.ports[i], timeout=2.0):
                    ready[i] = True
                    return
                time.sleep(0.2)

        probes = [threading.Thread(target=probe, args=(i,)) for i in chosen]
        for t in probes:
            t.start()
        for t in probes:
            t.join()
        if not all(ready.values()):
            self.stop()
            raise RuntimeError(f"NATS cluster not ready: {self.log.read_text()[-3000:]}")

    def stop(self, *servers: int) -> None:
        """Stops the given servers (all when none are given); their stores are kept."""
        chosen = [self.procs.pop(i) for i in (servers or list(self.procs)) if i in self.procs]
        for proc in chosen:
            if proc.poll() is None:
                proc.terminate()
        for proc in chosen:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def make_broker(kind: str, workdir: Path) -> Broker | NatsCluster:
    """A broker of either kind, not yet started."""
    if kind == "mosquitto":
        return Broker(workdir)
    if kind == "nats":
        return NatsCluster(workdir)
    raise ValueError(f"unknown broker kind {kind!r}: mosquitto or nats")


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A central-side client. persistent=True keeps its session across broker restarts."""

    def __init__(self, port: int, topic: str, *, client_id: str = "", persistent: bool = False,
                 tls: Optional[dict[str, Any]] = None,
                 auth: Optional[tuple[str, str]] = None) -> None:  # fmt: skip
        self.messages: list[Received] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{free_port()}",
            clean_session=not persistent,
        )
        self.topic = topic
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.closing = False
        self.drops = 0  # connections lost before close(): a clean session loses what came meanwhile
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        if tls:
            self.client.tls_set(**tls)
        if auth:
            self.client.username_pw_set(*auth)
        self.client.connect_async("127.0.0.1" if not tls else "localhost", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain)))
            self.cond.notify_all()

    def _on_disconnect(self, client: Any, userdata: Any, *_: Any) -> None:
        if not self.closing:
            self.drops += 1

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.messages), timeout)

    def on(self, topic_part: str) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if topic_part in m.topic]

    def close(self) -> None:
        self.closing = True
        self.client.loop_stop()
        self.client.disconnect()


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, via openssl.

    Well-formed as Python 3.13's strict X.509 checking requires: a critical CA constraint and key
    usage on the CA, an authority key identifier on the certificates it issues.
    """
    directory.mkdir(parents=True, exist_ok=True)
    d = directory

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", "ca.key", "-out", "ca.crt",
    )  # fmt: skip
    leaf = "basicConstraints=CA:FALSE\nauthorityKeyIdentifier=keyid,issuer\n"
    extensions = {
        "server": leaf + "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        "client": leaf + "extendedKeyUsage=clientAuth\n",
    }
    for name, cn in (("server", "localhost"), ("client", "roomagent-test-node")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
        (d / f"{name}.ext").write_text(extensions[name])
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
            "-out", f"{name}.crt")  # fmt: skip
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return {n: d / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}

"""A real mosquitto on a free loopback port, and a subscriber that records what it receives."""

from __future__ import annotations

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("mosquitto is not installed: run scripts/test.sh, which installs it")
    return found


class Broker:
    """One mosquitto process; stop() and start() keep its port and persistence file."""

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

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.messages), timeout)

    def on(self, topic_part: str) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if topic_part in m.topic]

    def close(self) -> None:
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

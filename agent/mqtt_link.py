"""A thin adapter around paho-mqtt: one connection, our reconnect policy, acks back by message id.

paho's network loop runs in a thread of ours so that reconnection follows capped exponential
backoff with jitter (paho's own loop has no jitter, and a building full of nodes reconnecting in
lock-step after a broker restart is a thundering herd). Callbacks run on that thread; the
runtime hands them over to its event loop.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import BrokerConfig

log = logging.getLogger("roomagent.mqtt")


class Backoff:
    """Capped exponential backoff with full jitter: a delay drawn from [min, current cap]."""

    def __init__(self, minimum: float, maximum: float, rng: Optional[random.Random] = None) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        cap = min(self.maximum, self.minimum * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return self.rng.uniform(self.minimum, cap)

    def reset(self) -> None:
        self.attempt = 0


def tls_context(ca: Optional[str], cert: Optional[str], key: Optional[str]) -> ssl.SSLContext:
    """TLS 1.2 or newer, server certificate and host name always verified."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


class MqttLink:
    def __init__(
        self,
        broker: BrokerConfig,
        *,
        status_topic: str,
        on_connect: Callable[[], None] = lambda: None,
        on_disconnect: Callable[[], None] = lambda: None,
        on_ack: Callable[[int, bool], None] = lambda mid, ok: None,
        max_inflight: int = 64,
    ) -> None:
        self.broker = broker
        self.status_topic = status_topic
        self._on_connect, self._on_disconnect, self._on_ack = on_connect, on_disconnect, on_ack
        protocol = mqtt.MQTTv5 if broker.protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=broker.client_id,
            protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else True,
        )
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.client.will_set(status_topic, "offline", qos=1, retain=True)
        if broker.username is not None:
            password = None
            if broker.password_file is not None:
                password = broker.password_file.read_text().rstrip("\r\n")
            self.client.username_pw_set(broker.username, password)
        if broker.tls is not None:
            t = broker.tls
            self.client.tls_set_context(
                tls_context(
                    str(t.ca) if t.ca else None,
                    str(t.cert) if t.cert else None,
                    str(t.key) if t.key else None,
                )
            )
        self.client.on_connect = self._handle_connect
        self.client.on_disconnect = self._handle_disconnect
        self.client.on_publish = self._handle_publish
        self.backoff = Backoff(broker.reconnect_min, broker.reconnect_max)
        self.connected = False
        self.connects = 0
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._ever_connected = False

    # paho callbacks (network thread) ----------------------------------------------------------
    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused the connection: %s",
                      self.broker.host, self.broker.port, reason)
            return
        self.connected = True
        self.connects += 1
        self.backoff.reset()
        log.info("connected to %s:%d", self.broker.host, self.broker.port)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        self._on_connect()

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        was = self.connected
        self.connected = False
        if was:
            log.warning("disconnected from broker: %s", reason)
            self._on_disconnect()

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        self._on_ack(mid, not reason.is_failure)

    # our network thread -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        socket_open = False
        while not self._stopping.is_set():
            if not socket_open:
                try:
                    if self._ever_connected:
                        self.client.reconnect()
                    else:
                        self.client.connect(
                            self.broker.host, self.broker.port, self.broker.keepalive,
                            clean_start=True if self.broker.protocol == "5" else
                            mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                        )  # fmt: skip
                        self._ever_connected = True
                    socket_open = True
                except (OSError, ssl.SSLError) as e:
                    delay = self.backoff.next_delay()
                    log.warning("cannot reach broker %s:%d (%s); retrying in %.1f s",
                                self.broker.host, self.broker.port, e, delay)
                    self._stopping.wait(delay)
                    continue
            rc = self.client.loop(timeout=0.5)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                socket_open = False
                if self.connected:  # paho did not call on_disconnect (e.g. a socket error)
                    self._handle_disconnect(self.client, None, None, ReasonCode(2, identifier=0), None)
                if not self._stopping.is_set():
                    self._stopping.wait(self.backoff.next_delay())
        if socket_open:
            self.client.disconnect()
            self.client.loop(timeout=0.2)  # writes the DISCONNECT so the will is not sent

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        """Queues a message with paho; returns its message id (acks arrive through on_ack)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return int(info.mid)

    def stop(self, timeout: float = 5.0) -> None:
        """Publishes `offline` (retained) while still connected, then disconnects cleanly."""
        if self.connected:
            info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(timeout, 3.0))
            except (RuntimeError, ValueError):
                pass
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.connected = False

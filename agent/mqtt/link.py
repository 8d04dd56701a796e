"""A thin adapter around paho-mqtt: one connection, our reconnect policy, acks back by message id.

paho's own network thread (loop_start) is used, because only then is publish() safe to call from
another thread: without it paho writes to the socket from the caller's thread. paho reconnects
with capped exponential backoff but no jitter, and a building full of nodes reconnecting in
lock-step after a broker restart is a thundering herd, so each failed attempt adds a random
wait of up to half the current delay. Callbacks run on paho's thread; the runtime hands them
over to its event loop.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.config.schema import BrokerConfig

log = logging.getLogger("roomagent.mqtt")
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another client connected with our id
# Mosquitto closes the older connection without saying why; a connection that the broker keeps
# dropping soon after accepting it, this often in a row, is then most likely the same thing.
TAKEOVER_DROPS, TAKEOVER_WINDOW = 3, 60.0


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
        on_ack: Callable[[int, bool], None] = lambda mid, ok: None,
        max_inflight: int = 64,
        subscriptions: tuple[str, ...] = (),
        on_message: Callable[[mqtt.MQTTMessage], None] = lambda message: None,
    ) -> None:
        self.broker = broker
        self.status_topic = status_topic
        self._on_connect, self._on_ack = on_connect, on_ack
        self.subscriptions, self._on_message = subscriptions, on_message
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
        self.client.on_connect_fail = self._handle_connect_fail
        self.client.on_message = lambda client, userdata, message: self._on_message(message)
        self.protocol = protocol
        # paho doubles the delay from min to max between attempts; we add the jitter.
        self.client.reconnect_delay_set(broker.reconnect_min, broker.reconnect_max)  # type: ignore[arg-type]
        self._attempt = 0
        self._rng = random.Random()
        self.connected = False
        self._stopping = threading.Event()
        self._connected_at = 0.0
        self._short_drops: deque[float] = deque(maxlen=TAKEOVER_DROPS)

    # paho callbacks (network thread) ----------------------------------------------------------
    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            log.error(
                "broker %s:%d refused the connection: %s",
                self.broker.host,
                self.broker.port,
                reason,
            )
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
            # paho leaves Nagle on; with a bounded window of small QoS 1 publishes, Nagle and the
            # broker's delayed ACK stall every window by tens of milliseconds.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connected = True
        self._connected_at = time.monotonic()
        self._attempt = 0
        log.info("connected to %s:%d", self.broker.host, self.broker.port)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        for topic in self.subscriptions:
            if self.protocol == mqtt.MQTTv5:
                # no_local: the agent's own command responses are not sent back to it.
                # retainAsPublished shows a retained command as such, so it can be ignored;
                # retainHandling 2: none is sent at subscribe time in the first place.
                options = SubscribeOptions(
                    qos=1, noLocal=True, retainAsPublished=True, retainHandling=2
                )
                client.subscribe(topic, options=options)
            else:
                client.subscribe(topic, qos=1)
        self._on_connect()

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        was = self.connected
        self.connected = False
        if not self._stopping.is_set():
            self._jitter()
        if not was and not self._stopping.is_set():
            log.warning(
                "broker %s:%d closed the connection before accepting it (%s): check the "
                "TLS certificates, client certificate and credentials",
                self.broker.host,
                self.broker.port,
                reason,
            )
        if was:
            if self._stopping.is_set():
                log.info("disconnected from broker")
            elif self._taken_over(reason):
                log.error(
                    "disconnected from broker: session taken over - another client connected "
                    "with this node's client id %r (a second agent for this node, or two nodes "
                    "with one node.id or broker.client_id); give each its own",
                    self.broker.client_id,
                )
            else:
                log.warning("disconnected from broker: %s", reason)

    def _taken_over(self, reason: ReasonCode) -> bool:
        if reason.value == SESSION_TAKEN_OVER:
            return True
        now = time.monotonic()
        if now - self._connected_at > TAKEOVER_WINDOW / TAKEOVER_DROPS:
            self._short_drops.clear()
            return False
        self._short_drops.append(now)
        drops = self._short_drops
        return len(drops) == TAKEOVER_DROPS and drops[-1] - drops[0] <= TAKEOVER_WINDOW

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        self._on_ack(mid, not reason.is_failure)

    def _jitter(self) -> None:
        """on_connect_fail/on_disconnect: an extra random wait before paho's own delay."""
        cap = min(self.broker.reconnect_max, self.broker.reconnect_min * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        self._stopping.wait(self._rng.uniform(0, cap / 2))

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning(
            "cannot connect to broker %s:%d (unreachable, or TLS verification failed%s); retrying",
            self.broker.host,
            self.broker.port,
            ": see the broker's log" if self.broker.tls else "",
        )
        self._jitter()

    def start(self) -> None:
        clean_start: Any = True if self.broker.protocol == "5" else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        self.client.connect_async(
            self.broker.host, self.broker.port, self.broker.keepalive, clean_start=clean_start
        )
        self.client.loop_start()

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 1,
        retain: bool = False,
        correlation: Optional[bytes] = None,
    ) -> int:
        """Queues a message with paho; returns its message id (acks arrive through on_ack).
        correlation: MQTT 5 correlation data, for a response to a command."""
        properties = None
        if correlation is not None and self.protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        return int(info.mid)

    def stop(self, timeout: float = 5.0) -> None:
        """Publishes `offline` (retained) while still connected, then disconnects cleanly."""
        if self.connected:
            info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not queued: nothing to wait for
                info.wait_for_publish(timeout=min(timeout, 3.0))
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
        self.connected = False

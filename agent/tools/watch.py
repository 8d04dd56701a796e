"""A minimal central-side view: subscribe and print each message as it arrives."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, Optional

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config.schema import BrokerConfig
from agent.mqtt.link import tls_context

CONNACK_TIMEOUT = 10.0  # s for the broker's answer once the TCP connection stands


def format_message(topic: str, payload: bytes, retained: bool) -> str:
    text = payload.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("values"), dict):
        values = "  ".join(f"{k}={v}" for k, v in body["values"].items())
        extra = f"seq={body['seq']} " if "seq" in body else ""
        text = f"{extra}{values}" + ("" if body.get("available", True) else "  UNAVAILABLE")
    flag = " (retained)" if retained else ""
    return f"{time.strftime('%H:%M:%S')}  {topic}{flag}  {text}"


def watch(
    host: str,
    port: int,
    topic: str,
    *,
    count: int = 0,
    seconds: float = 0,
    broker: Optional[BrokerConfig] = None,
) -> int:
    """`broker`: a node config's broker settings (TLS, mutual TLS, user and password file),
    for brokers that refuse anonymous clients; host and port then come from it too."""
    done, answered = threading.Event(), threading.Event()
    received = 0
    refused: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, *_: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
            done.set()
        else:
            client.subscribe(topic, qos=1)
            print(f"connected; showing {topic} (Ctrl-C stops)", file=sys.stderr, flush=True)
        answered.set()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        print(format_message(msg.topic, bytes(msg.payload), bool(msg.retain)), flush=True)
        received += 1
        if count and received >= count:
            done.set()

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    if broker is not None:
        host, port = broker.host, broker.port
        if broker.username is not None:
            password = None
            if broker.password_file is not None:
                password = broker.password_file.read_text().rstrip("\r\n")
            client.username_pw_set(broker.username, password)
        if broker.tls is not None:
            t = broker.tls
            client.tls_set_context(tls_context(*(str(p) if p else None
                                                 for p in (t.ca, t.cert, t.key))))  # fmt: skip
    client.on_connect = on_connect
    client.on_message = on_message
    print(f"connecting to {host}:{port}...", file=sys.stderr, flush=True)
    try:
        client.connect(host, port)  # the TCP (and TLS) part, here, so its error can be shown
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        print(f"cannot connect to {host}:{port}: {reason}; check that the broker runs there "
              "(--host/--port, or --config for a secured broker)", file=sys.stderr)  # fmt: skip
        return 1
    client.loop_start()
    try:
        if not answered.wait(CONNACK_TIMEOUT):
            print(f"cannot connect to {host}:{port}: no answer to CONNECT within "
                  f"{CONNACK_TIMEOUT:g} s", file=sys.stderr)  # fmt: skip
            return 1
        done.wait(seconds or None)
    except KeyboardInterrupt:
        pass
    finally:
        client.loop_stop()
        client.disconnect()
    if refused:
        print(f"cannot connect to {host}:{port}: the broker refused: {refused[0]}; for a "
              "secured broker give the node's config with --config", file=sys.stderr)  # fmt: skip
        return 1
    return 0 if received or not count else 1

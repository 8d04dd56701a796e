"""`roomagent doctor`'s broker check: a real login with the node's own TLS settings, credentials
and protocol version, through the agent's own client (agent.mqtt.link), publishing nothing."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
from typing import Any, Optional

from agent.config.schema import BrokerConfig, Config
from agent.tools.doctor_checks import Result, ServiceState, failed, passed

CONNECT_TIMEOUT = 10.0  # s, TCP + TLS + CONNACK

# CONNACK reason codes (MQTT 5.0 section 3.2.2.2; paho maps 3.1.1's return codes onto them).
_REFUSED_LOGIN = {0x86, 0x87, 0x8C}  # bad user name or password, not authorised, bad auth method
_UNSUPPORTED_PROTOCOL = 0x84


def check_broker(cfg: Config, service: ServiceState, timeout: float = CONNECT_TIMEOUT) -> Result:
    """Logs in as the agent does: its TLS settings, its credentials, its protocol version."""
    name = "broker"
    b = cfg.broker
    where = f"{b.host}:{b.port}" + (" (TLS)" if b.tls else "")
    if service.active == "active" and service.status.startswith("connected"):
        # Logging in a second time with the node's user name would push the running agent
        # off the broker (use_username_as_clientid, docs/security.md) and flap its status.
        return passed(
            name,
            f"the running agent is connected to {where} with these settings "
            "(its systemd status says so), so the doctor does not log in again",
        )
    outcome = _login(cfg, timeout)
    if outcome is None:
        who = f" as {b.username!r}" if b.username else ""
        return passed(name, f"logged in to {where}{who}, protocol MQTT {b.protocol}")
    detail, fix = outcome
    return failed(name, f"{where}: {detail}", fix)


def _login(cfg: Config, timeout: float) -> Optional[tuple[str, str]]:
    """None when the broker accepted the login; else (what happened, what to do)."""
    from agent.mqtt.link import MqttLink

    b = cfg.broker
    # The agent's own client (credentials, TLS context, protocol) with a client id of its own,
    # no last will and none of the agent's callbacks: nothing is published.
    probe = dataclasses.replace(b, client_id=f"{b.client_id}-doctor")
    try:
        client = MqttLink(probe, status_topic=f"{cfg.node.base_topic}/status").client
    except OSError as e:
        return (
            f"cannot read {e.filename or 'a credentials file'}: {e.strerror}",
            "run the doctor as root (sudo), or give the file to group roomagent, mode 0640",
        )
    except ssl.SSLError as e:
        return (
            f"the TLS files in [broker.tls] cannot be used: {e}",
            "check that ca, cert and key are PEM files and that key belongs to cert",
        )
    client.will_clear()
    client.connect_timeout = timeout
    done = threading.Event()
    answer: dict[str, Any] = {}

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer.setdefault("connack", reason)
        done.set()

    def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer.setdefault("closed", reason)
        done.set()

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    client.on_connect_fail = lambda c, userdata: done.set()
    try:
        client.connect(b.host, b.port, b.keepalive)
    except ssl.SSLCertVerificationError as e:
        return _tls_refused(b, e)
    except ssl.SSLError as e:
        return (
            f"the TLS handshake failed ({e.reason or e})",
            "the broker may want a client certificate ([broker.tls] cert and key) or "
            "refuse this one: check the broker's log",
        )
    except socket.gaierror:
        return (
            f"the name {b.host!r} is not known here",
            "check broker.host, and that the Pi's network has DNS (ping the broker)",
        )
    except ConnectionRefusedError:
        return (
            "nothing listens there (connection refused)",
            "check broker.host and broker.port, and that mosquitto runs on the broker",
        )
    except (socket.timeout, TimeoutError):
        return (
            f"no answer within {timeout:g} s",
            "check the network cable or Wi-Fi, and that a firewall lets this port through",
        )
    except OSError as e:
        return (
            f"cannot connect: {e.strerror or e}",
            "check the Pi's network connection (ip addr; ping the broker)",
        )
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    reason = answer.get("connack")
    if reason is None:
        if "closed" in answer:
            return (
                "the broker closed the connection before accepting the login",
                "check the credentials and, with TLS, the client certificate; the broker's "
                "log says which",
            )
        return (
            f"no answer to the login within {timeout:g} s",
            "check that broker.port is an MQTT port (1883 plain, 8883 TLS)",
        )
    if not reason.is_failure:
        return None
    if reason.value in _REFUSED_LOGIN:
        who = repr(b.username) if b.username else "without a user name"
        return (
            f"the broker refused the login {who}: {reason}",
            f"check broker.username and the password in {b.password_file or 'password_file'}"
            " against the broker's password file (docs/security.md, 'Adding a room')",
        )
    if reason.value == _UNSUPPORTED_PROTOCOL:
        return (
            f"the broker does not speak MQTT {b.protocol}: {reason}",
            'set broker.protocol = "3.1.1" in the config, or upgrade the broker',
        )
    return (
        f"the broker refused the connection: {reason}",
        "check the broker's log for this client",
    )


def _tls_refused(b: BrokerConfig, e: ssl.SSLCertVerificationError) -> tuple[str, str]:
    said = e.verify_message or str(e)
    ca = b.tls.ca if b.tls and b.tls.ca else "the system's CAs"
    if "hostname" in said.lower() or "ip address mismatch" in said.lower():
        return (
            f"the broker's certificate is not for {b.host!r}: {said}",
            "set broker.host to a name in the broker certificate's subjectAltName",
        )
    return (
        f"the broker's certificate is not trusted: {said}",
        f"[broker.tls] ca ({ca}) must be the CA that signed the broker's certificate",
    )

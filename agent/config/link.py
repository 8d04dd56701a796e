"""The config's sections about the node's links to the central side: [broker] (with its TLS
files and password), [remote_config] (where new configs come from) and [registration] (where
the node announces itself at first boot). Secrets' files must not be world-readable."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from agent.config.table import Table, between, one_of


@dataclass(frozen=True)
class TLSConfig:
    ca: Optional[Path] = None  # None: the system's trusted CAs
    cert: Optional[Path] = None
    key: Optional[Path] = None


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "localhost"
    port: int = 1883
    protocol: str = "5"  # "5" or "3.1.1"
    keepalive: int = 30
    client_id: str = ""
    username: Optional[str] = None
    password_file: Optional[Path] = None
    tls: Optional[TLSConfig] = None
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0


@dataclass(frozen=True)
class RemoteConfig:
    """Where new configs may come from besides an MQTT command (docs/config.md)."""

    url: Optional[str] = None  # HTTPS address polled for this node's config (ETag-aware)
    interval: float = 300.0  # s between polls
    ca_file: Optional[Path] = None  # None: the system's trusted CAs
    token_file: Optional[Path] = None  # bearer token, sent as Authorization
    watch_file: bool = True  # reload the local config file when it changes


@dataclass(frozen=True)
class RegistrationConfig:
    """Where the node announces itself at first boot (`roomagent register`, provisioning.md)."""

    url: str  # https only: the token and any credentials sent back cross the network
    token_file: Optional[Path] = None  # bearer token, one line; refused if world-readable
    ca: Optional[Path] = None  # None: the system's trusted CAs
    retry_min: float = 5.0  # seconds before the first retry; doubles up to retry_max
    retry_max: float = 300.0
    attempts: int = 10  # then give up until the next `roomagent register`


def parse_broker(t: Table, node_id: str, resolve: Callable[[str], Path]) -> BrokerConfig:
    tls: Optional[TLSConfig] = None
    if "tls" in t.data:
        tt = t.table("tls")
        files = {}
        for name in ("ca", "cert", "key"):
            value = tt.get(name, str, None)
            if value is not None:
                p = resolve(value)
                if not p.is_file():
                    raise tt.error(name, f"no such file: {p}")
                files[name] = p
        if ("cert" in files) != ("key" in files):
            raise tt.error(
                "cert" if "key" in files else "key", "cert and key must be given together"
            )
        if "key" in files and files["key"].stat().st_mode & stat.S_IROTH:
            raise tt.error("key", f"{files['key']} is world-readable; chmod 600 it")
        tt.finish()
        tls = TLSConfig(**files)
    username = t.get("username", str, None)
    if "password_file" in t.data and username is None:
        raise t.error("password_file", "needs broker.username too")
    password_file = secret_file(t, "password_file", resolve)
    broker = BrokerConfig(
        host=t.get(
            "host", str, BrokerConfig.host, check=lambda v: None if v else "must not be empty"
        ),
        port=t.get("port", int, 8883 if tls else 1883, check=between(1, 65535)),
        protocol=t.get("protocol", str, BrokerConfig.protocol, check=one_of("5", "3.1.1")),
        keepalive=t.get("keepalive", int, BrokerConfig.keepalive, check=between(5, 3600, "s")),
        client_id=t.get("client_id", str, f"roomagent-{node_id}"),
        username=username,
        password_file=password_file,
        tls=tls,
        reconnect_min=t.get(
            "reconnect_min", float, BrokerConfig.reconnect_min, check=between(0.1, 60, "s")
        ),
        reconnect_max=t.get(
            "reconnect_max", float, BrokerConfig.reconnect_max, check=between(1, 3600, "s")
        ),
    )
    if broker.reconnect_max < broker.reconnect_min:
        raise t.error("reconnect_max", "must be ≥ reconnect_min")
    t.finish()
    return broker


def secret_file(t: Table, name: str, resolve: Callable[[str], Path]) -> Optional[Path]:
    """A file holding a secret: it must exist and must not be readable by every user."""
    value = t.get(name, str, None)
    if value is None:
        return None
    path = resolve(value)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise t.error(name, f"no such file: {path}") from None
    except OSError as e:
        raise t.error(name, f"cannot use {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise t.error(name, f"no such file: {path}")
    if mode & stat.S_IROTH:
        raise t.error(name, f"{path} is world-readable; chmod 600 it")
    return path


def parse_remote(t: Table, resolve: Callable[[str], Path]) -> RemoteConfig:
    def https(v: str) -> Optional[str]:
        # A config carries credentials' paths and decides what relays do: never over plain HTTP.
        return None if v.startswith("https://") else f"must be an https:// address, got {v!r}"

    ca_file = t.get("ca_file", str, None)
    remote = RemoteConfig(
        url=t.get("url", str, None, check=https),
        interval=t.get("interval", float, RemoteConfig.interval, check=between(10, 86400, "s")),
        ca_file=resolve(ca_file) if ca_file is not None else None,
        token_file=secret_file(t, "token_file", resolve),
        watch_file=t.get("watch_file", bool, RemoteConfig.watch_file),
    )
    if remote.ca_file is not None and not remote.ca_file.is_file():
        raise t.error("ca_file", f"no such file: {remote.ca_file}")
    if remote.url is None and (remote.ca_file or remote.token_file):
        raise t.error("url", "is required when ca_file or token_file is given")
    t.finish()
    return remote


def parse_registration(t: Table, resolve: Callable[[str], Path]) -> RegistrationConfig:
    def https(v: str) -> Optional[str]:
        if not re.match(r"^https://[^/\s?#]+", v):
            return f"must be an https:// URL (the token travels with it), got {v!r}"
        return None

    ca = t.get("ca", str, None)
    ca_path = resolve(ca) if ca is not None else None
    if ca_path is not None and not ca_path.is_file():
        raise t.error("ca", f"no such file: {ca_path}")
    registration = RegistrationConfig(
        url=t.get("url", str, check=https),
        token_file=secret_file(t, "token_file", resolve),
        ca=ca_path,
        retry_min=t.get(
            "retry_min", float, RegistrationConfig.retry_min, check=between(0.1, 3600, "s")
        ),
        retry_max=t.get(
            "retry_max", float, RegistrationConfig.retry_max, check=between(1, 86400, "s")
        ),
        attempts=t.get("attempts", int, RegistrationConfig.attempts, check=between(1, 1000)),
    )
    if registration.retry_max < registration.retry_min:
        raise t.error("retry_max", "must be ≥ retry_min")
    t.finish()
    return registration

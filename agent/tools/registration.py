"""`roomagent register`: the node tells the site's inventory that it exists, and may take its
config and credentials from it.

One HTTPS POST of JSON to `[registration] url` (docs/provisioning.md#registration has the
protocol): the node id, the hardware model from the device tree, a MAC address, the agent
version and the SHA-256 of the config it runs. The inventory answers 204 (nothing to change) or
200 with JSON that may carry a new config (TOML text) and credential files. Everything received
is validated as a whole, exactly as `roomagent check-config` would, before a single file is
replaced; a reply that fails is refused with the reason and changes nothing.

Offline (no route, DNS failure, connection refused, timeouts, HTTP 408/429/5xx), the request is
retried with a doubling delay plus jitter, `attempts` times in all. A refusal (other 4xx), a TLS
verification failure or an invalid reply is final: retrying would not change the answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent import __version__
from agent.config import schema as config_mod
from agent.config.schema import Config, ConfigError, RegistrationConfig

if TYPE_CHECKING:  # requests is imported only when a node registers
    import requests

log = logging.getLogger("roomagent.registration")

CONFIG_NAME = "roomagent.toml"
# What a credential may be called: a plain file name next to the config, never a path.
CREDENTIAL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_CREDENTIAL_BYTES = 64 * 1024
MAX_CONFIG_BYTES = 256 * 1024
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TIMEOUT = (10.0, 30.0)  # connect, read (seconds)
# Preferred interfaces for the MAC: the Pi's Ethernet (eth0, or end0 with predictable names),
# then its Wi-Fi; otherwise the first other interface with a real address.
MAC_PREFERENCE = ("eth0", "end0", "wlan0")


class RegistrationError(Exception):
    """A final failure: refused, TLS not verified, or a reply that cannot be used."""


@dataclass(frozen=True)
class Identity:
    id: str
    model: str
    mac: str
    version: str

    def payload(self, config_sha256: str) -> dict[str, str]:
        return {
            "id": self.id,
            "model": self.model,
            "mac": self.mac,
            "version": self.version,
            "config_sha256": config_sha256,
        }


@dataclass(frozen=True)
class Outcome:
    config_written: bool
    credentials_written: tuple[str, ...]
    attempts: int


def identity(node_id: str, root: Path = Path("/")) -> Identity:
    """Reads the model and MAC from /proc and /sys below `root` (tests pass a tree)."""
    model = "unknown"
    for candidate in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        try:
            # The device tree stores the model as a NUL-terminated string.
            model = (root / candidate).read_bytes().rstrip(b"\0").decode("utf-8", "replace")
            break
        except OSError:
            continue
    return Identity(node_id, model.strip() or "unknown", _mac(root / "sys/class/net"), __version__)


def _mac(net: Path) -> str:
    addresses: dict[str, str] = {}
    try:
        names = sorted(p.name for p in net.iterdir())
    except OSError:
        names = []
    for name in names:
        try:
            address = (net / name / "address").read_text().strip().lower()
        except OSError:
            continue
        if name != "lo" and address and address != "00:00:00:00:00:00":
            addresses[name] = address
    for name in MAC_PREFERENCE:
        if name in addresses:
            return addresses[name]
    return next(iter(addresses.values()), "unknown")


def retry_delays(reg: RegistrationConfig, rng: Callable[[], float]) -> list[float]:
    """The waits between attempts: retry_min doubling up to retry_max, plus up to half again."""
    delays = []
    for n in range(reg.attempts - 1):
        base = min(reg.retry_max, reg.retry_min * 2**n)
        delays.append(base + base / 2 * rng())
    return delays


def register(
    cfg: Config,
    *,
    root: Path = Path("/"),
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    session: Optional[requests.Session] = None,
) -> Outcome:
    """Registers, retrying while offline; applies a config or credentials sent back.

    Raises RegistrationError on a final failure, after the last attempt or at once."""
    import requests

    reg = cfg.registration
    if reg is None:
        raise RegistrationError(f"{cfg.source}: no [registration] section")
    config_bytes = Path(cfg.source).read_bytes()
    body = identity(cfg.node.id, root).payload(hashlib.sha256(config_bytes).hexdigest())
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if reg.token_file is not None:
        headers["Authorization"] = f"Bearer {_read_token(reg.token_file)}"
    http = session or requests.Session()
    delays = retry_delays(reg, rng)
    problem = ""
    try:
        for attempt in range(1, reg.attempts + 1):
            try:
                response = http.post(
                    reg.url,
                    data=json.dumps(body),
                    headers=headers,
                    timeout=TIMEOUT,
                    verify=str(reg.ca) if reg.ca else True,
                )
            except requests.exceptions.SSLError as e:
                raise RegistrationError(
                    f"{reg.url}: TLS verification failed (is registration.ca the CA that signed "
                    f"the inventory's certificate, for this host name?): {e}"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as e:
                problem = f"cannot reach {reg.url}: {type(e).__name__}"
            else:
                if response.status_code in RETRY_STATUS:
                    problem = f"{reg.url} answered HTTP {response.status_code}"
                elif response.status_code >= 300:
                    raise RegistrationError(
                        f"{reg.url} refused the registration: HTTP {response.status_code}: "
                        f"{response.text.strip()[:200]}"
                    )
                else:
                    written = apply_reply(cfg, response.status_code, response.content)
                    return Outcome(written[0], written[1], attempt)
            if attempt < reg.attempts:
                delay = delays[attempt - 1]
                log.warning("%s; attempt %d of %d, next in %.0f s",
                            problem, attempt, reg.attempts, delay)  # fmt: skip
                sleep(delay)
    finally:
        if session is None:
            http.close()
    raise RegistrationError(f"{problem}; gave up after {reg.attempts} attempts")


def _read_token(path: Path) -> str:
    token = path.read_text().strip()
    if not token or any(c in token for c in "\r\n"):
        raise RegistrationError(f"{path}: must hold the token on one line")
    return token


def apply_reply(cfg: Config, status: int, content: bytes) -> tuple[bool, tuple[str, ...]]:
    """Validates a 2xx reply in full, then writes what it carries next to the config."""
    if status == 204 or not content.strip():
        return False, ()
    try:
        reply = json.loads(content)
    except ValueError:
        raise RegistrationError("the inventory's reply is not JSON") from None
    if not isinstance(reply, dict):
        raise RegistrationError("the inventory's reply must be a JSON object")
    unknown = sorted(set(reply) - {"config", "credentials"})
    if unknown:
        raise RegistrationError(f"the inventory's reply has unknown keys: {', '.join(unknown)}")
    new_config = reply.get("config")
    if new_config is not None and (
        not isinstance(new_config, str) or len(new_config.encode()) > MAX_CONFIG_BYTES
    ):
        raise RegistrationError(
            f"reply: config must be TOML text of at most {MAX_CONFIG_BYTES} bytes"
        )
    credentials = _credentials(reply.get("credentials", {}))
    if new_config is None and not credentials:
        return False, ()
    config_path = Path(cfg.source)
    directory = config_path.parent
    staging = Path(tempfile.mkdtemp(prefix=".register-", dir=directory))
    try:
        # The staging directory is what the config directory will look like: the files already
        # there, then the ones received. The config is validated against exactly that.
        for existing in directory.iterdir():
            if existing.is_file() and existing.name != CONFIG_NAME:
                shutil.copy2(existing, staging / existing.name)
        for name, text in credentials.items():
            _write(staging / name, text.encode())
        current = new_config.encode() if new_config is not None else config_path.read_bytes()
        _write(staging / CONFIG_NAME, current)
        try:
            staged = config_mod.load(staging / CONFIG_NAME)
        except ConfigError as e:
            # Name the files where they will be, not where they were checked.
            where = f"{e.key}: " if e.key else ""
            message = e.message.replace(str(staging), str(directory))
            raise RegistrationError(
                f"refused the config the inventory sent: {where}{message}"
            ) from None
        if staged.node.id != cfg.node.id:
            raise RegistrationError(
                f"refused the config the inventory sent: it is for node {staged.node.id!r}, "
                f"this node is {cfg.node.id!r}"
            )
        for name in credentials:
            _commit(staging / name, directory / name)
        if new_config is not None:
            _commit(staging / CONFIG_NAME, config_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return new_config is not None, tuple(credentials)


def _credentials(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise RegistrationError("reply: credentials must be an object of file name to text")
    for name, text in raw.items():
        if not CREDENTIAL_NAME_RE.match(name) or name == CONFIG_NAME:
            raise RegistrationError(
                f"reply: credential name {name!r} must be a plain file name (letters, digits, "
                f"'.', '-', '_'), not a path, and not {CONFIG_NAME}"
            )
        if not isinstance(text, str) or len(text.encode()) > MAX_CREDENTIAL_BYTES:
            raise RegistrationError(
                f"reply: credentials[{name!r}] must be text of at most {MAX_CREDENTIAL_BYTES} bytes"
            )
    return dict(raw)


def _write(path: Path, data: bytes) -> None:
    # 0640: the service's group reads it (install.sh makes the directory root:roomagent).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o640)


def _commit(staged: Path, target: Path) -> None:
    """Moves a validated file into place in one rename, with the directory's group."""
    directory = target.parent
    if os.geteuid() == 0:
        os.chown(staged, 0, directory.stat().st_gid)
    os.chmod(staged, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP)
    os.replace(staged, target)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

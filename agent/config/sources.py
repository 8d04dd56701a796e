"""Where a running node's config comes from: its local file, a copy pushed or downloaded from
the central side, and the two watchers that notice a new one (file changes, an HTTPS poll).

A config that came from the central side is kept in the state directory beside the buffer
(the service may not write /etc), with the SHA-256 of the local file it replaced. At start the
newest wins: the remote copy while the local file is the one it replaced, the local file as
soon as someone edits it. requests and watchdog are imported only when a config asks for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from agent.common.seq_floor import write_durably
from agent.config import schema as config_mod
from agent.config.schema import Config, ConfigError, RemoteConfig

log = logging.getLogger("roomagent.config")

REMOTE_TEXT = "config.remote.toml"
REMOTE_META = "config.remote.json"
MAX_CONFIG_BYTES = 256 * 1024  # a node config is a few KiB; a download is refused beyond this
FETCH_TIMEOUT = 20.0  # s, connect and read


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RemoteCopy:
    text: str
    origin: str  # "mqtt" or the URL it was downloaded from
    etag: Optional[str]  # the server's, for If-None-Match
    base_sha256: str  # of the local file when this copy was applied


class RemoteStore:
    """The last config that came from the central side, kept beside the buffer."""

    def __init__(self, state_dir: Path) -> None:
        self.text_path = state_dir / REMOTE_TEXT
        self.meta_path = state_dir / REMOTE_META

    def load(self) -> Optional[RemoteCopy]:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            text = self.text_path.read_text(encoding="utf-8")
            if sha256(text.encode()) != meta["sha256"]:
                log.warning("%s does not match its checksum: ignored", self.text_path)
                return None
            return RemoteCopy(text, str(meta["origin"]), meta.get("etag"), str(meta["base"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("cannot read the remote config copy in %s: %s", self.meta_path, e)
            return None

    def save(self, copy: RemoteCopy) -> None:
        """Text first, then the record that vouches for it: a cut in between leaves a record
        whose checksum does not match, which load() ignores."""
        write_durably(self.text_path, copy.text.encode())
        meta = {"origin": copy.origin, "etag": copy.etag, "base": copy.base_sha256,
                "sha256": sha256(copy.text.encode())}  # fmt: skip
        write_durably(self.meta_path, json.dumps(meta).encode())

    def forget(self) -> None:
        for path in (self.meta_path, self.text_path):
            path.unlink(missing_ok=True)


def local_sha256(path: Path) -> str:
    try:
        return sha256(path.read_bytes())
    except OSError:
        return ""


def parse_remote(text: str, origin: str, local: Config) -> Config:
    """A config from the central side, validated as fully as a local file; its relative paths
    resolve like the local file's, and its source stays the local file (what is watched)."""
    cfg = config_mod.loads(text, origin, base_dir=local.source.resolve().parent)
    return dataclasses.replace(cfg, source=local.source)


def effective(local: Config, anchors: Optional[Config] = None) -> tuple[Config, str]:
    """The config to start with, and where it came from ("file" or a remote origin).
    `anchors`: the local file as written (before command-line overrides), whose broker,
    remote_config and registration a stored copy must still have (default: `local`)."""
    store = RemoteStore(local.node.state_dir)
    copy = store.load()
    if copy is None:
        return local, "file"
    if copy.base_sha256 != local_sha256(local.source):
        log.info("%s changed since the central side's config was applied: it wins", local.source)
        return local, "file"
    try:
        remote = parse_remote(copy.text, copy.origin, local)
        check_trust_anchors(anchors or local, remote, copy.origin)
        return remote, copy.origin
    except ConfigError as e:  # written by an older version, say: the local file still works
        log.error("the stored remote config is no longer valid (%s): using %s", e, local.source)
        return local, "file"


def check_trust_anchors(old: Config, new: Config, origin: str) -> None:
    """A config from the central side may not change where the node connects, with which
    credentials, nor where it takes configs from: whoever can publish one could otherwise
    send the node's password or token to a server of their choosing. Those change in the
    local file only (the installer's, or provisioning's)."""
    for key, before, after in (
        ("broker", old.broker, new.broker),
        ("remote_config", old.remote, new.remote),
        ("registration", old.registration, new.registration),
    ):
        if before != after:
            raise ConfigError(
                origin, key,
                "can only be changed in the node's local config file: it says where the "
                "node connects and with which credentials",
            )  # fmt: skip


class FileWatcher:
    """Calls `changed` (from watchdog's thread) when the config file is written, replaced or
    renamed into place, as editors and `install` do."""

    def __init__(self, path: Path, changed: Callable[[], None]) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        target = str(path.resolve())
        # watchdog logs every event in the directory at DEBUG; the agent's own log may live
        # there, and each line logged would be another event.
        logging.getLogger("watchdog").setLevel(logging.INFO)

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                paths = {event.src_path, getattr(event, "dest_path", "")}
                if target in {p.decode() if isinstance(p, bytes) else p for p in paths}:
                    changed()

        self._observer: Any = Observer()
        self._observer.daemon = True
        self._observer.schedule(Handler(), str(path.resolve().parent), recursive=False)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():
            self._observer.join(timeout=2)


class FetchError(Exception):
    pass


@dataclass(frozen=True)
class Fetched:
    text: Optional[str]  # None: unchanged since `etag` (HTTP 304)
    etag: Optional[str]


class Fetcher:
    """GETs the node's config over HTTPS with If-None-Match; blocking, so run it in a thread."""

    def __init__(self, remote: RemoteConfig, user_agent: str) -> None:
        import requests

        assert remote.url is not None
        self.remote = remote
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a
        # session's verify, and a node must trust exactly the CA its config names.
        self._verify: str | bool = str(remote.ca_file) if remote.ca_file else True
        self._lock = threading.Lock()

    def fetch(self, etag: Optional[str]) -> Fetched:
        headers = {"Accept": "application/toml, text/plain;q=0.9"}
        if etag:
            headers["If-None-Match"] = etag
        if self.remote.token_file is not None:
            try:
                token = self.remote.token_file.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise FetchError(f"cannot read {self.remote.token_file}: {e.strerror}") from e
            headers["Authorization"] = f"Bearer {token}"
        url = self.remote.url
        assert url is not None
        try:
            with self._lock:
                return self._get(url, headers, etag)
        except FetchError:
            raise
        except Exception as e:  # requests', and urllib3's while the body streams in
            raise FetchError(f"cannot fetch {url}: {e}") from e

    def _get(self, url: str, headers: dict[str, str], etag: Optional[str]) -> Fetched:
        with self._session.get(
            url,
            headers=headers,
            timeout=FETCH_TIMEOUT,
            stream=True,
            allow_redirects=False,
            verify=self._verify,
        ) as response:
            if response.status_code == 304:
                return Fetched(None, etag)
            if response.status_code != 200:
                raise FetchError(f"{url} answered HTTP {response.status_code}")
            body = response.raw.read(MAX_CONFIG_BYTES + 1, decode_content=True)
            if len(body) > MAX_CONFIG_BYTES:
                raise FetchError(f"{url}: config over {MAX_CONFIG_BYTES} bytes")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FetchError(f"{url}: config is not UTF-8 ({e.reason})") from None
            return Fetched(text, response.headers.get("ETag"))

    def close(self) -> None:
        self._session.close()

"""New configs for a running node, from three places: `cmd/config` (pushed over MQTT), the
HTTPS address in `[remote_config]` (polled, ETag-aware) and the local file (watched).

Every one is validated as fully as at start (agent.config.schema), then checked against what cannot
change in place (agent.app.reconfigure), and only then applied; one that fails is refused with the
reason, reported on the events topic and in health, and the node carries on with the last good
config. docs/config.md ("Changing the config of a running node") is the user's side of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent import __version__
from agent.app.reconfigure import check_fixed
from agent.config import schema as config_mod
from agent.config.schema import Config, ConfigError
from agent.config.sources import (
    Fetcher,
    FetchError,
    FileWatcher,
    RemoteCopy,
    RemoteStore,
    check_trust_anchors,
    local_sha256,
    parse_remote,
    sha256,
)
from agent.mqtt.command_args import CommandError

if TYPE_CHECKING:
    from agent.node.ports import ConfigPorts

log = logging.getLogger("roomagent.config")

SETTLE_SECONDS = 1.0  # editors write a file in several steps: wait for it to settle


@dataclass(frozen=True)
class Applied:
    origin: str  # "file", "mqtt" or the URL
    sha256: str  # of the config text
    changed: tuple[str, ...]


class ConfigManager:
    def __init__(
        self, node: ConfigPorts, origin: str, prepare: Callable[[Config], Config] = lambda c: c
    ) -> None:
        self.node = node
        self.prepare = prepare  # the command line's overrides (--broker, --state-dir)
        running = node.config()
        self.store = RemoteStore(running.node.state_dir)
        self.origin = origin
        self.local_sha = local_sha256(running.source)
        # What a pushed config's broker, remote_config and registration must equal: the local
        # file as written, before any command-line override (--broker), which would otherwise
        # mask a pushed change and leave it stored for the next start without the override.
        self.anchors = _local_file(running)
        copy = self.store.load() if origin != "file" else None
        self.sha = sha256(copy.text.encode()) if copy else self.local_sha
        # The server's ETag for what was last taken from remote_config.url; a push or a local
        # edit since does not reset it, so the server's config is not applied again over them
        # until it changes.
        self.url_etag = copy.etag if copy else None
        self.last_error: Optional[str] = None
        self.applied_at = time.time()
        self._watcher: Optional[FileWatcher] = None
        self._fetcher: Optional[Fetcher] = None
        self._tasks: list[asyncio.Future[Any]] = []
        self._file_changed = asyncio.Event()
        self._fetch_now = asyncio.Event()

    # Lifecycle.

    def start(self) -> None:
        if self.node.config().remote.watch_file:
            self._start_watcher()
        self._tasks = [asyncio.ensure_future(self._watch_file()),
                       asyncio.ensure_future(self._poll())]  # fmt: skip

    def _start_watcher(self) -> None:
        loop = asyncio.get_running_loop()

        def changed() -> None:  # on watchdog's thread
            loop.call_soon_threadsafe(self._file_changed.set)

        try:
            self._watcher = FileWatcher(self.node.config().source, changed)
            self._watcher.start()
        except OSError as e:  # inotify limits, a directory that went away
            log.error("cannot watch %s for changes: %s", self.node.config().source, e)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._watcher is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._watcher.stop)
        if self._fetcher is not None:
            self._fetcher.close()

    def health(self) -> dict[str, Any]:
        return {"origin": self.origin, "sha256": self.sha, "error": self.last_error}

    # The three sources.

    def from_command(self, body: dict[str, Any]) -> dict[str, Any]:
        """`cmd/config`: {"config": "<TOML>"} applies it; {"command": "fetch"} polls the HTTPS
        address now; {"command": "get"} says which config is running."""
        text = body.get("config")
        verb = body.get("command")
        if text is not None:
            if not isinstance(text, str):
                raise CommandError("bad_argument", "config: must be the config as a TOML string")
            try:
                new = self._pushed(
                    parse_remote(text, "cmd/config", self.node.config()), "cmd/config"
                )
                applied = self._apply(new, text, "mqtt", name="cmd/config")
            except ConfigError as e:
                self._refused("mqtt", str(e))
                raise CommandError("invalid_config", str(e)) from None
            reason = "applied" if applied.changed else "unchanged"
            return {"reason": reason, "changed": list(applied.changed), "sha256": applied.sha256}
        if verb == "get":
            return {"reason": "running config", **self.health()}
        if verb == "fetch":
            if self.node.config().remote.url is None:
                raise CommandError("unavailable", "no remote_config.url is configured")
            self._fetch_now.set()
            return {"reason": "fetching", "url": self.node.config().remote.url}
        raise CommandError("bad_argument", 'expected "config": "<TOML>", or command get or fetch')

    async def _watch_file(self) -> None:
        while True:
            await self._file_changed.wait()
            # Settle: an editor's save is several events; act once on the final content.
            while True:
                self._file_changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._file_changed.wait(), SETTLE_SECONDS)
                if not self._file_changed.is_set():
                    break
            try:
                self._reload_file()
            except Exception as e:  # a bug of ours must not end the watching for good
                log.exception("reloading %s failed", self.node.config().source)
                self._refused("file", f"reloading failed: {e}")

    def _reload_file(self) -> None:
        path = self.node.config().source
        current = local_sha256(path)
        if not current or current == self.local_sha:
            return  # gone for a moment, touched, or written back unchanged
        self.local_sha = current
        try:
            local = config_mod.load(path)
            new = self.prepare(local)
            applied = self._apply(new, None, "file", name=str(path))
            self.anchors = local
        except ConfigError as e:
            self._refused("file", str(e))
            return
        log.info("%s reloaded: %s", path, ", ".join(applied.changed) or "nothing changed")

    async def _poll(self) -> None:
        while True:
            remote = self.node.config().remote
            if remote.url is not None:
                try:
                    await self._fetch_once()
                except Exception as e:  # as in _watch_file
                    log.exception("fetching the config from %s failed", remote.url)
                    self._refused(str(remote.url), f"fetching failed: {e}")
                interval = remote.interval
            else:
                interval = 3600.0  # nothing to poll until a config command asks for it
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._fetch_now.wait(), interval)
            self._fetch_now.clear()

    async def _fetch_once(self) -> None:
        remote = self.node.config().remote
        if self._fetcher is None or self._fetcher.remote != remote:
            if self._fetcher is not None:
                self._fetcher.close()
            self._fetcher = Fetcher(remote, f"roomagent/{__version__}")
        url = str(remote.url)
        loop = asyncio.get_running_loop()
        try:
            fetched = await loop.run_in_executor(None, self._fetcher.fetch, self.url_etag)
        except FetchError as e:
            if self.last_error != str(e):  # once per distinct failure, not every poll
                log.warning("%s", e)
            self.last_error = str(e)
            return
        if fetched.text is None:
            return  # 304: what we run is still current
        try:
            new = self._pushed(parse_remote(fetched.text, url, self.node.config()), url)
            self._apply(new, fetched.text, url, fetched.etag, name=url)
        except ConfigError as e:
            self.url_etag = fetched.etag  # not again until the server has something else
            self._refused(url, str(e))

    # Applying.

    def _pushed(self, raw: Config, name: str) -> Config:
        """A config from the central side, checked as it was sent (the more basic reason first),
        then given the command line's overrides."""
        new = self.prepare(raw)
        check_fixed(self.node.config(), new, name)
        check_trust_anchors(self.anchors, raw, name)
        return new

    def _apply(
        self,
        new: Config,
        text: Optional[str],
        origin: str,
        etag: Optional[str] = None,
        *,
        name: str,
    ) -> Applied:
        """Applies a validated config; `text` is kept (with its origin) when it came from the
        central side, so that a restart comes back with it."""
        digest = sha256(text.encode()) if text is not None else local_sha256(new.source)
        old_remote = self.node.config().remote
        if text is not None:
            check_fixed(self.node.config(), new, name)  # the more basic reason first
            check_trust_anchors(self.node.config(), new, name)
        try:
            changed = self.node.apply(new, name)
        except ConfigError:
            raise
        except Exception as e:  # hardware: see Reconfigurer.apply
            log.exception("applying the config from %s failed", origin)
            raise ConfigError(name, "", f"applying failed: {e}") from e
        if etag is not None:
            self.url_etag = etag
        if text is not None:
            copy = RemoteCopy(text, origin, self.url_etag, local_sha256(self.node.config().source))
            try:
                self.store.save(copy)
            except OSError as e:  # applied, but a restart will come back with the old config
                log.error("cannot keep the new config in %s: %s", self.store.text_path, e)
        else:
            self.store.forget()  # the local file was edited: it is the config from now on
        self.origin, self.sha = origin, digest
        self.last_error = None
        if new.remote != old_remote:  # only a local edit can change it (check_trust_anchors)
            self._restart_sources(old_remote.watch_file)
        self.applied_at = time.time()
        state = "applied" if changed else "unchanged"
        self.node.config_event(state, f"from {origin}: {', '.join(changed) or 'no change'}")
        return Applied(origin, digest, changed)

    def _refused(self, origin: str, reason: str) -> None:
        log.error("new config from %s refused, still running the last good one: %s",
                  origin, reason)  # fmt: skip
        self.last_error = reason
        self.node.config_event("refused", f"from {origin}: {reason}")

    def _restart_sources(self, was_watching: bool) -> None:
        """A local edit changed [remote_config]: poll the new address now, and start or stop
        watching the file."""
        self._fetch_now.set()
        watch = self.node.config().remote.watch_file
        if watch and not was_watching:
            self._start_watcher()
        elif was_watching and not watch and self._watcher is not None:
            watcher, self._watcher = self._watcher, None
            asyncio.get_running_loop().run_in_executor(None, watcher.stop)


def _local_file(running: Config) -> Config:
    """The local file's own config (no overrides), or the running one if it cannot be read
    now (then the overrides are compared like everything else)."""
    try:
        return config_mod.load(running.source)
    except (ConfigError, OSError) as e:
        log.warning("cannot read %s to check pushed configs against: %s", running.source, e)
        return running

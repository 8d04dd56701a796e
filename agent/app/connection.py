"""The node's MQTT connection and the commands that arrive on it.

The connection is replaced whole when the broker settings change (agent.app.reconfigure): the
old link's callbacks are ignored from the moment the new one takes its place. A command is
screened on paho's thread (retained, our own answers, Home Assistant's birth message), then
processed on the event loop, and answered on its response topic (docs/mqtt.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Optional

from agent.central import ha_discovery as discovery
from agent.mqtt.contract import Topics, iso_utc
from agent.mqtt.link import MqttLink

if TYPE_CHECKING:
    from agent.commands.processor import CommandProcessor
    from agent.config.schema import Config
    from agent.pipeline.forwarder import Forwarder

log = logging.getLogger("roomagent")


class NodeLink:
    def __init__(
        self,
        topics: Topics,
        config: Callable[[], Config],
        now: Callable[[], float],
        threadsafe: Callable[..., None],  # calls a function on the event loop, from any thread
        announce: Callable[[], None],
        forwarder: Callable[[], Optional[Forwarder]],
    ) -> None:
        self.topics, self._config, self._now = topics, config, now
        self._threadsafe, self._announce, self._forwarder = threadsafe, announce, forwarder
        self.link: Optional[MqttLink] = None
        self.commands: Optional[CommandProcessor] = None
        self._lock: Optional[asyncio.Lock] = None  # made on the loop (Python 3.9)

    def subscriptions(self, config: Config) -> tuple[str, ...]:
        topics = [self.topics.commands]
        if config.node.discovery:
            topics.append(discovery.status_topic(config.node.discovery_prefix))
        return tuple(topics)

    def new_link(self, config: Config) -> MqttLink:
        """A link whose callbacks are ignored once another link has replaced it (a broker
        change): a late PUBACK from the old broker must not delete a row by a stale id."""
        link: Optional[MqttLink] = None

        def current() -> bool:
            return link is not None and link is self.link

        def on_connect() -> None:
            if current():
                self._announce()

        def on_ack(mid: int, ok: bool) -> None:  # on paho's thread: see agent/pipeline/forwarder.py
            forwarder = self._forwarder()
            if current() and forwarder is not None:
                forwarder.on_ack(mid, ok)

        link = MqttLink(
            config.broker,
            status_topic=self.topics.status,
            on_connect=lambda: self._threadsafe(on_connect),
            on_ack=on_ack,
            max_inflight=config.buffer.max_inflight,
            subscriptions=self.subscriptions(config),
            on_message=self._on_message,
        )
        return link

    async def replace(self) -> None:
        """Moves to new broker settings: the old connection says offline and closes, what was
        in flight on it goes again from the buffer (at least once, same seq), the new one
        connects and announces."""
        forwarder = self._forwarder()
        assert forwarder is not None and self.link is not None
        if self._lock is None:
            self._lock = asyncio.Lock()
        # One swap at a time, each from the config of its moment: a second change that comes
        # while the first is stopping its old link replaces the link the first one started.
        async with self._lock:
            config = self._config()
            old, new = self.link, self.new_link(config)
            self.link = new  # from here, the old link's callbacks are ignored
            await asyncio.get_running_loop().run_in_executor(None, old.stop)
            await forwarder.restart(new, config.buffer.max_inflight)
            new.start()
        broker = self._config().broker
        log.info("connecting to the new broker settings: %s:%d", broker.host, broker.port)

    def _on_message(self, message: Any) -> None:
        """A command arrived (paho's thread): checked for what can be checked here, then run on
        the event loop, where everything it touches lives."""
        node = self._config().node
        if node.discovery and message.topic == discovery.status_topic(node.discovery_prefix):
            if discovery.ha_status_is_online(bytes(message.payload)):
                log.info("Home Assistant is online: announcing again")
                self._threadsafe(self._announce)
            return
        prefix = self.topics.commands[:-1]  # "<base>/cmd/"
        if not message.topic.startswith(prefix):
            return
        path = message.topic[len(prefix) :].split("/")
        if path == ["response"]:
            return  # our own answers, when the broker cannot honour no_local (MQTT 3.1.1)
        if message.retain:
            # A retained command would switch things again at every reconnect: never obeyed.
            log.warning("ignored a retained command on %s", message.topic)
            return
        props = getattr(message, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        self._threadsafe(self._command, path, bytes(message.payload), response_topic, correlation)

    def _command(
        self,
        path: list[str],
        payload: bytes,
        response_topic: Optional[str],
        correlation: Optional[bytes],
    ) -> None:
        assert self.commands is not None  # made before the link starts
        response = self.commands.process(path, payload)
        log.info("command %s: %s %s", "/".join(path), response.code, response.reason)
        if self.link is not None and self.link.connected:
            topic = response_topic or self.topics.command_response
            body = response.payload(iso_utc(self._now()))
            self.link.publish(topic, body, qos=1, correlation=correlation)

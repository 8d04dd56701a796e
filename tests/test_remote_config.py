"""Remote configuration against a real mosquitto, a real HTTPS server and the agent as a
subprocess: a new config from cmd/config, from an HTTPS address (ETag-aware) or from an edit of
the local file is validated fully, applied in place (relays, buffer and sequence numbers
kept), refused with its reason when it is wrong, and survives a restart."""

from __future__ import annotations

import http.server
import json
import ssl
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.central import BASE, CONTROL, CentralRoom
from tests.conftest import AgentProcess, node_config
from tests.mqtt_fixtures import Broker, Received, Subscriber, make_certificates
from tests.waiting import taken_after
from tests.waiting import wait_until as wait

BUFFERED = ("telemetry", "events", "energy")
LIGHT = """
[[devices]]
name = "light"
driver = "veml7700"
interval = 1
"""


def payloads(sub: Subscriber, suffix: str) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in sub.on(f"{BASE}/{suffix}") if m.payload]


def events(sub: Subscriber, kind: str) -> list[dict[str, Any]]:
    return [e for e in payloads(sub, "events") if e["kind"] == kind]


def seqs(messages: list[Received]) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in messages]


def buffered(sub: Subscriber) -> list[Received]:
    """Everything that goes through the buffer and so carries the node's sequence number."""
    return [m for m in sub.on(f"{BASE}/") if m.topic.split("/")[2] in BUFFERED]


def barrier(room: Room, ident: str) -> None:
    """Returns once all the agent published directly (not through the buffer) before it read
    a command sent now is at room.sub: the command's answer comes after those on the agent's
    one connection, and the broker keeps their order."""
    room.central.client.publish(f"{BASE}/cmd/ping", json.dumps({"id": ident}), qos=1)
    assert wait(lambda: [m for m in room.sub.on(f"{BASE}/cmd/response")
                         if json.loads(m.payload)["id"] == ident])  # fmt: skip


def buffered_barrier(room: Room) -> None:
    """Returns once all the agent buffered before now is at room.sub: the buffer sends in
    sequence order, so a reading taken after now comes after all of it."""
    now = time.time()
    assert wait(lambda: taken_after((m.payload for m in room.sub.on("telemetry/climate")), now))


class Room(CentralRoom):
    """One agent with relays and a zone, a central client and a subscriber to all it says."""

    def __init__(self, tmp_path: Path, broker: Broker, make: Callable[[str], AgentProcess],
                 extra: str = "", remote: str = "") -> None:  # fmt: skip
        self.state = tmp_path / "state"
        text = node_config(broker.port, self.state, extra=extra) + textwrap.dedent(CONTROL)
        super().__init__(broker, make, text + textwrap.dedent(remote))

    def push(self, text: str, ident: str) -> dict[str, Any]:
        reply = self.central.send("config", json.dumps({"id": ident, "config": text}))
        assert reply is not None, self.agent.output()[-3000:]
        return reply


@pytest.fixture
def room(tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
         ) -> Iterator[Room]:  # fmt: skip
    r = Room(tmp_path, broker, agent_process)
    yield r
    r.close()


def test_a_pushed_config_is_applied_in_place_and_kept_across_a_restart(room: Room) -> None:
    assert room.central.send("relay/up", "ON")["ok"]  # type: ignore[index]
    assert wait(lambda: len(room.sub.on("telemetry/climate")) >= 2)
    new = room.text.replace("comfort = 21.0", "comfort = 20.5") + textwrap.dedent(LIGHT)
    reply = room.push(new, "c1")
    assert reply["ok"], reply
    assert reply["code"] == "ok" and reply["reason"] == "applied"
    assert set(reply["result"]["changed"]) == {"devices", "control"}
    assert wait(lambda: len(room.sub.on("telemetry/light")) >= 1), room.agent.output()[-3000:]
    # The relay the new config keeps was not switched: no event for it since the command.
    relay_events = [e for e in events(room.sub, "relay") if e["subject"] == "up"]
    assert [e["state"] for e in relay_events] == ["on"]
    assert room.central.state("up") is True
    # One sequence for the node: the new device's readings continue it, nothing restarts.
    all_seqs = seqs(buffered(room.sub))
    assert all_seqs == sorted(all_seqs) and len(set(all_seqs)) == len(all_seqs)
    applied = events(room.sub, "config")
    assert applied and applied[-1]["state"] == "applied" and "mqtt" in applied[-1]["reason"]
    info = [m for m in room.sub.on(f"{BASE}/info")][-1]
    assert [d["name"] for d in json.loads(info.payload)["devices"]] == ["climate", "light"]

    # A restart comes back with the pushed config: the local file was not edited since.
    assert room.agent.terminate() == 0
    before = len(room.sub.on("telemetry/light"))
    room.agent.start()
    assert wait(lambda: len(room.sub.on("telemetry/light")) > before, 20), room.agent.output()
    reply = room.central.send("config", '{"id": "g1", "command": "get"}', timeout=10)
    assert reply is not None and reply["result"]["origin"] == "mqtt"


def test_a_bad_config_is_refused_with_its_reason_and_nothing_changes(room: Room) -> None:
    assert room.central.send("relay/up", "ON")["ok"]  # type: ignore[index]
    running = room.central.send("config", '{"command": "get"}')["result"]  # type: ignore[index]
    cases = {
        "interval = 1": ("interval = 0", "devices[0].interval: must be"),
        'id = "test-node"': ('id = "other-node"', "node.id: cannot change while the agent runs"),
        "[[relays]]": ("[[relays]]\nfoo = 1", "relays[0].foo"),
        "comfort = 21.0": ("comfort = 21.0\n[[[", "not valid TOML"),
    }
    for n, (old, (bad, reason)) in enumerate(cases.items()):
        reply = room.push(room.text.replace(old, bad, 1), f"bad{n}")
        assert not reply["ok"] and reply["code"] == "invalid_config", reply
        assert reason in reply["reason"] and "cmd/config" in reply["reason"], reply
    reply = room.central.send("config", '{"config": 5}')
    assert reply is not None and reply["code"] == "bad_argument"
    after = room.central.send("config", '{"command": "get"}')["result"]  # type: ignore[index]
    assert after["sha256"] == running["sha256"] and after["origin"] == "file"
    assert "not valid TOML" in after["error"]
    refused = events(room.sub, "config")
    assert [e["state"] for e in refused] == ["refused"] * len(cases)
    assert room.central.state("up") is True and len(events(room.sub, "relay")) == 1
    # Still running: the climate sensor keeps reporting.
    count = len(room.sub.on("telemetry/climate"))
    assert wait(lambda: len(room.sub.on("telemetry/climate")) > count)


def test_an_edit_of_the_local_file_is_reloaded_and_a_bad_edit_refused(room: Room) -> None:
    path = room.agent.config
    path.write_text(room.text + textwrap.dedent(LIGHT))
    assert wait(lambda: len(room.sub.on("telemetry/light")) >= 1), room.agent.output()[-3000:]
    assert wait(lambda: any("from file" in e["reason"] for e in events(room.sub, "config")))
    # An editor's broken save: refused, and the node keeps the last good config.
    path.write_text(room.text.replace("[[devices]]", "[[devices]]\nbogus = 1"))
    assert wait(lambda: events(room.sub, "config")[-1]["state"] == "refused")
    assert "devices[0].bogus: unknown key" in events(room.sub, "config")[-1]["reason"]
    count = len(room.sub.on("telemetry/light"))
    assert wait(lambda: len(room.sub.on("telemetry/light")) > count)


def get(room: Room) -> dict[str, Any]:
    reply = room.central.send("config", '{"command": "get"}')
    assert reply is not None
    return dict(reply["result"])


class ConfigServer:
    """The central inventory: serves one node config over HTTPS with an ETag."""

    def __init__(self, directory: Path) -> None:
        certs = make_certificates(directory)
        self.ca = certs["ca.crt"]
        self.body, self.etag = b"", '"v0"'
        self.truncate = False  # announce more bytes than are sent, then hang up
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers.items()))
                if self.headers.get("If-None-Match") == server.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", server.etag)
                extra = 100 if server.truncate else 0
                self.send_header("Content-Length", str(len(server.body) + extra))
                self.end_headers()
                self.wfile.write(server.body)
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs["server.crt"], certs["server.key"])
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://localhost:{self.httpd.server_address[1]}/nodes/test-node.toml"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, text: str, etag: str) -> None:
        self.body, self.etag = text.encode(), etag

    def close(self) -> None:
        self.httpd.shutdown()


def test_a_config_fetched_over_https_with_etag_and_a_token(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> None:
    server = ConfigServer(tmp_path / "https")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    remote = f"""
        [remote_config]
        url = "{server.url}"
        ca_file = "{server.ca}"
        token_file = "{token}"
        interval = 3600
    """
    local = node_config(broker.port, tmp_path / "state") + textwrap.dedent(CONTROL)
    server.serve(local + textwrap.dedent(remote) + textwrap.dedent(LIGHT), '"v1"')
    room = Room(tmp_path, broker, agent_process, remote=remote)
    try:
        # Fetched at start: the light sensor only the served config has.
        assert wait(lambda: len(room.sub.on("telemetry/light")) >= 1), room.agent.output()[-3000:]
        first = server.requests[0]
        assert first["Authorization"] == "Bearer s3cret" and "If-None-Match" not in first
        # Asked again: the server says nothing changed, and nothing is applied.
        applied = len(events(room.sub, "config"))
        assert room.central.send("config", '{"command": "fetch"}')["ok"]  # type: ignore[index]
        assert wait(lambda: len(server.requests) == 2)
        assert server.requests[1]["If-None-Match"] == '"v1"'
        # Asked once more: fetches run one after another, so the second one's answer is handled.
        assert room.central.send("config", '{"command": "fetch"}')["ok"]  # type: ignore[index]
        assert wait(lambda: len(server.requests) == 3)
        buffered_barrier(room)
        assert len(events(room.sub, "config")) == applied
        # A download cut short is an error the next poll recovers from.
        server.truncate = True
        server.serve(server.body.decode().replace("interval = 1", "interval = 2"), '"v1b"')
        room.central.send("config", '{"command": "fetch"}')
        assert wait(lambda: len(server.requests) == 4)
        assert wait(lambda: "cannot fetch" in (get(room)["error"] or ""))
        server.truncate = False
        server.serve(server.body.decode(), '"v1c"')
        room.central.send("config", '{"command": "fetch"}')
        assert wait(lambda: events(room.sub, "config")[-1]["reason"].endswith("devices"))
        # A broken config on the server is refused; the node runs on.
        server.serve("[node\n", '"v2"')
        room.central.send("config", '{"command": "fetch"}')
        assert wait(lambda: events(room.sub, "config")[-1]["state"] == "refused")
        assert "not valid TOML" in events(room.sub, "config")[-1]["reason"]
        assert server.url in events(room.sub, "config")[-1]["reason"]
        count = len(room.sub.on("telemetry/light"))
        assert wait(lambda: len(room.sub.on("telemetry/light")) > count)
    finally:
        room.close()
        server.close()


def test_new_broker_settings_move_the_node_without_losing_a_reading(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> None:
    room = Room(tmp_path, broker, agent_process)
    second = Broker(tmp_path / "second")
    second.start()
    there = Subscriber(second.port, f"{BASE}/#")
    try:
        assert wait(lambda: len(room.sub.on("telemetry/climate")) >= 2)
        moved = room.text.replace(f"port = {broker.port}", f"port = {second.port}")
        # From the central side, never: whoever may push a config could send the node, and
        # its password, to a broker of their own.
        reply = room.push(moved, "move")
        assert reply["code"] == "invalid_config", reply
        assert "broker: can only be changed in the node's local config file" in reply["reason"]
        # An installer's edit of the local file moves it.
        room.agent.config.write_text(moved)
        assert wait(lambda: len(there.on("telemetry/climate")) >= 2), room.agent.output()[-3000:]
        assert wait(lambda: any(m.payload == b"offline" for m in room.sub.on(f"{BASE}/status")))
        assert any(m.payload == b"online" for m in there.on(f"{BASE}/status"))
        # Every reading reached one broker or the other, in one unbroken sequence.
        got = set(seqs(buffered(room.sub))) | set(seqs(buffered(there)))
        assert got == set(range(min(got), max(got) + 1))
    finally:
        there.close()
        room.close()
        second.stop()


def test_a_new_discovery_prefix_is_subscribed_to_in_place_of_the_old(room: Room) -> None:
    infos = len(room.sub.on(f"{BASE}/info"))
    moved = room.text.replace("[node]", '[node]\ndiscovery_prefix = "ha"', 1)
    reply = room.push(moved, "prefix")
    assert reply["ok"] and reply["result"]["changed"] == ["node"], reply
    # New subscriptions mean a new connection, which announces itself.
    assert wait(lambda: len(room.sub.on(f"{BASE}/info")) > infos)
    barrier(room, "b1")  # the whole announcement of the new connection is in
    infos = len(room.sub.on(f"{BASE}/info"))
    room.central.client.publish("homeassistant/status", "online", qos=1)
    barrier(room, "b2")  # an announcement it caused would have come before this answer
    assert len(room.sub.on(f"{BASE}/info")) == infos  # the old prefix is no longer heard
    room.central.client.publish("ha/status", "online", qos=1)
    assert wait(lambda: len(room.sub.on(f"{BASE}/info")) > infos, 10)


def test_every_config_section_is_either_applied_live_or_refused_as_restart_only(
    tmp_path: Path,
) -> None:
    import dataclasses

    from agent.app.reconfigure import LIVE, RESTART_ONLY, SECTIONS, changed_sections, check_fixed
    from agent.config.schema import Config, ConfigError, loads

    fields = {f.name for f in dataclasses.fields(Config)} - {"source"}
    # A new Config field must be put in one of the two lists (and handled there).
    assert fields == set(LIVE) | set(RESTART_ONLY) and not set(LIVE) & set(RESTART_ONLY)
    assert set(SECTIONS) == fields
    config = loads(node_config(1883, tmp_path / "state"), "node.toml", tmp_path)
    for name in RESTART_ONLY:
        other = dataclasses.replace(config, **{name: object()})
        with pytest.raises(ConfigError, match=name):
            check_fixed(config, other, "cmd/config")
    for name in LIVE:  # each is compared: a change to it alone is seen
        other = dataclasses.replace(config, **{name: object()})
        assert changed_sections(config, other) == (name,)


ROOM = """
[room]
volume_m3 = 60
seats = 12
temperature_sensor = "climate"
comfort_interval = 1
"""


def zone_modes(sub: Subscriber) -> list[tuple[str, str]]:
    return [(e["state"], e["reason"]) for e in payloads(sub, "events")
            if e["subject"] == "chamber" and e["kind"] != "config"]  # fmt: skip


def test_a_pushed_config_changing_only_room_sessions_or_energy_is_applied(
    tmp_path: Path, broker: Broker, agent_process: Callable[[str], AgentProcess]
) -> None:
    # The blind's relay draws 36 kW here, so its energy (and the CO2e of it) grows fast.
    room = Room(tmp_path, broker, agent_process, remote=ROOM)
    try:
        room.text = room.text.replace('name = "up"\n', 'name = "up"\nrated_power_w = 36000\n')
        reply = room.push(room.text, "c0")
        assert reply["ok"] and reply["result"]["changed"] == ["control"], reply
        # Only [[sessions]]: a session 30 minutes ahead is inside the 60 minutes' preheat, so
        # the zone goes to comfort for it.
        start = time.time() + 1800
        begin, end = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (start, start + 3600)
        )
        sessions = textwrap.dedent(f"""
            [[sessions]]
            start = "{begin}"
            end = "{end}"
            title = "Council"
        """)
        before = len(zone_modes(room.sub))
        reply = room.push(room.text + sessions, "c1")
        assert reply["ok"] and reply["reason"] == "applied", reply
        assert reply["result"]["changed"] == ["sessions"]

        def for_the_session() -> bool:
            return any(m == "comfort" and "session calendar" in r
                       for m, r in zone_modes(room.sub)[before:])  # fmt: skip

        assert wait(for_the_session), zone_modes(room.sub)
        # Only [room]: the CO2 reference the comfort categories are judged above.
        text = room.text + sessions
        reply = room.push(text.replace("seats = 12", "seats = 12\noutdoor_co2 = 500"), "c2")
        assert reply["ok"] and reply["result"]["changed"] == ["room"], reply
        assert wait(lambda: payloads(room.sub, "comfort")[-1]["co2"]["outdoor"] == 500), (
            payloads(room.sub, "comfort")[-1])  # fmt: skip
        # The session in the calendar stayed: the zone is still in comfort for it.
        assert zone_modes(room.sub)[-1][0] == "comfort"
        # Only [energy]: 100 g CO2e per kWh, so co2e_kg = total_kwh / 10 from then on.
        assert room.central.send("relay/up", "ON")["ok"]  # type: ignore[index]
        text = text.replace("seats = 12", "seats = 12\noutdoor_co2 = 500")
        reply = room.push(text + "\n[energy]\ngrid_factor = 100\n", "c3")
        assert reply["ok"] and reply["result"]["changed"] == ["energy"], reply
        seen = len(room.sub.on(f"{BASE}/energy"))

        def tenth() -> bool:
            later = payloads(room.sub, "energy")[seen:]
            return any(e["total_kwh"] > 0.01 and e["co2e_kg"] == pytest.approx(
                e["total_kwh"] / 10, abs=1e-4) for e in later)  # fmt: skip

        assert wait(tenth, 20), payloads(room.sub, "energy")[-3:]
    finally:
        room.close()

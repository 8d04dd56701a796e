"""The council chamber with no GPIO at all (what the hardened unit had without a pin library):
the agent runs, says READY, its relays and inputs are unavailable with the reason on the events
topic and their retained states, and every sensor still reaches the broker."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from agent.app.runtime import Agent
from agent.app.systemd import Notifier
from agent.config import schema as config_mod
from agent.pi.pins import NoPins
from agent.sensing.bus_choice import Hardware
from tests.mqtt_fixtures import Broker, Subscriber

REPO = Path(__file__).resolve().parents[1]
WHY = "lgpio (the default): can not open gpiochip: /dev/gpiochip0"


def council_chamber(tmp_path: Path, port: int) -> Path:
    text = (REPO / "firmware_configs/council-chamber.toml").read_text()
    text = text.replace('host = "mqtt.example.org"', f'host = "127.0.0.1"\nport = {port}')
    # Simulated chips, a buffer here, and a clock taken as set (no NTP in a test).
    node = f'simulate = true\nclock = "synced"\nstate_dir = "{tmp_path}/state"'
    text = text.replace('id = "council-chamber"', f'id = "council-chamber"\n{node}')
    path = tmp_path / "council-chamber.toml"
    path.write_text(text)
    return path


def test_council_chamber_without_gpio_runs_with_its_gpio_unavailable(
    tmp_path: Path, broker: Broker
) -> None:
    cfg = config_mod.load(council_chamber(tmp_path, broker.port))
    gpio = {r.name for r in cfg.control.relays} | {i.name for i in cfg.control.inputs}
    assert len(gpio) == 13  # 8 relays, 5 inputs (the profile's wiring table)
    sensors = {d.name for d in cfg.devices}
    base = cfg.node.base_topic
    sub = Subscriber(broker.port, f"{base}/#")
    ready = threading.Event()

    class Recorder(Notifier):
        def notify(self, **fields: str) -> None:
            if fields.get("READY") == "1":
                ready.set()

    hardware = Hardware(cfg.devices, simulate=True, pin_factory=NoPins(WHY))
    agent = Agent(cfg, notifier=Recorder({}), hardware=hardware)
    loop = asyncio.new_event_loop()
    stops: list[asyncio.Event] = []

    async def run() -> None:
        # Made on the agent's loop: on 3.9 an Event binds to the loop current where it is made.
        stops.append(asyncio.Event())
        await agent.run(stops[0])

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),))
    thread.start()
    try:

        def unavailable(msgs: list) -> set[str]:
            events = [json.loads(m.payload) for m in msgs if m.topic == f"{base}/events"]
            return {
                e["subject"] for e in events if e["state"] == "unavailable" and WHY in e["reason"]
            }

        def states(msgs: list) -> set[str]:
            return {m.topic.rsplit("/", 1)[1] for m in msgs if m.topic.startswith(f"{base}/state/")}

        assert sub.wait_for(lambda m: unavailable(m) == gpio, timeout=60), unavailable(sub.messages)
        # The SGP40's VOC index needs the gas index algorithm's warm-up first (Sensirion's
        # application note: 45 samples at 1 s) before a state is published; it is up all the same.
        publishing = sensors - {"voc"}
        assert sub.wait_for(lambda m: publishing <= states(m), timeout=60), states(sub.messages)
        assert [r.config.name for r in agent.runners if not r.available] == []
        # READY=1 once every device was tried, the slowest first read included.
        assert ready.wait(60)
        inputs = [m for m in sub.messages if m.topic == f"{base}/input/pir-floor"]
        assert inputs and json.loads(inputs[-1].payload)["state"] == "unavailable"
    finally:
        loop.call_soon_threadsafe(lambda: [stop.set() for stop in stops])
        thread.join(30)
        sub.close()
    assert not thread.is_alive()

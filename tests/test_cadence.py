"""Each device's achieved cadence (issue 15): the median of its recent intervals on its
retained state, a starved fixed-cadence device said so, slow devices in the status line and in
`roomagent doctor`; and a live config change that adds and drops devices on a running bus."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from agent.app.runtime import Agent
from agent.config import schema as config_mod
from agent.mqtt.contract import device_state_payload
from agent.sensing.bus_choice import Hardware
from agent.sensing.cadence import Cadence
from agent.tools.doctor_cadence import check_cadence
from agent.tools.doctor_checks import ServiceState
from tests.conftest import node_config
from tests.mqtt_fixtures import free_port
from tests.waiting import until


def test_the_achieved_interval_is_the_median_of_the_last_60() -> None:
    cadence = Cadence(1.0, fixed=True)
    assert cadence.achieved() is None
    t = 0.0
    for gap in [1.0] * 40 + [3.0] * 19:  # a burst of slow samples, fewer than half the window
        t += gap
        cadence.sampled(t)
    assert cadence.achieved() == 1.0 and cadence.problem() is None
    for _ in range(20):  # now most of the last 60 intervals are 3 s
        t += 3.0
        cadence.sampled(t)
    assert cadence.achieved() == 3.0
    assert "sampled every 3.00 s, its algorithm needs 1 s" in (cadence.problem() or "")
    # A device without a fixed-cadence algorithm is slow, not wrong: no problem, but off.
    plain = Cadence(1.0)
    for i in range(10):
        plain.sampled(i * 1.06)
    assert plain.problem() is None and plain.off() is not None


def test_within_5_percent_is_on_cadence() -> None:
    cadence = Cadence(10.0, fixed=True)
    for i in range(10):
        cadence.sampled(i * 10.4)
    assert cadence.off() is None and cadence.problem() is None


def test_the_state_carries_sample_interval_and_the_cadence_problem() -> None:
    body = json.loads(device_state_payload(0.0, True, {"voc_index": 100.0}, sample_interval=1.0))
    assert body["sample_interval"] == 1.0 and "cadence" not in body
    body = json.loads(device_state_payload(0.0, True, {}, sample_interval=2.5, cadence="late"))
    assert body["cadence"] == "late"
    assert "sample_interval" not in json.loads(device_state_payload(None, False, {}, "gone"))


def test_the_doctor_reads_slow_devices_from_the_agent_s_status() -> None:
    ok = check_cadence(ServiceState(True, "loaded", "active", "running",
                                    "connected; backlog 0; devices 3/3 up"))  # fmt: skip
    assert ok is not None and ok.ok is True
    slow = check_cadence(ServiceState(True, "loaded", "active", "running",
                                      "connected; backlog 0; devices 3/3 up; slow: voc 4.97 s "
                                      "for 1 s"))  # fmt: skip
    assert slow is not None and slow.ok is False and "voc 4.97 s for 1 s" in slow.detail
    assert slow.fix
    assert check_cadence(ServiceState(True, "loaded", "inactive", "dead")) is None


CHAMBER_BUS = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 2
[[devices]]
name = "co2"
driver = "scd4x"
interval = 5
[[devices]]
name = "voc"
driver = "sgp40"
interval = 1
compensate_from = "climate"
"""


def test_a_running_agent_publishes_each_device_s_sample_interval(tmp_path: Path) -> None:
    # The council chamber's slow chips on one simulated bus, in the real agent (no broker: the
    # retained states are kept to publish on connect, which is what is read here).
    path = tmp_path / "node.toml"
    path.write_text(node_config(free_port(), tmp_path / "state", devices=CHAMBER_BUS))
    cfg = config_mod.load(path)
    agent = Agent(cfg, simulate=True, hardware=Hardware(cfg.devices, simulate=True))
    states: dict[str, dict[str, object]] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.ensure_future(agent.run(stop))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            for name in ("climate", "co2", "voc"):
                raw = agent._states.get(name)
                if raw:
                    states[name] = json.loads(raw)
            if all(states.get(n, {}).get("sample_interval") for n in ("climate", "co2")) and any(
                r.config.name == "voc" and len(r.cadence._times) > 6 for r in agent.runners
            ):
                break
        voc = next(r for r in agent.runners if r.config.name == "voc")
        states["voc-runner"] = {"sample_interval": voc.sample_interval()}
        stop.set()
        await run

    asyncio.run(scenario())
    # The SCD4x's 5 s reads, polling data-ready, did not hold the SGP40 off its 1 s.
    assert abs(states["voc-runner"]["sample_interval"] - 1.0) <= 0.05  # type: ignore[operator]
    assert abs(states["climate"]["sample_interval"] - 2.0) <= 0.1  # type: ignore[operator]
    assert abs(states["co2"]["sample_interval"] - 5.0) <= 0.25  # type: ignore[operator]


def test_a_live_config_change_adds_and_drops_devices_on_the_running_bus(tmp_path: Path) -> None:
    before = """
[[devices]]
name = "climate"
driver = "bme280"
interval = 2
[[devices]]
name = "co2"
driver = "scd4x"
interval = 5
"""
    after = (
        before.split('[[devices]]\nname = "co2"')[0]
        + """
[[devices]]
name = "voc"
driver = "sgp40"
interval = 1
"""
    )
    path = tmp_path / "node.toml"
    port = free_port()
    path.write_text(node_config(port, tmp_path / "state", devices=before))
    cfg = config_mod.load(path)
    agent = Agent(cfg, simulate=True, hardware=Hardware(cfg.devices, simulate=True))
    seen: dict[str, object] = {}

    def runner(name: str) -> object:
        return next((r for r in agent.runners if r.config.name == name), None)

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.ensure_future(agent.run(stop))
        await until(lambda: "co2" in agent._states and "climate" in agent._states, 30)
        bus = agent.buses.of(cfg.devices[0])
        seen["jobs before"] = sorted(j.name for j in bus.jobs)
        climate = runner("climate")
        agent.hardware.bus(1).log.clear()  # the SCD4x's open() sent a stop too: not that one
        path.write_text(node_config(port, tmp_path / "state", devices=after))
        agent.reconfigurer.apply(config_mod.load(path), "test")
        await until(lambda: runner("voc") is not None and runner("voc").sample_interval(), 20)  # type: ignore[union-attr]
        await until(lambda: len(runner("voc").cadence._times) > 6, 20)  # type: ignore[union-attr]
        seen["jobs after"] = sorted(j.name for j in bus.jobs if not j.name.endswith(".close"))
        seen["climate kept"] = runner("climate") is climate
        seen["voc"] = runner("voc").sample_interval()  # type: ignore[union-attr]
        seen["climate"] = runner("climate").sample_interval()  # type: ignore[union-attr]
        seen["co2 state"] = "co2" in agent._states
        sim = agent.hardware.bus(1)
        seen["co2 stopped"] = any(
            t.address == 0x62 and t.kind == "write" and t.data[:2] == b"\x3f\x86" for t in sim.log
        )
        stop.set()
        await run

    asyncio.run(scenario())
    assert seen["jobs before"] == ["climate", "co2"]
    assert seen["jobs after"] == ["climate", "voc"]
    assert seen["climate kept"] is True and seen["co2 state"] is False
    assert seen["co2 stopped"] is True  # its driver was closed: stop_periodic_measurement sent
    assert abs(seen["voc"] - 1.0) <= 0.05  # type: ignore[operator]
    assert abs(seen["climate"] - 2.0) <= 0.1  # type: ignore[operator]

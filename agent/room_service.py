"""The agent's side of [room]: runs a RoomMonitor beside the control loop and publishes it.

- `<base>/comfort` (retained): the live EN 16798-1 category of each quantity, an overall one,
  and today's shares of occupied time per category;
- `<base>/occupancy` (retained): the headcount estimate with its uncertainty;
- `<base>/sessions` (through the durable buffer): one report per ended session.
The calendar's edges put the zones in comfort (from preheat before a session to its end) or eco;
a command in between holds until the next edge. A calendar URL or file is read off the event
loop every calendar_poll_minutes. Home Assistant components: discovery_components().
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any, Optional

from agent.contract import json_payload
from agent.control.types import Event
from agent.room_monitor import Output, RoomMonitor
from agent.sessions import CalendarError

if TYPE_CHECKING:
    from agent.runtime import Agent

log = logging.getLogger(__name__)
TICK = 5.0  # s between looks at the room


def topic(base: str, what: str) -> str:
    return f"{base}/{what}"


class RoomService:
    def __init__(self, agent: Agent) -> None:
        from agent.state_store import StateStore

        config = agent.config
        assert config.room is not None
        self.agent = agent
        state_dir = config.node.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.monitor = RoomMonitor(config.room, config.sessions, state_dir,
                                   StateStore(state_dir / "sessions.json"),
                                   config.control.timezone)  # fmt: skip
        self.stopped = False
        if agent.simulate and agent.hardware.room is not None:
            self._close_the_loop()

    def _close_the_loop(self) -> None:
        """--simulate: the simulated room becomes the closed-loop model of this [room], its
        relays feeding back (the fan comes on, CO2 falls) and a demo calendar in it."""
        from drivers.sim.closed_loop import ClosedLoopRoom, demo_sessions
        from drivers.sim.room_profiles import scaled_profile

        agent, c = self.agent, self.agent.config.room
        profile = scaled_profile(c.volume_m3, c.seats, c.stage_airflow_m3h, c.infiltration_ach)

        def relays() -> list[tuple[str, float, bool]]:
            room = agent.room
            if room is None:
                return []
            return [(r.kind, r.rated_power_w, bool(room.relays.state(r.name)))
                    for r in agent.config.control.relays]  # fmt: skip

        now = agent.clock.time()
        people = max(1, profile.seats * 2 // 3)
        agent.hardware.room.closed_loop = ClosedLoopRoom(
            profile, clock=agent.clock.time, sessions=demo_sessions(now, people=people),
            relays=relays,
        )  # fmt: skip

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = 0.0
        while not self.stopped:
            try:
                now = self.agent.clock.time()
                if self.monitor.config.calendar and now >= next_poll:
                    next_poll = now + self.monitor.config.calendar_poll_minutes * 60
                    await loop.run_in_executor(None, functools.partial(self._fetch, now))
                await self._tick()
            except Exception:
                log.exception("room monitor failed this round; carrying on")
            await asyncio.sleep(TICK)

    def _fetch(self, now: float) -> None:
        try:
            n = self.monitor.fetch_calendar(now)
            log.info("calendar %s: %d sessions", self.monitor.config.calendar, n)
        except CalendarError as e:
            log.warning("%s (keeping the sessions read before)", e)

    def _zone_presence(self, seen: Optional[bool]) -> Optional[bool]:
        """Before a session (its preheat) an empty room is expected: not a reason to set back."""
        now = self.agent.clock.time()
        calendar, preheat = self.monitor.calendar, self.monitor.config.preheat_minutes * 60
        if calendar.current(now) is None and calendar.wants_comfort(now, preheat):
            return None
        analytics = getattr(self.agent, "analytics", None)
        if analytics is not None and any(z.planner.warming(now) for z in analytics.zones.values()):
            return None  # an optimum start's warm-up, longer than preheat_minutes
        return seen

    async def _tick(self) -> None:
        agent, c = self.agent, self.monitor.config
        room = agent.room
        if room is not None:
            room.zone_presence = self._zone_presence
        present = room.occupied() if room is not None else None
        stage = 0
        if room is not None and c.ventilation in room.ventilation:
            stage = room.ventilation[c.ventilation].stage
        # kWh counter: the room's meters where it has them ([[modbus]]), else the relays'.
        guard = getattr(agent, "energy_guard", None)
        if guard is not None:
            energy: Optional[float] = sum(guard.totals().values())
        else:
            energy = sum(room.energy_kwh().values()) if room is not None else None
        out = self.monitor.tick(agent.clock.time(), agent.clock.monotonic(), self._reading,
                                present, stage, energy)  # fmt: skip
        self._optimum_start()
        await self._publish(out)

    def _optimum_start(self) -> None:
        """[room.optimum_start]: each learning zone's comfort begins at its own decision."""
        agent = self.agent
        analytics, room = getattr(agent, "analytics", None), agent.room
        if analytics is None or not analytics.zones or room is None:
            return
        now = agent.clock.time()
        calendar = self.monitor.calendar
        current = calendar.current(now)
        upcoming = calendar.next_after(now)
        c = self.monitor.config
        outdoor = self._reading(c.outdoor_temperature_sensor, "temperature") if (
            c.outdoor_temperature_sensor) else None  # fmt: skip
        zones = {
            name: (zone.config.comfort, room.zone_temperature(name),
                   [bool(room.relays.state(r)) for r in zone.config.heat_stages])
            for name, zone in room.zones.items()
        }  # fmt: skip
        for name, mode, decision in analytics.plan(
            now, (current.start, current.end) if current else None,
            upcoming.start if upcoming else None, zones,
            outdoor[0] if outdoor is not None else None,
        ):  # fmt: skip
            if decision is not None:
                # An early stop, or its taking back (state "resumed"), is an optimum_stop.
                kind = "optimum_start" if decision.action == "start" else "optimum_stop"
                state = "resumed" if decision.action == "resume" else decision.source
                agent.emit(Event(kind, name, state, decision.reason, now))
            reason = decision.reason if decision is not None else "session calendar"
            for event in room.zones[name].set_mode(mode, reason):
                agent.emit(event)

    def _reading(self, device: str, quantity: str) -> Optional[tuple[float, float]]:
        runner = next((r for r in self.agent.runners if r.config.name == device), None)
        if runner is None and self.agent.ble is not None:
            reading: Optional[tuple[float, float]] = self.agent.ble.reading(device, quantity)
            return reading
        if runner is None or quantity not in runner.last_values:
            return None
        return runner.last_values[quantity], runner.last_good

    async def _publish(self, out: Output) -> None:
        agent = self.agent
        base = agent.topics.base
        if out.zone_mode is not None and agent.room is not None:
            analytics = getattr(agent, "analytics", None)
            learning = analytics.zones if analytics is not None else {}
            for name, zone in agent.room.zones.items():
                if name in learning:
                    continue  # its comfort begins at the optimum start's decision
                for event in zone.set_mode(out.zone_mode, "session calendar"):
                    agent.emit(event)
        if out.comfort is not None:
            agent._retain(topic(base, "comfort"), json_payload(out.comfort))
        if out.occupancy is not None:
            agent._retain(topic(base, "occupancy"), json_payload(out.occupancy))
        for end, report in out.reports:
            body = report

            def make(seq: int, body: dict[str, Any] = body) -> bytes:
                return json_payload({**body, "seq": seq})

            assert agent.outbox is not None and agent.forwarder is not None
            # In the durable buffer first, then marked reported: twice rather than never.
            await agent.run_db(agent.outbox.append, topic(base, "sessions"), make, None)
            agent.forwarder.notify()
            self.monitor.recorder.reported(end)

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        """cmd/sessions {"sessions": [...]}: replaces the sessions pushed before."""
        n = self.monitor.push_sessions(body.get("sessions"))
        return {"reason": f"{n} sessions", "sessions": n}

    def close(self) -> None:
        self.stopped = True
        self.monitor.close()


def discovery_components(config: Any, base: str) -> dict[str, dict[str, Any]]:
    """Home Assistant sensors for the room: the overall category and each quantity's, the
    headcount with its uncertainty as an attribute."""
    if config.room is None:
        return {}
    comfort, occupancy = topic(base, "comfort"), topic(base, "occupancy")
    out: dict[str, dict[str, Any]] = {
        "comfort_category": {"p": "sensor", "name": "comfort category",
                             "stat_t": comfort, "val_tpl": "{{ value_json['category'] }}",
                             "json_attr_t": comfort, "ic": "mdi:sofa"},
        "comfort_temperature_category": {"p": "sensor", "name": "thermal comfort category",
                                         "stat_t": comfort, "ic": "mdi:thermometer-check",
                                         "val_tpl": "{{ value_json['operative_temperature']"
                                                    "['category'] }}"},
        "comfort_co2_category": {"p": "sensor", "name": "air quality category",
                                 "stat_t": comfort, "ic": "mdi:molecule-co2",
                                 "val_tpl": "{{ value_json['co2']['category'] }}"},
        "occupancy_people": {"p": "sensor", "name": "people (estimate)", "stat_t": occupancy,
                             "val_tpl": "{{ value_json['people'] }}", "unit_of_meas": "people",
                             "stat_cla": "measurement", "json_attr_t": occupancy,
                             "ic": "mdi:account-group"},
    }  # fmt: skip
    return out

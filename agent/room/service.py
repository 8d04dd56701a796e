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

from agent.common.events import Event
from agent.config.sessions import CalendarError
from agent.mqtt.contract import json_payload
from agent.room.monitor import Output, RoomMonitor

if TYPE_CHECKING:
    from agent.node.ports import NodeParts, RoomPorts
    from agent.sensing.bus_choice import Hardware

log = logging.getLogger(__name__)
TICK = 5.0  # s between looks at the room


def topic(base: str, what: str) -> str:
    return f"{base}/{what}"


class RoomService:
    def __init__(self, node: RoomPorts, hardware: Optional[Hardware] = None) -> None:
        """`hardware`: the simulated one (--simulate), whose room becomes this [room]'s model."""
        from agent.common.state_store import StateStore

        config = node.parts().config
        assert config.room is not None
        self.node = node
        state_dir = config.node.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.monitor = RoomMonitor(config.room, config.sessions, state_dir,
                                   StateStore(state_dir / "sessions.json"),
                                   config.control.timezone)  # fmt: skip
        self.stopped = False
        if hardware is not None and hardware.room is not None:
            self._close_the_loop(hardware)

    def _close_the_loop(self, hardware: Hardware) -> None:
        """--simulate: the simulated room becomes the closed-loop model of this [room], its
        relays feeding back (the fan comes on, CO2 falls) and a demo calendar in it."""
        from drivers.sim.closed_loop import ClosedLoopRoom, demo_sessions
        from drivers.sim.room_profiles import scaled_profile

        node, c = self.node, self.node.parts().config.room
        assert c is not None
        profile = scaled_profile(c.volume_m3, c.seats, c.stage_airflow_m3h, c.infiltration_ach)

        def relays() -> list[tuple[str, float, bool]]:
            parts = node.parts()
            room = parts.room
            if room is None:
                return []
            return [(r.kind, r.rated_power_w, bool(room.relays.state(r.name)))
                    for r in parts.config.control.relays]  # fmt: skip

        now = node.clock.time()
        people = max(1, profile.seats * 2 // 3)
        assert hardware.room is not None
        hardware.room.closed_loop = ClosedLoopRoom(
            profile, clock=node.clock.time, sessions=demo_sessions(now, people=people),
            relays=relays,
        )  # fmt: skip

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = 0.0
        while not self.stopped:
            try:
                now = self.node.clock.time()
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
        now = self.node.clock.time()
        calendar, preheat = self.monitor.calendar, self.monitor.config.preheat_minutes * 60
        if calendar.current(now) is None and calendar.wants_comfort(now, preheat):
            return None
        analytics = self.node.parts().analytics
        if analytics is not None and any(z.planner.warming(now) for z in analytics.zones.values()):
            return None  # an optimum start's warm-up, longer than preheat_minutes
        return seen

    async def _tick(self) -> None:
        node, c = self.node, self.monitor.config
        parts = node.parts()  # one look at the node for this round
        room = parts.room
        if room is not None:
            room.zone_presence = self._zone_presence
        present = room.occupied() if room is not None else None
        stage = 0
        if room is not None and c.ventilation in room.ventilation:
            stage = room.ventilation[c.ventilation].stage
        # kWh counter: the room's meters where it has them ([[modbus]]), else the relays'.
        totals = node.energy_totals()
        if totals is not None:
            energy: Optional[float] = sum(totals.values())
        else:
            energy = sum(room.energy_kwh().values()) if room is not None else None
        out = self.monitor.tick(node.clock.time(), node.clock.monotonic(), parts.reading,
                                present, stage, energy)  # fmt: skip
        self._optimum_start(parts)
        await self._publish(parts, out)

    def _optimum_start(self, parts: NodeParts) -> None:
        """[room.optimum_start]: each learning zone's comfort begins at its own decision."""
        node = self.node
        analytics, room = parts.analytics, parts.room
        if analytics is None or not analytics.zones or room is None:
            return
        now = node.clock.time()
        calendar = self.monitor.calendar
        current = calendar.current(now)
        upcoming = calendar.next_after(now)
        c = self.monitor.config
        outdoor = parts.reading(c.outdoor_temperature_sensor, "temperature") if (
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
                node.emit(Event(kind, name, state, decision.reason, now))
            reason = decision.reason if decision is not None else "session calendar"
            for event in room.zones[name].set_mode(mode, reason):
                node.emit(event)

    async def _publish(self, parts: NodeParts, out: Output) -> None:
        node = self.node
        base = node.base_topic
        if out.zone_mode is not None and parts.room is not None:
            analytics = parts.analytics
            learning = analytics.zones if analytics is not None else {}
            for name, zone in parts.room.zones.items():
                if name in learning:
                    continue  # its comfort begins at the optimum start's decision
                for event in zone.set_mode(out.zone_mode, "session calendar"):
                    node.emit(event)
        if out.comfort is not None:
            node.retain(topic(base, "comfort"), json_payload(out.comfort))
        if out.occupancy is not None:
            node.retain(topic(base, "occupancy"), json_payload(out.occupancy))
        for end, report in out.reports:
            body = report

            def make(seq: int, body: dict[str, Any] = body) -> bytes:
                return json_payload({**body, "seq": seq})

            # In the durable buffer first, then marked reported: twice rather than never.
            await node.append(topic(base, "sessions"), make)
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

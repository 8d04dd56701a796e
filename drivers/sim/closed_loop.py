"""A closed-loop simulated room: the physics of room_physics driven by a clock, a weather day,
people from a calendar and the room's own relays, seen by the simulated chips.

It has drivers.sim.room.RoomModel's face (environment(), occupied(), minutes_into_meeting()), so
the simulated chips, motion inputs and BLE badges work on it unchanged; unlike RoomModel, what
the relays do comes back: a heater warms the air, the fan brings CO2 down.

Time is whatever the clock says: the wall clock for --simulate (real time), or a virtual clock
a benchmark moves a month in seconds. Each environment() call first advances the physics to now.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from drivers.sim.environment import Environment
from drivers.sim.room_physics import Actuation, Outdoor, RoomPhysics, RoomState
from drivers.sim.room_profiles import PROFILES, WEATHER, RoomProfile, WeatherDay, relative_humidity

ARRIVAL = 10 * 60.0  # s over which people come in at the start of a session
DEPARTURE = 5 * 60.0  # s over which they leave at its end
MAX_ADVANCE = 60.0  # s per physics call: inputs (weather, people) are re-read at least this often


@dataclass(frozen=True)
class Attendance:
    """A session as the simulated room lives it: from start to end (epoch s), `people` in."""

    start: float
    end: float
    people: int
    breath: float = 1.0  # this audience's CO2 output against EN 16798-1's standard person


def headcount(sessions: Sequence[Attendance], t: float) -> float:
    """How many people are in at t: arriving linearly over ARRIVAL, leaving over DEPARTURE."""
    return _present(sessions, t)[0]


def _present(sessions: Sequence[Attendance], t: float) -> tuple[float, float]:
    """(people, their mean CO2 output against the standard person) at t."""
    total = breath = 0.0
    for s in sessions:
        if s.start <= t < s.end:
            length = s.end - s.start
            rise = min(1.0, (t - s.start) / min(ARRIVAL, length / 2))
            fall = min(1.0, (s.end - t) / min(DEPARTURE, length / 2))
            total += s.people * min(rise, fall)
            breath += s.people * min(rise, fall) * s.breath
    return total, (breath / total if total else 1.0)


def actuation_of(
    relays: Iterable[tuple[str, float, bool]], profile: RoomProfile, heating_cop: float = 1.0
) -> Actuation:
    """What a set of relays (kind, rated electric W, on) does to the room. Heating delivers its
    rated power (resistive, COP 1 unless told); cooling removes rated × the profile's COP. Fan
    and ventilation relays are the stages in their order (low, high: a two-speed fan has one
    relay per speed, and the ventilation control switches only one on): the stage is that of
    the highest one on."""
    heat = cool = electric = lights_w = 0.0
    stages, fans, lights = 0, 0, False
    for kind, rated, on in relays:
        if kind in ("fan", "ventilation"):
            fans += 1
        if not on:
            continue
        if kind == "light":
            lights, lights_w = True, lights_w + rated
            continue
        electric += rated
        if kind == "heat":
            heat += rated * heating_cop
        elif kind == "cool":
            cool += rated * profile.cooling_cop
        elif kind in ("fan", "ventilation"):
            stages = fans
    return Actuation(heat, cool, electric, stages, lights, lights_w)


def demo_sessions(start: float, days: int = 7, people: int = 10) -> list[Attendance]:
    """--simulate's calendar: a six-minute meeting every ten minutes, so a demo shows the room
    react within minutes (motion, lights, CO2 rising, the fan coming on and CO2 falling)."""
    first = start - start % 600.0
    return [Attendance(first + i * 600.0, first + i * 600.0 + 360.0, people)
            for i in range(days * 144)]  # fmt: skip


class ClosedLoopRoom:
    def __init__(
        self,
        profile: RoomProfile = PROFILES["meeting"],
        *,
        clock: Callable[[], float] = time.time,
        sessions: Sequence[Attendance] = (),
        weather: Callable[[float], WeatherDay] = lambda t: WEATHER["winter"],
        relays: Callable[[], Iterable[tuple[str, float, bool]]] = lambda: (),
        utc_offset_h: float = 0.0,
        seed: int = 0,
        state: Optional[RoomState] = None,
    ) -> None:
        self.profile, self.clock, self.weather = profile, clock, weather
        self.sessions = list(sessions)
        self.relays = relays
        self.utc_offset_h = utc_offset_h
        self.rng = random.Random(seed)
        self.physics = RoomPhysics(profile, state)
        self.t = clock()
        self._act = Actuation()

    # --- driving ------------------------------------------------------------------------------

    def outdoor(self, t: float) -> Outdoor:
        day = self.weather(t)
        hour = (t / 3600.0 + self.utc_offset_h) % 24
        return Outdoor(day.outdoor_temperature(hour), day.solar(hour), day.outdoor_rh)

    def people(self, t: float) -> float:
        return headcount(self.sessions, t)

    def advance_to(self, t: float) -> None:
        """Moves the physics to t, re-reading relays, people and weather at least once a
        minute of room time."""
        self._act = actuation_of(self.relays(), self.profile)
        while self.t < t:
            dt = min(MAX_ADVANCE, t - self.t)
            people, breath = _present(self.sessions, self.t)
            self.physics.step(dt, people, self._act, self.outdoor(self.t + dt), breath)
            self.t += dt

    # --- RoomModel's face ---------------------------------------------------------------------

    def minutes_into_meeting(self) -> Optional[float]:
        now = self.clock()
        for s in self.sessions:
            if s.start <= now < s.end:
                return (now - s.start) / 60.0
        return None

    def occupied(self) -> bool:
        return self.people(self.clock()) > 0

    def environment(self) -> Environment:
        now = self.clock()
        self.advance_to(now)
        s, out, g = self.physics.state, self.outdoor(now), self.rng.gauss
        occupied = self.people(now) > 0
        daylight = out.solar_w_m2 * 110.0 * self.profile.daylight_factor  # lm/W of sunlight
        lux = daylight + (self.profile.light_lux if self._act.lights_on else 0.0)
        pm1_0 = abs(3.0 + g(0, 0.5))
        pm2_5 = pm1_0 + abs(2.0 + (2.0 if occupied else 0.0) + g(0, 0.5))
        metered_w = self._act.electric_w + self._act.lights_w + self.profile.base_load_w
        return Environment(
            temperature=s.t_air + g(0, 0.02),
            humidity=relative_humidity(s.t_air, s.humidity_ratio),
            pressure=1013.0 + g(0, 0.05),
            co2=s.co2_ppm + g(0, 5),
            illuminance=max(0.0, lux + g(0, 3)),
            # More VOCs lower the SGP40's raw signal; an illustrative mapping, not a calibration.
            voc_raw=int(max(0.0, 30000.0 - 5.0 * s.tvoc_ug_m3 + g(0, 30))),
            pm1_0=pm1_0,
            pm2_5=pm2_5,
            pm10=pm2_5 + abs(2.0 + (3.0 if occupied else 0.0) + g(0, 0.5)),
            voltage=12.0 + g(0, 0.01),
            # Illustrative: the INA's shunt sees 1 A per kW the room draws (a current
            # transformer's scaled secondary), inside the chip's range.
            current=metered_w / 1000.0 + g(0, 0.001),
        )

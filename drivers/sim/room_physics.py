"""A room's physics in virtual time: two thermal nodes, CO2, VOCs and water vapour.

State advances with step(dt, ...) under inputs held constant over the step (what the relays
deliver, how many people are in, the weather at that instant). Heat uses backward Euler on the
two-node RC network, unconditionally stable for any step; CO2, VOCs and vapour are well-mixed
single zones solved exactly for a constant air change. A ledger counts every joule in and out,
so a test can check that heat in = stored + lost from what it sees of the room.

Network (parameters in drivers/sim/room_profiles.py):

    outdoor ─ glazing + ventilation ─ AIR (C_air) ─ h_air_mass ─ MASS (C_mass) ─ opaque ─ outdoor
                heating, cooling, people, lights, base load ↗        solar ↗
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from drivers.sim.room_profiles import (
    MATERIALS_TVOC_UG_M2_S,
    OUTDOOR_CO2_PPM,
    PERSON_CO2_M3_S,
    PERSON_SENSIBLE_W,
    PERSON_TVOC_UG_S,
    PERSON_WATER_KG_S,
    RoomProfile,
    absolute_humidity,
)

AIR_DENSITY = 1.2  # kg/m³
MAX_STEP = 30.0  # s: heat is stable for any step; short ones keep the trajectory accurate


@dataclass(frozen=True)
class Actuation:
    """What the room's equipment does during a step."""

    heating_w: float = 0.0  # thermal power into the air
    cooling_w: float = 0.0  # thermal power taken out of the air
    electric_w: float = 0.0  # electric power of the switched equipment (what a meter sees)
    ventilation_stages: int = 0
    lights_on: bool = False
    lights_w: float = 0.0  # electric, ends up as heat in the air


@dataclass(frozen=True)
class Outdoor:
    temperature: float  # °C
    solar_w_m2: float  # on the glazing
    rh: float = 80.0
    co2_ppm: float = OUTDOOR_CO2_PPM


@dataclass
class Ledger:
    """Joules since the ledger was opened, by where they went."""

    heating_j: float = 0.0
    cooling_j: float = 0.0  # removed (positive number)
    people_j: float = 0.0
    internal_j: float = 0.0  # lights and base load
    solar_j: float = 0.0
    lost_j: float = 0.0  # to outdoors through glazing, air exchange and opaque envelope
    electric_j: float = 0.0  # metered: switched equipment, lights and base load

    @property
    def heat_in_j(self) -> float:
        return self.heating_j - self.cooling_j + self.people_j + self.internal_j + self.solar_j


@dataclass
class RoomState:
    t_air: float = 20.0
    t_mass: float = 20.0
    co2_ppm: float = OUTDOOR_CO2_PPM
    tvoc_ug_m3: float = 50.0
    humidity_ratio: float = 0.006  # kg/kg
    ledger: Ledger = field(default_factory=Ledger)


class RoomPhysics:
    def __init__(self, profile: RoomProfile, state: RoomState | None = None) -> None:
        self.profile = profile
        self.state = state if state is not None else RoomState()

    def stored_j(self) -> float:
        """Heat stored relative to 0 °C in both nodes (differences are what matter)."""
        return self.profile.c_air * self.state.t_air + self.profile.c_mass * self.state.t_mass

    def step(
        self, dt: float, people: float, act: Actuation, outdoor: Outdoor, breath: float = 1.0
    ) -> None:
        """Advances dt seconds (in sub-steps of at most MAX_STEP) with inputs held. `breath`
        scales the people's CO2 output against the standard person (people differ)."""
        steps = max(1, math.ceil(dt / MAX_STEP))
        for _ in range(steps):
            self._step(dt / steps, people, act, outdoor, breath)

    def _step(self, dt: float, people: float, act: Actuation, out: Outdoor, breath: float) -> None:
        p, s, ledger = self.profile, self.state, self.state.ledger
        flow = p.airflow_m3_s(act.ventilation_stages)
        h_out = p.glazing_w_k + AIR_DENSITY * 1005.0 * flow  # air node to outdoor
        h_am, h_op = p.h_air_mass, p.opaque_w_k
        internal = p.base_load_w + (act.lights_w if act.lights_on else 0.0)
        gains_air = act.heating_w - act.cooling_w + people * PERSON_SENSIBLE_W + internal
        gains_mass = out.solar_w_m2 * p.solar_aperture_m2
        # Backward Euler: solve the 2x2 system for the end-of-step temperatures.
        a11, a12 = p.c_air / dt + h_am + h_out, -h_am
        a21, a22 = -h_am, p.c_mass / dt + h_am + h_op
        b1 = p.c_air / dt * s.t_air + gains_air + h_out * out.temperature
        b2 = p.c_mass / dt * s.t_mass + gains_mass + h_op * out.temperature
        det = a11 * a22 - a12 * a21
        t_air = (b1 * a22 - a12 * b2) / det
        t_mass = (a11 * b2 - a21 * b1) / det
        ledger.heating_j += act.heating_w * dt
        ledger.cooling_j += act.cooling_w * dt
        ledger.people_j += people * PERSON_SENSIBLE_W * dt
        ledger.internal_j += internal * dt
        ledger.solar_j += gains_mass * dt
        ledger.lost_j += (
            h_out * (t_air - out.temperature) + h_op * (t_mass - out.temperature)
        ) * dt
        ledger.electric_j += (act.electric_w + internal) * dt
        s.t_air, s.t_mass = t_air, t_mass
        # Well-mixed zone, constant sources and air change over the step: exact exponential
        # approach to the steady state source/flow above outdoor.
        decay = math.exp(-flow * dt / p.volume_m3)
        co2_ss = out.co2_ppm + people * breath * PERSON_CO2_M3_S / flow * 1e6
        s.co2_ppm = co2_ss + (s.co2_ppm - co2_ss) * decay
        tvoc_source = people * PERSON_TVOC_UG_S + MATERIALS_TVOC_UG_M2_S * p.floor_m2
        tvoc_ss = tvoc_source / flow  # outdoor air taken as VOC-free
        s.tvoc_ug_m3 = tvoc_ss + (s.tvoc_ug_m3 - tvoc_ss) * decay
        w_out = absolute_humidity(out.temperature, out.rh)
        w_ss = w_out + people * PERSON_WATER_KG_S / (AIR_DENSITY * flow)
        s.humidity_ratio = w_ss + (s.humidity_ratio - w_ss) * decay

    def operative_temperature(self) -> float:
        """Mean of air and mean radiant temperature, the latter taken as the mass node's
        (surfaces follow the mass): EN ISO 7726's simple average for low air speeds."""
        return (self.state.t_air + self.state.t_mass) / 2.0

"""The facts a closed-loop room model runs on: a room's physical profile and a day's weather.

Every number here is a stated assumption with its source (docs/room.md lists them):

- Thermal model: the five-resistance, one-capacitance (5R1C) simplification of EN ISO 13790 /
  EN ISO 52016-1, reduced to two nodes (air, thermal mass). For a "medium" construction class
  the effective mass area is A_m = 2.5 A_f and the internal heat capacity C_m = 165 kJ/(m²K) A_f;
  the coupling of air to mass is h_ms A_m with h_ms = 9.1 W/(m²K) (EN ISO 13790, 12.2.2 and
  table 12). The air node carries the air and the light furniture: 5 × ρ c_p V is a common
  choice (TRNSYS's "capacitance multiplier" range 3-10).
- Air: ρ c_p = 1.2 kg/m³ × 1005 J/(kg K) = 1206 J/(m³K).
- People: a seated adult at 1.2 met gives about 75 W sensible heat to the room (ASHRAE
  Handbook Fundamentals 2021, ch. 18, table 1, "moderately active office work": 75 W sensible,
  55 W latent) and breathes out 20 L/h of CO2 (EN 16798-1:2019, annex B.2.2 / D, the value
  behind its CO2 categories; Persily & de Jonge 2017, Indoor Air 27:868, give ~0.005 L/s ≈
  18 L/h for adults at 1.2 met) and about 60 g/h of water vapour (an assumption below the
  ~80 g/h that 55 W latent at 2.45 kJ/g would give).
- Outdoor CO2: 420 ppm (NOAA global mean, 2024).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RHO_CP_AIR = 1206.0  # J/(m³K)
PERSON_SENSIBLE_W = 75.0
PERSON_CO2_M3_S = 20.0e-3 / 3600.0  # 20 L/h
PERSON_WATER_KG_S = 0.060 / 3600.0  # 60 g/h
PERSON_TVOC_UG_S = 2000.0 / 3600.0  # bioeffluents: an assumed 2 mg/h, illustrative only
MATERIALS_TVOC_UG_M2_S = 50.0 / 3600.0  # furnishings, per m² of floor: assumed, illustrative
OUTDOOR_CO2_PPM = 420.0
H_MS = 9.1  # W/(m²K), EN ISO 13790 12.2.2
MASS_AREA_PER_FLOOR = 2.5  # A_m / A_f, "medium" class, EN ISO 13790 table 12
MASS_CAPACITY_PER_FLOOR = 165_000.0  # J/(m²K) of floor, "medium" class


@dataclass(frozen=True)
class RoomProfile:
    """One room's physical facts. Loss coefficients are U·A sums: the glazing couples straight
    to the air, the opaque envelope to the mass (EN ISO 13790's H_tr,w and H_tr,em)."""

    name: str
    volume_m3: float
    floor_m2: float
    seats: int
    glazing_w_k: float  # U_w · A_w
    opaque_w_k: float  # Σ U · A of walls and roof to outside
    solar_aperture_m2: float  # g-value × frame factor × window area, for the irradiance below
    infiltration_ach: float  # air changes per hour with every fan off
    stage_airflow_m3h: tuple[float, ...]  # supply air with 1, 2, ... ventilation stages on
    base_load_w: float  # always-on electric load (network, AV standby), heat into the air
    light_lux: float  # what the room's lights add on the desk when on
    daylight_factor: float  # of outdoor horizontal illuminance reaching the desk
    furniture_factor: float = 5.0
    cooling_cop: float = 3.0  # heat removed per W of a cooling relay's rated electric power

    @property
    def c_air(self) -> float:
        return self.furniture_factor * RHO_CP_AIR * self.volume_m3

    @property
    def c_mass(self) -> float:
        return MASS_CAPACITY_PER_FLOOR * self.floor_m2

    @property
    def h_air_mass(self) -> float:
        return H_MS * MASS_AREA_PER_FLOOR * self.floor_m2

    def airflow_m3_s(self, stages_on: int) -> float:
        """Outdoor air through the room: infiltration plus the highest stage that is on."""
        flow = self.infiltration_ach * self.volume_m3 / 3600.0
        if stages_on > 0 and self.stage_airflow_m3h:
            flow += self.stage_airflow_m3h[min(stages_on, len(self.stage_airflow_m3h)) - 1] / 3600
        return flow


# The top stage's airflow follows EN 16798-1 category II for a low-polluting building, 7 L/s per
# person plus 0.7 L/(s m²): 60 seats on 100 m² → 490 L/s ≈ 1760 m³/h; 12 on 20 m² → 350 m³/h.
PROFILES: dict[str, RoomProfile] = {
    "chamber": RoomProfile(
        name="council chamber", volume_m3=400.0, floor_m2=100.0, seats=60,
        glazing_w_k=1.3 * 30.0, opaque_w_k=0.3 * 160.0, solar_aperture_m2=0.5 * 0.7 * 30.0,
        infiltration_ach=0.2, stage_airflow_m3h=(900.0, 1800.0), base_load_w=300.0,
        light_lux=500.0, daylight_factor=0.02,
    ),
    "meeting": RoomProfile(
        name="meeting room", volume_m3=60.0, floor_m2=20.0, seats=12,
        glazing_w_k=1.3 * 6.0, opaque_w_k=0.3 * 15.0, solar_aperture_m2=0.5 * 0.7 * 6.0,
        infiltration_ach=0.3, stage_airflow_m3h=(180.0, 360.0), base_load_w=60.0,
        light_lux=500.0, daylight_factor=0.02,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class WeatherDay:
    """A day's weather as a smooth curve: outdoor temperature with its minimum at 05:00 and
    maximum at 15:00, solar irradiance on the windows as a half-sine between sunrise and sunset,
    and the relative humidity outside."""

    name: str
    t_min: float  # °C
    t_max: float
    solar_peak_w_m2: float  # on the glazing's plane, at solar noon
    sunrise_h: float
    sunset_h: float
    outdoor_rh: float = 80.0

    def outdoor_temperature(self, hour: float) -> float:
        # Rising half-cosine from the 05:00 minimum to the 15:00 maximum, falling over 14 h.
        mean, amp = (self.t_max + self.t_min) / 2, (self.t_max - self.t_min) / 2
        since_min = (hour - 5.0) % 24
        if since_min <= 10.0:
            return mean - amp * math.cos(math.pi * since_min / 10.0)
        return mean + amp * math.cos(math.pi * (since_min - 10.0) / 14.0)

    def solar(self, hour: float) -> float:
        if not self.sunrise_h < hour % 24 < self.sunset_h:
            return 0.0
        x = (hour % 24 - self.sunrise_h) / (self.sunset_h - self.sunrise_h)
        return self.solar_peak_w_m2 * math.sin(math.pi * x)


# Typical days for central Europe (values in the range of DWD test reference years, TRY 2015,
# zone 4, for a south-facing facade); illustrative, not a design climate.
WEATHER: dict[str, WeatherDay] = {
    "winter": WeatherDay("winter", t_min=-3.0, t_max=4.0, solar_peak_w_m2=350.0,
                         sunrise_h=8.0, sunset_h=16.5, outdoor_rh=85.0),
    "spring": WeatherDay("spring", t_min=5.0, t_max=15.0, solar_peak_w_m2=500.0,
                         sunrise_h=6.5, sunset_h=19.5, outdoor_rh=70.0),
    "summer": WeatherDay("summer", t_min=16.0, t_max=30.0, solar_peak_w_m2=450.0,
                         sunrise_h=5.0, sunset_h=21.5, outdoor_rh=55.0),
}  # fmt: skip


def saturation_vapour_pressure(t: float) -> float:
    """hPa over water; Magnus formula with Alduchov & Eskridge (1996) constants."""
    return 6.1094 * math.exp(17.625 * t / (t + 243.04))


def absolute_humidity(t: float, rh: float, pressure_hpa: float = 1013.25) -> float:
    """kg of water per kg of dry air (humidity ratio) at t °C and rh %."""
    e = rh / 100.0 * saturation_vapour_pressure(t)
    return 0.622 * e / (pressure_hpa - e)


def relative_humidity(t: float, w: float, pressure_hpa: float = 1013.25) -> float:
    e = w * pressure_hpa / (0.622 + w)
    return max(0.0, min(100.0, 100.0 * e / saturation_vapour_pressure(t)))


def scaled_profile(
    volume_m3: float, seats: int, stage_airflow_m3h: tuple[float, ...], infiltration_ach: float
) -> RoomProfile:
    """A room of this volume shaped like the meeting room (3 m high, its envelope scaled by
    floor area): what --simulate runs for a config's [room] when nothing more is known."""
    base = PROFILES["meeting"]
    k = volume_m3 / base.volume_m3
    return RoomProfile(
        name=f"{volume_m3:g} m³ room", volume_m3=volume_m3, floor_m2=base.floor_m2 * k,
        seats=seats or max(1, round(base.seats * k)), glazing_w_k=base.glazing_w_k * k,
        opaque_w_k=base.opaque_w_k * k, solar_aperture_m2=base.solar_aperture_m2 * k,
        infiltration_ach=infiltration_ach,
        stage_airflow_m3h=stage_airflow_m3h or tuple(f * k for f in base.stage_airflow_m3h),
        base_load_w=base.base_load_w * k, light_lux=base.light_lux,
        daylight_factor=base.daylight_factor,
    )  # fmt: skip

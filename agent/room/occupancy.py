"""How many people are in the room: a headcount from the CO2 mass balance, fused with presence.

A well-mixed room of volume V with outdoor air Q (infiltration plus the ventilation stage that
is on) and N people each breathing out g of CO2 obeys

    V dC/dt = N g - Q (C - C_out)      →      N = (V dC/dt + Q (C - C_out)) / g

The estimator is a Kalman filter on CO2 and N, so sensor noise is weighed rather than
differentiated (a 400 m³ chamber gains only 50 ppm an hour per person); then presence decides
the edges: no motion and no badge for the room's vacancy time means 0 people, presence means at
least 1. The uncertainty (1σ) combines what limits the method, all stated assumptions:
people differ in their CO2 output (±15 % of g, the spread Persily & de Jonge 2017 give for
adults by body mass and activity), the configured airflow is known to ±10 % (a commissioning
measurement), and the filter's own variance from the sensor's noise.
It is an estimate for planning and ventilation, not a count: docs/comfort.md says when it fails
(doors and windows open, a room not well mixed, a sensor drifting).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

# How fast the headcount may change, as a random walk in people per √s, per seat. Between
# session edges an audience sits: the walk is slow (60 seats: 0.05, ≈ 0.3 people in 30 s), so
# the sensor's noise does not move the count. Near an edge (EDGE_WINDOW of a presence onset or
# of a calendar start or end) a room may fill or empty within EDGE_WINDOW, so the walk there is
# the arrival spread over that window: ARRIVAL_SPREAD of the seats 1σ after EDGE_WINDOW.
# On benchmarks/room's default month (seed 21), between-edge walks of 0.03, 0.05, 0.07 and 0.1
# per 60 seats gave MAE 1.61, 1.66, 1.70 and 1.78 people for sessions of up to 30; 0.05 ships,
# not the lowest: its sim has no one leaving mid-session, a real audience does (0.05 lets the
# count drift ≈ 3 people in an hour in 60 seats).
WALK_PER_SEAT = 0.05 / 60
ARRIVAL_SPREAD = 0.25  # of the seats, 1σ: how many may walk in when a room turns occupied
EDGE_WINDOW = 600.0  # s: a room fills in about ten minutes, whatever its size
EDGE_WALK_PER_SEAT = ARRIVAL_SPREAD / math.sqrt(EDGE_WINDOW)
# The session report's peak comes from a fixed-lag (Rauch-Tung-Striebel) smoother this far
# behind the live value: the peak of a noisy causal estimate overshoots (on benchmarks/room's
# month by ~6 people a session), the smoothed one, which has seen ten more minutes, by ~1.
SMOOTHING_LAG = 600.0  # s
PERSON_CO2_M3_S = 20.0e-3 / 3600.0  # EN 16798-1's standard person, 20 L/h
G_SPREAD = 0.15
AIRFLOW_SPREAD = 0.10
SENSOR_NOISE_PPM = 10.0  # 1σ of one reading, an SCD4x's repeatability order


@dataclass(frozen=True)
class Estimate:
    people: int  # the published headcount
    raw: float  # the mass balance's value before presence and rounding
    uncertainty: float  # 1σ, people
    method: str  # "co2", "co2+presence", "presence" (no CO2 fit yet), "none"

    def as_json(self) -> dict[str, object]:
        return {"people": self.people, "estimate": round(self.raw, 1),
                "uncertainty": round(self.uncertainty, 1), "method": self.method}  # fmt: skip


@dataclass(frozen=True)
class _Step:
    t: float
    f: Optional[tuple[tuple[float, float], tuple[float, float]]]
    x_pred: Optional[list[float]]
    p_pred: Optional[list[list[float]]]
    x: list[float]
    p: list[list[float]]
    present: Optional[bool]


class Co2Occupancy:
    """A Kalman filter on (CO2, people): CO2 follows the mass balance exactly between readings
    for the airflow of the moment; the headcount walks at random (people come and go), so the
    filter weighs each reading's news against the sensor's noise. Readings may come at any
    interval; a long gap only widens the uncertainty."""

    def __init__(
        self,
        volume_m3: float,
        seats: int,
        outdoor_co2: float = 420.0,
        person_co2_m3_s: float = PERSON_CO2_M3_S,
        noise_ppm: float = SENSOR_NOISE_PPM,
    ) -> None:
        self.volume, self.outdoor, self.g = volume_m3, outdoor_co2, person_co2_m3_s
        self.seats = max(1, seats)
        self.walk, self.noise = WALK_PER_SEAT * self.seats, noise_ppm
        self._present: Optional[bool] = None
        self._edge_until = -math.inf  # the walk is fast until then (a presence onset)
        self._t: Optional[float] = None
        self._q = 0.0
        self.x = [outdoor_co2, 0.0]  # ppm, people
        self.p = [[noise_ppm**2, 0.0], [0.0, 100.0]]
        self._updates = 0
        self._f: Optional[tuple[tuple[float, float], tuple[float, float]]] = None
        # (t, F into this step or None where the track restarts, predicted x and P, filtered x
        # and P, presence): the readings of the last SMOOTHING_LAG, for the smoother.
        self._steps: deque[_Step] = deque()

    def add(
        self,
        t: float,
        co2_ppm: float,
        airflow_m3_s: float,
        present: Optional[bool] = None,
        session_edge: bool = False,
    ) -> None:
        """A reading at t (s) with the outdoor air flowing through the room then (m³/s), and
        what presence says then: a room found occupied after being empty opens the headcount
        wide (anyone may be arriving) and lets it move fast for EDGE_WINDOW; one found empty
        pins it at 0. session_edge: the calendar has a session starting or ending within
        EDGE_WINDOW of t (SessionCalendar.near_edge), when people come and go."""
        if present and self._present is False:
            self.p[1][1] += (ARRIVAL_SPREAD * self.seats) ** 2
            self._edge_until = t + EDGE_WINDOW
        if present is False:
            self.x[1] = 0.0
            self.p[1][0] = self.p[0][1] = 0.0
            self.p[1][1] = min(self.p[1][1], 1.0)
        self._present = present
        f = xp = pp = None
        if self._t is None:
            self.x = [co2_ppm, max(0.0, airflow_m3_s * (co2_ppm - self.outdoor) * 1e-6 / self.g)]
        else:
            edge = session_edge or t < self._edge_until
            self._predict(max(0.0, t - self._t), self._q, EDGE_WALK_PER_SEAT if edge else None)
            f, xp, pp = self._f, list(self.x), [list(r) for r in self.p]
            self._correct(co2_ppm)
        if present is False:
            f = None  # pinned at 0: the smoother does not carry news across an empty room
        self._steps.append(_Step(t, f, xp, pp, list(self.x), [list(r) for r in self.p], present))
        while t - self._steps[0].t > SMOOTHING_LAG:
            self._steps.popleft()
        self._t, self._q = t, airflow_m3_s
        self._updates += 1

    def _predict(self, dt: float, q: float, walk_per_seat: Optional[float] = None) -> None:
        # x' = F x + u over dt with the airflow of the interval (the ventilation stage set at
        # the previous reading, held until this one): C decays toward outdoor + N g / Q.
        lam = q / self.volume
        a = math.exp(-lam * dt)
        b = (1 - a) * self.g * 1e6 / q if q > 0 else self.g * 1e6 / self.volume * dt
        c, n = self.x
        self.x = [a * c + (1 - a) * self.outdoor + b * n, n]
        f = self._f = ((a, b), (0.0, 1.0))
        fp = [[f[i][0] * self.p[0][j] + f[i][1] * self.p[1][j] for j in range(2)] for i in range(2)]
        self.p = [[fp[i][0] * f[j][0] + fp[i][1] * f[j][1] for j in range(2)] for i in range(2)]
        walk = self.walk if walk_per_seat is None else walk_per_seat * self.seats
        self.p[1][1] += walk**2 * dt

    def _correct(self, z: float) -> None:
        s = self.p[0][0] + self.noise**2
        k = (self.p[0][0] / s, self.p[1][0] / s)
        r = z - self.x[0]
        self.x = [self.x[0] + k[0] * r, self.x[1] + k[1] * r]
        p = self.p
        self.p = [
            [(1 - k[0]) * p[0][0], (1 - k[0]) * p[0][1]],
            [p[1][0] - k[1] * p[0][0], p[1][1] - k[1] * p[0][1]],
        ]

    def mass_balance(self) -> Optional[tuple[float, float]]:
        """(people, 1σ) from the filter; None until it has seen a few readings."""
        if self._updates < 3:
            return None
        people = self.x[1]
        sigma = math.sqrt(
            max(self.p[1][1], 0.0)
            + (G_SPREAD * max(people, 0.0)) ** 2
            + (AIRFLOW_SPREAD * max(people, 0.0)) ** 2
        )
        return people, sigma

    def lagged_people(self) -> Optional[int]:
        """The headcount SMOOTHING_LAG ago, smoothed with the readings since (fixed-lag
        Rauch-Tung-Striebel); None until the filter has run that long. For the session
        report's peak, not for the live value: it is ten minutes late."""
        steps = self._steps
        if self._updates < 3 or steps[-1].t - steps[0].t < SMOOTHING_LAG - 1.0:
            return None
        x = steps[-1].x
        for later, now in zip(reversed(steps), list(reversed(steps))[1:]):
            if later.f is None or later.x_pred is None or later.p_pred is None:
                x = now.x
                continue
            # C = P F' P_pred⁻¹ (2×2); x = x_now + C (x_later_smoothed − x_pred_later)
            f, pp, p = later.f, later.p_pred, now.p
            pf = [[p[i][0] * f[j][0] + p[i][1] * f[j][1] for j in range(2)] for i in range(2)]
            det = pp[0][0] * pp[1][1] - pp[0][1] * pp[1][0]
            if det <= 0.0:
                x = now.x
                continue
            inv = ((pp[1][1] / det, -pp[0][1] / det), (-pp[1][0] / det, pp[0][0] / det))
            c = [[pf[i][0] * inv[0][j] + pf[i][1] * inv[1][j] for j in range(2)] for i in range(2)]
            d = (x[0] - later.x_pred[0], x[1] - later.x_pred[1])
            x = [now.x[i] + c[i][0] * d[0] + c[i][1] * d[1] for i in range(2)]
        first = steps[0]
        if first.present is False:
            return 0
        people = max(0, round(x[1]))
        return max(1, people) if first.present else people

    def estimate(self, present: Optional[bool]) -> Estimate:
        """present: what motion inputs and BLE badges say (None: they do not know)."""
        balance = self.mass_balance()
        if balance is None:
            if present is None:
                return Estimate(0, 0.0, 0.0, "none")
            return Estimate(1 if present else 0, float(present), 0.0, "presence")
        raw, sigma = balance
        if present is False:
            return Estimate(0, raw, 0.0, "co2+presence")
        people = max(0, round(raw))
        if present:
            people = max(1, people)
        return Estimate(people, raw, sigma, "co2+presence" if present is not None else "co2")


def steady_state_headcount(
    co2_ppm: float,
    airflow_m3_s: float,
    outdoor_co2: float = 420.0,
    person_co2_m3_s: float = PERSON_CO2_M3_S,
) -> int:
    """The CO2-threshold method, as a baseline: the headcount whose equilibrium level the
    reading has reached, ignoring that CO2 is still rising or falling."""
    people = airflow_m3_s * (co2_ppm - outdoor_co2) * 1e-6 / person_co2_m3_s
    return max(0, round(people))

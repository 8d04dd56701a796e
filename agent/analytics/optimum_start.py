"""Optimum start and stop for one zone, learned from the room's own history.

Heating a council chamber from 06:00 for an 18:00 session wastes twelve hours; heating it from
17:30 leaves the council cold. As in PNNL's optimal-start work for VOLTTRON, each zone learns how
fast it warms (and cools) from its own past, and starts just in time:

- Warm-up: while the zone heats at full output, the rate it gains (K/h) falls as the room gets
  warmer than outdoors, because the envelope loses more. The model is the straight line
  rate = a - b * (indoor - outdoor), fitted by least squares over the last warm-ups.
- Drift: with the heating off, the room relaxes toward outdoors (Newton's law of cooling,
  dT/dt = -(T - T_out) / tau); tau is learned from the off periods. Stopping early is safe when
  the drift over the rest of the session stays within the comfort band.

Until enough history exists, or when the fit is implausible, the zone uses a configured fixed
lead time and says so: a bad model never makes a session cold. Every decision carries its reason
("start 17:12: 1.8 K to gain at 2.4 K/h learned"). Cooling mirrors heating (rates of loss).

Pure logic over values handed in: the caller supplies temperatures and times, and stores
what `state()` returns (agent.common.state_store), so the learning survives restarts and
reconfiguration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Optional

from agent.config.analytics import OptimumStartConfig, finite

log = logging.getLogger("roomagent.optimum_start")

STATE_VERSION = 1
HOUR = 3600.0
# The setback's heating duty cycle is taken over this long: the walls and floor change over
# tens of hours, the thermostat's cycles over minutes, so a long window averages many cycles
# (in the room benchmark 4 h did better than 2 h on each of the seeds tried, 21 and 22).
DUTY_WINDOW = 4 * HOUR
DUTY_MIN = 1 * HOUR  # ... and not said at all from less than this
# A drift is learned from the first hour with the heating off: an early stop is at most about
# that long, and in a room with heavy walls the air first falls fast toward them and only then
# slowly with them (the two-node room): a drift learned over a whole night says the slow part
# and would let a stopped session fall out of its band.
DRIFT_HORIZON = 1 * HOUR


@dataclass(frozen=True)
class Episode:
    """One learned warm-up (or cool-down at full cooling): mean indoor-outdoor difference, and
    the rate gained in K/h (always positive: for cooling, the rate of loss)."""

    delta: float
    rate: float
    gained: Optional[float] = None  # K gained (states written before it have none)
    # Share of the DUTY_WINDOW before the warm-up that heating (cooling) ran: the air is held at
    # the setback setpoint whatever the walls and floor are, and the colder they are the more
    # the setback heating runs to hold it (see need_hours); None when not watched long enough.
    duty: Optional[float] = None


@dataclass(frozen=True)
class Decision:
    """When to start conditioning for a session, and why."""

    start_at: float  # wall epoch seconds
    lead_minutes: float
    source: str  # "learned", "fixed", "none" (already there)
    reason: str
    action: str = "start"  # "stop": an early stop (start_at is when conditioning ends)


@dataclass(frozen=True)
class Fit:
    a: float  # K/h at no indoor-outdoor difference
    b: float  # K/h lost per K of difference
    n: int


class OptimumStart:
    """One zone's learner and planner, for one direction ("heat" or "cool")."""

    def __init__(
        self,
        zone: str,
        config: OptimumStartConfig,
        direction: str = "heat",
        saved: Optional[Mapping[str, Any]] = None,
        tz: Any = None,
    ) -> None:
        if direction not in ("heat", "cool"):
            raise ValueError(f"direction: {direction!r} is not heat or cool")
        self.zone, self.config, self.direction = zone, config, direction
        self._tz = tz  # for the clock time in reasons; None: UTC
        self.episodes: deque[Episode] = deque(maxlen=config.keep_episodes)
        self.tau_h: Optional[float] = None  # learned drift time constant, hours
        self._tau_weight = 0
        if saved is not None:
            self._restore(saved)

    # Learning.

    def learn_warmup(
        self,
        t_start: float,
        t_end: float,
        outdoor: float,
        hours: float,
        duty: Optional[float] = None,
    ) -> bool:
        """A warm-up at full output from t_start to t_end over `hours`, after a setback whose
        heating ran `duty` of the time; False if too short or small to say anything (under 10
        minutes or 0.3 K)."""
        gained = (t_end - t_start) if self.direction == "heat" else (t_start - t_end)
        if hours < 1 / 6 or gained < 0.3 or not all(map(finite, (t_start, t_end, outdoor))):
            return False
        delta = (t_start + t_end) / 2 - outdoor
        signed = delta if self.direction == "heat" else -delta
        if duty is not None and not (finite(duty) and 0.0 <= duty <= 1.0):
            duty = None
        self.episodes.append(Episode(signed, gained / hours, gained, duty))
        return True

    def learn_drift(self, t_start: float, t_end: float, outdoor: float, hours: float) -> bool:
        """An off period: the room drifted from t_start to t_end toward `outdoor`."""
        d0, d1 = t_start - outdoor, t_end - outdoor
        if hours < 0.5 or abs(d0) < 2 or d0 * d1 <= 0 or abs(d1) >= abs(d0):
            return False
        tau = hours / math.log(d0 / d1)
        if not 0.5 <= tau <= 500:
            return False
        # A running mean over the newest periods (weight capped: the building changes).
        self._tau_weight = min(self._tau_weight + 1, self.config.keep_episodes)
        prior = self.tau_h if self.tau_h is not None else tau
        self.tau_h = prior + (tau - prior) / self._tau_weight
        return True

    def fit(self) -> Optional[Fit]:
        """The least-squares line through the episodes, or None if it cannot be trusted."""
        n = len(self.episodes)
        if n < self.config.min_episodes:
            return None
        xs = [e.delta for e in self.episodes]
        ys = [e.rate for e in self.episodes]
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx < 1.0:  # all at one condition: the mean rate, with no slope
            return Fit(my, 0.0, n)
        b = -sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        b = max(b, 0.0)  # a room that warms faster the warmer it is, is noise
        return Fit(my + b * mx, b, n)

    # Planning.

    def plan(
        self,
        session_start: float,
        setpoint: float,
        indoor: float,
        outdoor: float,
        duty: Optional[float] = None,
    ) -> Decision:
        """`duty`: the share of the last DUTY_WINDOW the setback heating (cooling) ran, if
        known (Recorder.duty)."""
        c = self.config
        need = (setpoint - indoor) if self.direction == "heat" else (indoor - setpoint)
        verb = "to gain" if self.direction == "heat" else "to lose"
        if need <= 0:
            return Decision(session_start, 0.0, "none", f"already at {setpoint:g} °C")
        fit = self.fit()
        rate: Optional[float] = None
        why_fixed = ""
        shaped = (self.need_hours(need, setpoint, indoor, outdoor, duty)
                  if c.model == "need" else None)  # fmt: skip
        if shaped is not None:
            rate = need / shaped
        elif fit is None:
            why_fixed = f"{len(self.episodes)} of {c.min_episodes} warm-ups learned"
        else:
            sign = 1 if self.direction == "heat" else -1
            hours = _warmup_hours(fit, sign * (indoor - outdoor), sign * (setpoint - outdoor),
                                  c.min_rate)  # fmt: skip
            if hours is None:
                end_rate = fit.a - fit.b * sign * (setpoint - outdoor)
                why_fixed = f"learned rate {end_rate:.2f} K/h at the setpoint is not believable"
            else:
                rate = need / hours
        if rate is None:
            lead = c.fixed_lead_minutes
            source = "fixed"
            detail = f"{need:.1f} K {verb}, fixed lead {lead:g} min ({why_fixed})"
        else:
            lead = need / rate * 60 * c.safety
            source = "learned"
            detail = f"{need:.1f} K {verb} at {rate:.1f} K/h learned"
            if lead > c.max_lead_minutes:
                detail += f", capped at {c.max_lead_minutes:g} min"
        lead = min(max(lead, c.latest_start_minutes), c.max_lead_minutes)
        start = session_start - lead * 60
        return Decision(start, lead, source, f"start {self.clock(start)}: {detail}")

    def need_hours(
        self,
        need: float,
        setpoint: float,
        indoor: float,
        outdoor: float,
        duty: Optional[float] = None,
    ) -> Optional[float]:
        """Hours to gain `need` K by the least-squares fit hours = g (c1 + c2 g + c3 d + c4 u)
        over the episodes (g the kelvins gained, d their mean indoor-outdoor difference, u the
        setback's heating duty before them), or None when fewer than min_episodes carry what
        they gained, their gains span under 1 K, or the answer is not believable (then the line,
        or the fixed lead, decides).

        Why u: in setback the thermostat holds the air at its setpoint T_a, and its mean power
        is what the air loses, P = H_out (T_a - T_out) + H_am (T_a - T_mass) (the two-node room:
        air to outdoors, air to walls and floor). With d standing for T_a - T_out, u = P /
        P_rated is linear in how far the walls and floor are below the air, which the air
        sensor cannot see and which decides how long the last kelvins take. Without a duty now,
        or fewer than 5 warm-ups that carry one, u is left out."""
        rows = [(e.gained, e.delta, e.gained / e.rate, e.duty) for e in self.episodes if e.gained]
        if len(rows) < max(self.config.min_episodes, 4):
            return None
        gains = [r[0] for r in rows]
        if max(gains) - min(gains) < 1.0:
            return None
        sign = 1 if self.direction == "heat" else -1
        d = sign * ((indoor + setpoint) / 2 - outdoor)
        with_duty = [(g, dd, h, u) for g, dd, h, u in rows if u is not None]
        coef = None
        if duty is not None and len(with_duty) >= max(self.config.min_episodes, 5):
            coef = _least_squares([(g, g * g, g * dd, g * u) for g, dd, _, u in with_duty],
                                  [h for _, _, h, _ in with_duty])  # fmt: skip
        if coef is not None and duty is not None:
            hours = need * (coef[0] + coef[1] * need + coef[2] * d + coef[3] * duty)
        else:
            coef = _least_squares([(g, g * g, g * dd) for g, dd, _, _ in rows],
                                  [h for _, _, h, _ in rows])  # fmt: skip
            if coef is None:
                return None
            hours = need * (coef[0] + coef[1] * need + coef[2] * d)
        if not finite(hours) or hours <= 0 or need / hours < self.config.min_rate:
            return None
        return hours

    def early_stop(
        self, session_end: float, setpoint: float, indoor: float, outdoor: float
    ) -> Optional[Decision]:
        """When conditioning may stop before `session_end` with the room still within
        stop_band of the setpoint at the end; None when the drift is not learned yet."""
        c = self.config
        if self.tau_h is None or c.stop_band <= 0:
            return None
        gap = indoor - outdoor if self.direction == "heat" else outdoor - indoor
        margin = (
            (indoor - (setpoint - c.stop_band))
            if self.direction == "heat"
            else ((setpoint + c.stop_band) - indoor)
        )
        if gap <= 0 or margin <= 0:
            return Decision(session_end, 0.0, "none", "no margin to drift in")
        # T(t) - T_out = gap * exp(-t/tau): the drift reaches the band after t.
        hours = self.tau_h * math.log(gap / (gap - margin)) if margin < gap else math.inf
        minutes = min(hours * 60 / c.safety, c.max_early_stop_minutes)
        stop = session_end - minutes * 60
        reason = (f"stop {self.clock(stop)}: drifts {margin:.1f} K in {minutes:.0f} min "
                  f"(tau {self.tau_h:.1f} h learned)")  # fmt: skip
        return Decision(stop, minutes, "learned", reason, "stop")

    # Persistence.

    def state(self) -> dict[str, Any]:
        """What to store; restored by OptimumStart(..., saved=)."""
        body = {
            "version": STATE_VERSION,
            "direction": self.direction,
            "episodes": [asdict(e) for e in self.episodes],
            "tau_h": self.tau_h,
            "tau_weight": self._tau_weight,
        }
        return {**body, "checksum": _checksum(body)}

    def _restore(self, saved: Mapping[str, Any]) -> None:
        problem = _problem(saved, self.direction)
        if problem is not None:
            log.warning(
                "zone %s: learned %s state discarded (%s); the fixed lead time is used until "
                "it is learned again", self.zone, self.direction, problem,
            )  # fmt: skip
            return
        for e in saved["episodes"][-self.config.keep_episodes :]:
            gained = e.get("gained")
            duty = e.get("duty")
            self.episodes.append(Episode(float(e["delta"]), float(e["rate"]),
                                         float(gained) if finite(gained) else None,
                                         float(duty) if finite(duty) else None))  # fmt: skip
        self.tau_h = saved["tau_h"]
        self._tau_weight = int(saved["tau_weight"])

    def clock(self, epoch: float) -> str:
        """HH:MM of `epoch` in the zone's time zone, for reasons."""
        from datetime import datetime, timezone

        return datetime.fromtimestamp(epoch, self._tz or timezone.utc).strftime("%H:%M")


class Recorder:
    """Turns what a zone does into lessons for its OptimumStart: a run at full output is a
    warm-up (or cool-down), a run with no output at all is a drift. Fed about once a minute."""

    def __init__(self, learner: OptimumStart) -> None:
        self.learner = learner
        self._run: Optional[tuple[str, float, float, float, int]] = None  # kind, t0, T0, out, n
        self._outputs: deque[tuple[float, bool]] = deque()  # (when, running) in DUTY_WINDOW
        self._since: Optional[float] = None  # first look (of this run of looks)
        self._run_duty: Optional[float] = None  # duty before the run in progress began
        self._drift_learned = False  # the run in progress (off) already gave its lesson

    def duty(self, now: float) -> Optional[float]:
        """Share of the looks in the last DUTY_WINDOW with the direction running (partly or
        fully); None until DUTY_MIN has been watched."""
        if self._since is None or now - self._since < DUTY_MIN or not self._outputs:
            return None
        return sum(on for _, on in self._outputs) / len(self._outputs)

    def observe(self, now: float, indoor: float, outdoor: float, output: str) -> bool:
        """`output`: "full" (every stage of the direction on), "off" (nothing on), or anything
        else (partly on: neither lesson). True when a lesson was learned at this call."""
        kind = output if output in ("full", "off") else None
        run = self._run
        before = self.duty(now)
        if self._outputs and now - self._outputs[-1][0] > DUTY_WINDOW:
            self._outputs.clear()
            self._since = None  # a gap in the looks: what came before says nothing now
        self._since = now if self._since is None else self._since
        self._outputs.append((now, output != "off"))
        while self._outputs[0][0] <= now - DUTY_WINDOW:
            self._outputs.popleft()
        if run is not None and run[0] == kind:
            out_sum = run[3] + outdoor
            self._run = (run[0], run[1], run[2], out_sum, run[4] + 1)
            hours = (now - run[1]) / HOUR
            if kind == "off" and not self._drift_learned and hours >= DRIFT_HORIZON / HOUR:
                self._drift_learned = True
                return self.learner.learn_drift(run[2], indoor, out_sum / (run[4] + 1), hours)
            return False
        learned = False
        if run is not None:
            what, t0, temp0, out_sum, n = run
            hours = (now - t0) / HOUR
            mean_out = out_sum / n
            if what == "full":
                learned = self.learner.learn_warmup(temp0, indoor, mean_out, hours,
                                                    self._run_duty)  # fmt: skip
            elif not self._drift_learned:
                learned = self.learner.learn_drift(temp0, indoor, mean_out, hours)
        self._run = (kind, now, indoor, outdoor, 1) if kind is not None else None
        self._run_duty = before
        self._drift_learned = False
        return learned


def _warmup_hours(fit: Fit, d0: float, d1: float, min_rate: float) -> Optional[float]:
    """Hours to go from difference d0 to d1 (indoor - outdoor, signed for the direction) under
    the learned line dd/dt = a - b d, solved exactly; None where the rate on the way falls
    below min_rate (the line extrapolated too far to be believed)."""
    if fit.a - fit.b * d1 < min_rate or fit.a - fit.b * d0 < min_rate:
        return None
    if fit.b == 0:
        return (d1 - d0) / fit.a
    return math.log((fit.a - fit.b * d0) / (fit.a - fit.b * d1)) / fit.b


def _least_squares(xs: list[tuple[float, ...]], ys: list[float]) -> Optional[list[float]]:
    """Ordinary least squares without intercept through the normal equations (a handful of
    unknowns: Gaussian elimination with partial pivoting); None when they are singular."""
    k = len(xs[0])
    a = [[sum(x[i] * x[j] for x in xs) for j in range(k)] + [sum(x[i] * y for x, y in zip(xs, ys))]
         for i in range(k)]  # fmt: skip
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-9 * max(1.0, abs(a[col][col])):
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(k):
            if r != col:
                f = a[r][col] / a[col][col]
                a[r] = [v - f * w for v, w in zip(a[r], a[col])]
    return [a[i][k] / a[i][i] for i in range(k)]


def _problem(saved: Mapping[str, Any], direction: str) -> Optional[str]:
    """Why a stored state cannot be used, or None."""
    if not isinstance(saved, Mapping):
        return "not an object"
    body = {k: v for k, v in saved.items() if k != "checksum"}
    if saved.get("checksum") != _checksum(body):
        return "checksum mismatch"
    if saved.get("version") != STATE_VERSION:
        return f"version {saved.get('version')!r}, expected {STATE_VERSION}"
    if saved.get("direction") != direction:
        return f"direction {saved.get('direction')!r}"
    episodes = saved.get("episodes")
    if not isinstance(episodes, list) or not all(
        isinstance(e, dict) and finite(e.get("delta")) and finite(e.get("rate"))
        and e["rate"] > 0 for e in episodes
    ):  # fmt: skip
        return "episodes malformed"
    tau = saved.get("tau_h")
    if tau is not None and (not finite(tau) or tau <= 0):
        return "tau_h malformed"
    weight = saved.get("tau_weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        return "tau_weight malformed"
    return None


def _checksum(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

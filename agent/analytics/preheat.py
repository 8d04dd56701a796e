"""When a zone goes to comfort before each session: optimum start over a session calendar.

OptimumStart (optimum_start.py) answers "when must heating start to reach the setpoint at t?";
this asks it again at every look while a session approaches (the room cools, the weather
turns), and commits the moment the answer is "now": from then the zone stays in comfort until
the session ends, whatever later looks say, so a zone never flaps between eco and comfort.
Each commitment is a Decision with its reason, which the caller publishes as an event.

Stopping early is the mirror: in a session, once the learned drift lets the room coast to the
session's end within the comfort band, comfort ends (only with `early_stop` on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from agent.analytics.optimum_start import Decision, OptimumStart

# At start-up the zone's sensors have not answered yet (their first round takes a poll interval);
# "no indoor temperature" then means "not read yet", not "none to be had". A fixed-lead start
# that is already due waits this long for the first reading (never past the latest start).
FIRST_READING_WAIT = 300.0


@dataclass(frozen=True)
class Look:
    """What the planner says at one look."""

    comfort: bool
    decision: Optional[Decision] = None  # a start or stop committed at this look
    pending: Optional[Decision] = None  # the next session's plan, not yet due


class PreheatPlanner:
    def __init__(self, learner: OptimumStart, early_stop: bool = False) -> None:
        self.learner = learner
        self.early_stop = early_stop
        self._started: Optional[float] = None  # start of the session comfort was committed for
        self._stopped: Optional[float] = None  # end of the session stopped early
        self._resumed: Optional[float] = None  # end of a session whose stop was taken back
        self.last: Optional[Decision] = None  # the latest committed decision (for doctor)
        self.pending: Optional[Decision] = None
        self._first_look: Optional[float] = None
        self._read = False  # an indoor temperature has been seen since this planner was made

    def look(
        self,
        now: float,
        current: Optional[tuple[float, float]],
        upcoming: Optional[float],
        setpoint: float,
        indoor: Optional[float],
        outdoor: Optional[float],
        duty: Optional[float] = None,
    ) -> Look:
        """`current`: (start, end) of the session in progress, if any; `upcoming`: the start of
        the next one; `duty`: the setback heating's recent duty cycle (Recorder.duty). Without
        an indoor temperature the fixed lead is used; without an outdoor one, the learned line
        is read at the mean indoor-outdoor difference it was learned at."""
        if self._first_look is None:
            self._first_look = now
        self._read = self._read or indoor is not None
        if current is not None:
            if upcoming is not None and self.early_stop and indoor is not None:
                # A next session whose warm-up would begin before this one ends: no stop.
                follow = self._plan(upcoming, setpoint, indoor, outdoor, duty)
                if follow.start_at <= current[1]:
                    return Look(True)
            return self._in_session(now, current, setpoint, indoor, outdoor)
        if upcoming is None:
            self.pending = None
            return Look(False)
        if self._started == upcoming:
            return Look(True)
        lead_max = self.learner.config.max_lead_minutes * 60
        if upcoming - now > lead_max:
            self.pending = None
            return Look(False)
        decision = self._plan(upcoming, setpoint, indoor, outdoor, duty)
        if now >= decision.start_at and not self._read:
            decision = self._unread(now, upcoming, decision)
        if now >= decision.start_at:
            self._started, self.last, self.pending = upcoming, decision, None
            return Look(True, decision)
        self.pending = decision
        return Look(False, pending=decision)

    def _unread(self, now: float, upcoming: float, fixed: Decision) -> Decision:
        """A fixed-lead start due before the zone's first reading: it waits for the reading up
        to FIRST_READING_WAIT after the first look and never past the latest start; then the
        fixed lead is committed, saying why."""
        assert self._first_look is not None
        latest = upcoming - self.learner.config.latest_start_minutes * 60
        until = min(self._first_look + FIRST_READING_WAIT, latest)
        if now < until:
            return Decision(until, fixed.lead_minutes, fixed.source,
                            f"waiting for the first indoor temperature until "
                            f"{self.learner.clock(until)}, then {fixed.reason}")  # fmt: skip
        waited = (now - self._first_look) / 60
        return Decision(fixed.start_at, fixed.lead_minutes, fixed.source,
                        f"fixed lead {fixed.lead_minutes:g} min (no indoor temperature read "
                        f"in the {waited:.0f} min since start-up)")  # fmt: skip

    def warming(self, now: float) -> bool:
        """Between a committed start and its session: the room is meant to be short of its
        setpoint then (a fault monitor does not judge it unmet)."""
        return self._started is not None and now < self._started

    def _plan(
        self,
        start: float,
        setpoint: float,
        indoor: Optional[float],
        outdoor: Optional[float],
        duty: Optional[float],
    ) -> Decision:
        learner = self.learner
        if indoor is None:
            lead = learner.config.fixed_lead_minutes
            return Decision(start - lead * 60, lead, "fixed",
                            f"fixed lead {lead:g} min (no indoor temperature)")  # fmt: skip
        if outdoor is None:
            episodes = learner.episodes
            mean = sum(e.delta for e in episodes) / len(episodes) if episodes else 15.0
            outdoor = indoor - mean if learner.direction == "heat" else indoor + mean
        return learner.plan(start, setpoint, indoor, outdoor, duty)

    def _in_session(
        self,
        now: float,
        current: tuple[float, float],
        setpoint: float,
        indoor: Optional[float],
        outdoor: Optional[float],
    ) -> Look:
        start, end = current
        self.pending = None
        if self._resumed == end:
            return Look(True)
        if self._stopped == end:
            band = self.learner.config.stop_band
            off = (
                None
                if indoor is None
                else (setpoint - indoor if self.learner.direction == "heat" else indoor - setpoint)
            )
            if off is None or off <= band:
                return Look(False)
            # The drift was faster than learned (the fans at full, a door open): never a
            # session out of its band because of the model. Comfort again, to the end.
            self._resumed = end
            back = Decision(now, 0.0, "learned", f"resume {self.learner.clock(now)}: "
                            f"{indoor:.1f} °C is out of the {band:g} K band before the end: "
                            "the early stop is taken back", "resume")  # fmt: skip
            self.last = back
            return Look(True, back)
        if not self.early_stop or indoor is None or outdoor is None:
            return Look(True)
        if self._started != start:
            # A session that began without a planned start (pushed late, agent restarted):
            # it is committed now, so a stop decided below ends it once.
            self._started = start
        decision = self.learner.early_stop(end, setpoint, indoor, outdoor)
        if decision is None or decision.source != "learned" or now < decision.start_at:
            return Look(True)
        self._stopped, self.last = end, decision
        return Look(False, decision)


class WarmupOutput:
    """What a zone's stages mean to the Recorder. A warm-up runs from the switch to comfort until
    the thermostat first lets go: its later stages drop out near the setpoint, so the last
    kelvin comes slower, and that slower end belongs to the lesson (the time to the setpoint as
    the zone really runs). Outside a warm-up heating is "part": the short cycles that hold a
    setback are near the room's balance with its mass and say little about a warm-up from it."""

    def __init__(self) -> None:
        self._comfort = False
        self._warming = False  # armed at the switch to comfort
        self._ran = False  # heating came on since

    def __call__(self, stages_on: list[bool], comfort: bool) -> str:
        on = any(stages_on)
        if comfort and not self._comfort:
            # The relays may follow the switch a look later (the thermostat runs on its own).
            self._warming, self._ran = True, False
        if not comfort:
            self._warming = False
        if self._warming:
            if on:
                self._ran = True
            elif self._ran:
                self._warming = False  # the thermostat let go: the warm-up is over
        self._comfort = comfort
        if on and self._warming:
            return "full"
        return "part" if on else "off"

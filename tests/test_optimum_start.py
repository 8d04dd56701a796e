"""Optimum start and stop: the learner recovers a first-order room's physics, the planner's times
are the hand-computed ones, every bound holds, and learned state survives or is refused whole.

The room used here is the textbook first-order (RC) model, C dT/dt = P - (T - T_out) / R: at full
heating power its warm-up rate is P/C - (T - T_out)/(R C), a straight line in the indoor-outdoor
difference, and switched off it relaxes with time constant tau = R C. Its exact warm-up time
from T0 to Ts is tau * ln((T_inf - T0) / (T_inf - Ts)) with T_inf = T_out + P R."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

import pytest

from agent.analytics.optimum_start import (
    OptimumStart,
    OptimumStartConfig,
    Recorder,
)
from agent.analytics.preheat import PreheatPlanner

HOUR = 3600.0
SIX_PM = datetime(2026, 12, 7, 18, 0, tzinfo=timezone.utc).timestamp()


def learner_with(*episodes: tuple[float, float], **config: float) -> OptimumStart:
    o = OptimumStart("chamber", OptimumStartConfig(**config))  # type: ignore[arg-type]
    for delta, rate in episodes:  # t_start/t_end around the mean difference, over one hour
        assert o.learn_warmup(delta - rate / 2, delta + rate / 2, 0.0, 1.0)
    return o


def test_the_fit_recovers_a_straight_line_exactly() -> None:
    # rate = 4 - 0.1 * delta at three conditions.
    o = learner_with((5, 3.5), (10, 3.0), (20, 2.0))
    fit = o.fit()
    assert fit is not None
    assert fit.a == pytest.approx(4.0) and fit.b == pytest.approx(0.1) and fit.n == 3


def test_a_learned_plan_is_the_hand_computed_start_with_its_reason() -> None:
    o = learner_with((5, 3.5), (10, 3.0), (20, 2.0), safety=1.0)
    # 15 -> 21 °C with 5 °C outdoors: the difference d goes 10 -> 16 K under dd/dt = 4 - 0.1 d,
    # t = ln((4 - 1.0) / (4 - 1.6)) / 0.1 = 2.2314 h = 133.886 min before 18:00: 15:46:07,
    # a mean 6 K / 2.2314 h = 2.69 K/h.
    d = o.plan(SIX_PM, 21.0, 15.0, 5.0)
    assert d.source == "learned"
    assert d.lead_minutes == pytest.approx(133.886, abs=0.01)
    assert d.start_at == pytest.approx(SIX_PM - 8033.2, abs=1)
    assert d.reason == "start 15:46: 6.0 K to gain at 2.7 K/h learned"


def test_fixed_lead_until_enough_warmups_are_learned() -> None:
    o = learner_with((5, 3.5), fixed_lead_minutes=90)
    d = o.plan(SIX_PM, 21.0, 15.0, 5.0)
    assert d.source == "fixed" and d.lead_minutes == 90
    assert d.reason == "start 16:30: 6.0 K to gain, fixed lead 90 min (1 of 3 warm-ups learned)"


def test_an_unbelievable_model_falls_back_to_the_fixed_lead_and_says_so() -> None:
    # Learned where losses are small; far colder outside the line goes below zero.
    o = learner_with((5, 1.0), (10, 0.8), (15, 0.6), fixed_lead_minutes=120)
    d = o.plan(SIX_PM, 21.0, 10.0, -20.0)  # 41 K at the setpoint: 1.2 - 0.04 * 41 < 0.2
    assert d.source == "fixed" and d.lead_minutes == 120
    assert "is not believable" in d.reason


def test_the_latest_start_and_the_longest_lead_bound_every_plan() -> None:
    o = learner_with((5, 3.5), (10, 3.0), (20, 2.0), safety=1.0, latest_start_minutes=15)
    near = o.plan(SIX_PM, 21.0, 20.9, 5.0)  # 0.1 K: 2 min would do; 15 min it is
    assert near.lead_minutes == 15 and near.start_at == SIX_PM - 900
    far = o.plan(SIX_PM, 21.0, -5.0, -10.0)  # 26 K at under 3 K/h: beyond the cap
    assert far.lead_minutes == 360 and "capped at 360 min" in far.reason
    assert o.plan(SIX_PM, 21.0, 21.5, 5.0).source == "none"  # already there: no preheat


def test_cooling_mirrors_heating() -> None:
    o = OptimumStart("chamber", OptimumStartConfig(safety=1.0), direction="cool")
    for outdoor, rate in ((30.0, 2.0), (35.0, 1.5), (40.0, 1.0)):
        # Indoors 27 -> 25 on average 26: outdoor - indoor = 4, 9, 14 K.
        assert o.learn_warmup(26 + rate / 2, 26 - rate / 2, outdoor, 1.0)
    fit = o.fit()
    assert fit is not None and fit.a == pytest.approx(2.4) and fit.b == pytest.approx(0.1)
    d = o.plan(SIX_PM, 24.0, 27.0, 32.0)  # outdoor - indoor 5 -> 8 K: ln(1.9 / 1.6) / 0.1 h
    assert d.lead_minutes == pytest.approx(10 * math.log(1.9 / 1.6) * 60)
    assert "3.0 K to lose" in d.reason


class Room:
    """First-order room, integrated in one-minute steps (exact exponential per step)."""

    def __init__(self, p_over_c: float, tau_h: float, temp: float) -> None:
        self.p_over_c, self.tau_h, self.temp = p_over_c, tau_h, temp

    def step(self, outdoor: float, heating: bool, hours: float = 1 / 60) -> None:
        target = outdoor + (self.p_over_c * self.tau_h if heating else 0.0)
        self.temp = target + (self.temp - target) * math.exp(-hours / self.tau_h)

    def time_to_reach(self, setpoint: float, outdoor: float) -> float:
        t_inf = outdoor + self.p_over_c * self.tau_h
        return self.tau_h * math.log((t_inf - self.temp) / (t_inf - setpoint)) * HOUR


def test_learned_from_a_first_order_room_the_setpoint_is_reached_within_ten_minutes() -> None:
    cfg = OptimumStartConfig(safety=1.0)
    o = OptimumStart("chamber", cfg)
    rec = Recorder(o)
    now = 0.0
    # Four mornings of warm-up at different outdoor temperatures, each followed by a drift.
    for outdoor, start in ((0.0, 6.0), (6.0, 14.0), (10.0, 4.0), (3.0, 18.0)):
        room = Room(p_over_c=3.0, tau_h=20.0, temp=outdoor + start)
        for _ in range(150):
            rec.observe(now, room.temp, outdoor, "full")
            room.step(outdoor, heating=True)
            now += 60
        for _ in range(180):
            rec.observe(now, room.temp, outdoor, "off")
            room.step(outdoor, heating=False)
            now += 60
        rec.observe(now, room.temp, outdoor, "partial")  # closes the drift: lights on, say
    assert len(o.episodes) == 4
    assert o.tau_h == pytest.approx(20.0, rel=0.01)
    for outdoor, indoor in ((-2.0, 12.0), (4.0, 14.0), (8.0, 16.0)):
        room = Room(3.0, 20.0, indoor)
        d = o.plan(SIX_PM, 21.0, indoor, outdoor)
        arrival = d.start_at + room.time_to_reach(21.0, outdoor)
        assert abs(arrival - SIX_PM) <= 600, (outdoor, d.reason, (arrival - SIX_PM) / 60)


def test_early_stop_is_the_drift_formula() -> None:
    o = OptimumStart("chamber", OptimumStartConfig(safety=1.0, stop_band=0.5))
    o.tau_h = 20.0
    d = o.early_stop(SIX_PM, 21.0, 21.0, 1.0)  # 20 K above outside, 0.5 K to drift
    assert d is not None
    minutes = 20.0 * math.log(20 / 19.5) * 60  # 30.38 min
    assert d.lead_minutes == pytest.approx(minutes)
    assert d.start_at == pytest.approx(SIX_PM - minutes * 60)
    assert OptimumStart("x", OptimumStartConfig()).early_stop(SIX_PM, 21, 21, 1) is None


def test_learned_state_survives_a_round_trip_and_a_corrupt_one_is_discarded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    o = learner_with((5, 3.5), (10, 3.0), (20, 2.0))
    o.tau_h = 18.0
    saved = o.state()
    again = OptimumStart("chamber", OptimumStartConfig(), saved=saved)
    assert list(again.episodes) == list(o.episodes) and again.tau_h == 18.0
    tampered = {**saved, "tau_h": 5.0}  # changed without its checksum
    with caplog.at_level(logging.WARNING, logger="roomagent.optimum_start"):
        fresh = OptimumStart("chamber", OptimumStartConfig(), saved=tampered)
    assert not fresh.episodes and fresh.tau_h is None
    assert "checksum mismatch" in caplog.text and "fixed lead time is used" in caplog.text
    assert fresh.plan(SIX_PM, 21.0, 15.0, 5.0).source == "fixed"
    for broken in ({}, {"episodes": "x"}, {**saved, "version": 99}):
        assert not OptimumStart("chamber", OptimumStartConfig(), saved=broken).episodes


@pytest.mark.parametrize(
    "field, value",
    [("fixed_lead_minutes", 0), ("min_rate", -1), ("min_episodes", 0), ("safety", float("nan")),
     ("latest_start_minutes", 400), ("keep_episodes", 1.5)],
)  # fmt: skip
def test_bad_thresholds_are_refused_with_the_key(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        OptimumStartConfig(**{field: value})  # type: ignore[arg-type]


def test_at_start_up_the_planner_waits_for_the_first_indoor_reading() -> None:
    # Restarted at 17:00 for an 18:00 session: the fixed lead (120 min) was due at 16:00, but the
    # zone's sensor has not answered yet. The reading (20 °C, 5 °C out) arrives at 17:02: the
    # learned line then says d goes 15 -> 16 K under dd/dt = 4 - 0.1 d,
    # t = ln((4 - 1.5) / (4 - 1.6)) / 0.1 = 0.40822 h = 24.49 min: start 17:35:30, not 17:00.
    o = learner_with((5, 3.5), (10, 3.0), (20, 2.0), safety=1.0, fixed_lead_minutes=120)
    planner = PreheatPlanner(o)
    first = planner.look(SIX_PM - HOUR, None, SIX_PM, 21.0, None, 5.0)
    assert not first.comfort and first.decision is None
    assert first.pending is not None and first.pending.start_at == SIX_PM - HOUR + 300
    assert first.pending.reason.startswith("waiting for the first indoor temperature until 17:05")
    read = planner.look(SIX_PM - HOUR + 120, None, SIX_PM, 21.0, 20.0, 5.0)
    assert not read.comfort and read.pending is not None
    assert read.pending.source == "learned"
    assert read.pending.start_at == pytest.approx(SIX_PM - 24.493 * 60, abs=1)
    due = planner.look(SIX_PM - 24 * 60, None, SIX_PM, 21.0, 20.0, 5.0)
    assert due.comfort and due.decision is not None and due.decision.source == "learned"


def test_with_no_reading_the_wait_is_bounded_and_the_fixed_lead_says_why() -> None:
    o = learner_with((5, 3.5), (10, 3.0), (20, 2.0), fixed_lead_minutes=120)
    planner = PreheatPlanner(o)
    assert not planner.look(SIX_PM - HOUR, None, SIX_PM, 21.0, None, 5.0).comfort
    assert not planner.look(SIX_PM - HOUR + 299, None, SIX_PM, 21.0, None, 5.0).comfort
    late = planner.look(SIX_PM - HOUR + 300, None, SIX_PM, 21.0, None, 5.0)
    assert late.comfort and late.decision is not None
    assert late.decision.source == "fixed" and late.decision.lead_minutes == 120
    assert late.decision.reason == (
        "fixed lead 120 min (no indoor temperature read in the 5 min since start-up)"
    )
    # Restarted 10 minutes before the session: past the latest start (15 min), no wait at all.
    close = PreheatPlanner(learner_with(fixed_lead_minutes=120, latest_start_minutes=15))
    now = SIX_PM - 600
    assert close.look(now, None, SIX_PM, 21.0, None, 5.0).comfort
    # Started before the fixed lead was due, a sensor that never answers: the fixed lead holds.
    early = PreheatPlanner(learner_with(fixed_lead_minutes=120))
    assert not early.look(SIX_PM - 3 * HOUR, None, SIX_PM, 21.0, None, 5.0).comfort
    assert not early.look(SIX_PM - 2 * HOUR - 1, None, SIX_PM, 21.0, None, 5.0).comfort
    assert early.look(SIX_PM - 2 * HOUR, None, SIX_PM, 21.0, None, 5.0).comfort


def test_a_sensor_gone_stale_after_its_first_reading_gets_the_fixed_lead_at_once() -> None:
    planner = PreheatPlanner(learner_with(fixed_lead_minutes=120))
    assert not planner.look(SIX_PM - 3 * HOUR, None, SIX_PM, 21.0, 18.0, 5.0).comfort
    stale = planner.look(SIX_PM - HOUR, None, SIX_PM, 21.0, None, 5.0)
    assert stale.comfort and stale.decision is not None
    assert stale.decision.reason == "fixed lead 120 min (no indoor temperature)"

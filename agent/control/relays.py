"""The relay bank: the last word before a pin, and the rules that protect the plant behind it.

Control rules say what they want; this module decides whether and when a relay may follow:
interlocked relays (heat and cool on one unit) are never on together and wait a dead time
between them, compressors keep their minimum on and off times (across restarts too), a relay
that chatters is refused with an alarm, and a pulse (the relay's configured one, or one a command
asked for) ends by itself, even across a restart: its end is persisted. Every switch,
deferral and refusal comes back as an Event with the rule that decided it.

Pure logic over an injected Clock; the runtime calls tick() about once a second.

Over 500 lines on purpose: RelayBank is one state machine whose rules (interlocks, minimum
times, the chatter guard, pulses, energy and their persistence) decide together on each switch;
spreading them over modules would split what one decision reads. Its config and the list's
checks are in agent.config.relays.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional

from agent.common.events import Event
from agent.common.state_store import KeyValueStore
from agent.config.relays import RelayConfig, finite_number, validate_relays
from agent.control.types import Clock

HOUR = 3600.0
# While a metered relay is on or a switch is pending, the state is written at least this often:
# at most this much energy (and no state a rule needs: those switches are written at once) is
# lost to a power cut. Each write costs the card ~35 KB and 4 flushes at the device (a 4 KiB
# data block, a flush, the ext4 journal commit after it): once a minute that alone was ~50
# MB/day, issue 19's whole budget with the broker up (docs/buffer.md). Meters' offsets are
# written every 15 min (agent/sensing/modbus), for the same reason.
ENERGY_FLUSH_INTERVAL = 300.0
# scripts/roomagent.service's RestartSec. A crash or a power cut drops every relay (the kernel
# releases the pins; the board loses power), and the next agent drives none before this much
# later: an interlock dead time no longer than this is kept by the restart itself.
RESTART_GAP = 5.0  # s
# A relay whose pin could not be opened at start is tried again this often (see RelayBank).
RETRY_AFTER = 30.0  # s


@dataclass(frozen=True)
class _Pending:
    on: bool
    reason: str
    forced: bool = False  # the safe state: past min_on, min_off and the chatter guard
    pulse: Optional[float] = None  # seconds: on for this long once it comes on (a command's)


class _Relay:
    def __init__(self, cfg: RelayConfig, now: float) -> None:
        self.cfg = cfg
        self.device: Any = None
        self.on = False
        self.last_on: Optional[float] = None  # monotonic
        self.last_off: Optional[float] = None
        self.last_on_wall: Optional[float] = None  # persisted: the monotonic clock restarts
        self.last_off_wall: Optional[float] = None
        self.pending: Optional[_Pending] = None
        self.unavailable: Optional[str] = None  # why its pin could not be opened at start
        self.pulse_end: Optional[float] = None  # monotonic; persisted as wall time in _save
        self.pulse_s: Optional[float] = None  # the pulse in force: the config's or a command's
        self.commanded = False  # pulse_s came from a command, not from the config
        self.switches: collections.deque[float] = collections.deque()
        self.energy_wh = 0.0  # up to energy_since
        self.energy_since = now


class RelayBank:
    def __init__(
        self,
        configs: Sequence[RelayConfig],
        pin_factory: object,
        clock: Clock,
        store: KeyValueStore,
        previous: Optional[RelayBank] = None,
    ) -> None:
        """`previous`: the bank of a config being replaced. Its relays that keep their name, pin
        and polarity carry on with their pin, state and timers, so reconfiguring switches
        nothing it need not; its other relays are retired (switched off and released)."""
        validate_relays(configs)
        self._clock, self._store = clock, store
        now, wall = clock.monotonic(), clock.time()
        kept = previous._reusable(configs) if previous is not None else {}
        self._relays = {c.name: kept.get(c.name) or _Relay(c, now) for c in configs}
        fresh = [r for r in self._relays.values() if r.cfg.name not in kept]
        self._groups: dict[str, list[_Relay]] = {}
        for c in configs:
            if c.interlock is not None:
                self._groups.setdefault(c.interlock, []).append(self._relays[c.name])
        self._last_flush = now
        # Whose switches are written to the card at once (the rest within ENERGY_FLUSH_INTERVAL)
        self._sync_at_switch = {c.name for c in configs if _read_back_for_safety(c, configs)}
        self._unsaved = False  # set() but not yet flushed
        # The energy as last written to the card: what a restart resumes from (never more).
        self._saved_energy: dict[str, float] = dict(previous._saved_energy) if previous else {}
        self._closed = False
        self._late_events: list[Event] = []
        self._pin_factory = pin_factory
        self._next_retry = now + RETRY_AFTER
        # Switches and deferrals decided at power-on, for the runtime to publish.
        holder = {
            c.interlock: c.name
            for c in configs
            if c.interlock is not None and c.name in kept and kept[c.name].on
        }
        self.startup_events: list[Event] = self._power_on(now, wall, fresh, holder)
        # At start (no previous bank) a pin that cannot be opened makes that relay unavailable
        # and the rest carries on; a reconfiguration instead fails whole and keeps the old bank.
        degrade = previous is None
        # New pins are claimed before anything of the previous bank is touched, so a pin that
        # cannot be claimed leaves it as it was; only pins the previous bank must give up
        # first (a retired relay's pin that a new relay takes over) wait for the retirement.
        retiring = previous._retiring_pins(set(kept)) if previous is not None else set()
        try:
            self._claim([r for r in fresh if r.cfg.pin not in retiring], pin_factory, degrade)
            if previous is not None:
                self.startup_events += previous._retire(set(kept))
            self._claim([r for r in fresh if r.cfg.pin in retiring], pin_factory, degrade)
        except BaseException:
            for r in fresh:
                if r.device is not None:
                    r.device.close()
                    r.device = None
            raise
        if previous is not None:
            previous._hand_over(kept)
        lost = {r.cfg.name for r in fresh if r.unavailable is not None}
        self.startup_events = [e for e in self.startup_events if e.subject not in lost]
        self.startup_events += [
            self._event(r, "unavailable", r.unavailable, wall)
            for r in fresh
            if r.unavailable is not None
        ]
        for c in configs:
            r = self._relays[c.name]
            if r.on and r.cfg.pulse != c.pulse and r.last_on is not None and not r.commanded:
                # A pulse relay that is on ends by the new config's pulse, counted from its on;
                # a pulse a command asked for is the operator's and runs its course.
                r.pulse_end = r.last_on + c.pulse if c.pulse is not None else None
                r.pulse_s = c.pulse
            r.cfg = c
        self.startup_events += self._settle_interlocks(now)
        for r in self._relays.values():
            self._save(r)
        self._flush(now)

    def _reusable(self, configs: Sequence[RelayConfig]) -> dict[str, _Relay]:
        """This bank's relays that the new configs keep on the same pin and polarity."""
        return {
            c.name: r
            for c in configs
            if (r := self._relays.get(c.name)) is not None
            and (r.cfg.pin, r.cfg.active_high) == (c.pin, c.active_high)
        }

    def _claim(self, relays: list[_Relay], pin_factory: object, degrade: bool = False) -> None:
        # Imported here, not at the top: the config loader imports this module for every node,
        # and gpiozero is over 3 MiB of a node's memory (docs/benchmarks.md, footprint).
        from gpiozero import GPIOZeroError, OutputDevice

        for r in relays:
            try:
                # The pin starts at its resolved level: no glitch through the wrong one.
                r.device = OutputDevice(
                    r.cfg.pin, active_high=r.cfg.active_high, initial_value=r.on,
                    pin_factory=pin_factory,
                )  # fmt: skip
            except (GPIOZeroError, OSError, RuntimeError) as e:
                if not degrade:
                    raise
                # Not driven by us, so not on as far as any rule is concerned (an interlock
                # partner may run); its saved state stays as it was for the next start.
                r.device, r.on, r.pending = None, False, None
                r.pulse_end, r.pulse_s, r.commanded = None, None, False
                r.unavailable = f"relay {r.cfg.name!r}: cannot drive GPIO {r.cfg.pin}: {e}"

    def _retry(self, now: float) -> list[Event]:
        """Tries the unavailable relays' pins again; one that opens starts off (the safe
        default: the control rules ask again for what they want)."""
        from gpiozero import GPIOZeroError, OutputDevice

        if now < self._next_retry:
            return []
        self._next_retry = now + RETRY_AFTER
        events: list[Event] = []
        for r in self._relays.values():
            if r.unavailable is None:
                continue
            try:
                r.device = OutputDevice(
                    r.cfg.pin, active_high=r.cfg.active_high, initial_value=False,
                    pin_factory=self._pin_factory,
                )  # fmt: skip
            except (GPIOZeroError, OSError, RuntimeError):
                continue
            r.unavailable = None
            r.last_off, r.last_off_wall = now, self._clock.time()
            self._save(r)
            why = f"GPIO {r.cfg.pin} can be driven now: off until control asks for it"
            events.append(self._event(r, "off", why))
        return events

    def unavailable(self) -> dict[str, str]:
        """The relays whose pins could not be opened, with why."""
        return {n: r.unavailable for n, r in self._relays.items() if r.unavailable is not None}

    def _retiring_pins(self, keep: set[str]) -> set[int]:
        return {r.cfg.pin for name, r in self._relays.items() if name not in keep}

    def _retire(self, keep: set[str]) -> list[Event]:
        """Switches off and releases every relay not in `keep` (the new config dropped it or
        moved it to another pin): what the plant gets when nothing controls a relay any more.
        A retired relay stays known here, off and inert, in case this bank must carry on (the
        new one could not be built); its events are also kept for this bank's next tick."""
        now = self._clock.monotonic()
        events: list[Event] = []
        for name in [n for n in self._relays if n not in keep]:
            r = self._relays[name]
            r.pending = None
            if r.on:
                events.append(self._switch(r, False, "reconfigured: relay removed or moved", now))
            self._save(r)
            if r.device is not None:
                r.device.close()
                r.device = None
        self._flush(now)
        self._late_events = list(events)
        return events

    def _hand_over(self, kept: dict[str, _Relay]) -> None:
        """The kept relays now belong to the new bank: this one closes without touching them."""
        for name in kept:
            self._relays.pop(name, None)
        self._late_events = []  # the new bank reports them
        self._closed = True

    def _settle_interlocks(self, now: float) -> list[Event]:
        """A new config may put two relays that are on into one interlock group: all but the
        first stay off, whatever their minimum on time, because the interlock protects the plant."""
        events: list[Event] = []
        for group, members in self._groups.items():
            on = [r for r in members if r.on]
            for r in on[1:]:
                why = f"reconfigured: interlock {group}: {on[0].cfg.name} is on"
                events.append(self._switch(r, False, why, now))
        return events

    def _power_on(
        self, now: float, wall: float, fresh: list[_Relay], holder: dict[str, str]
    ) -> list[Event]:
        """`holder`: interlock group -> its member already on (kept from a previous bank)."""
        events: list[Event] = []
        was: dict[str, bool] = {}
        ends: dict[str, Optional[tuple[float, float, bool]]] = {}
        for r in fresh:  # all of it first: dead times depend on the others
            saved = self._store.get(_key(r.cfg.name))
            record: dict[str, Any] = saved if isinstance(saved, dict) else {}
            r.energy_wh = finite_number(record.get("energy_wh")) or 0.0
            self._saved_energy[r.cfg.name] = r.energy_wh
            r.last_on_wall = finite_number(record.get("last_on"))
            r.last_off_wall = finite_number(record.get("last_off"))
            if r.last_off_wall is not None:
                # A wall clock that went backwards proves nothing: wait the whole min_off.
                r.last_off = now - max(0.0, wall - r.last_off_wall)
            was[r.cfg.name] = record.get("on") is True
            ends[r.cfg.name] = _saved_pulse(record, wall)
        for r in fresh:
            was_on, mode = was[r.cfg.name], r.cfg.power_on
            on = mode == "on" or (mode == "restore" and was_on)
            group = r.cfg.interlock
            pulse = ends[r.cfg.name]
            restored = on and mode == "restore" and was_on
            if restored and pulse is not None and pulse[0] <= 0:
                # Its pulse ended while the agent was down: it comes back as the pulse left it.
                on = False
                why = f"power-on {mode}: pulse of {pulse[1]:g} s ended while the agent was down"
                events.append(self._event(r, "off", why, wall))
            elif on and group is not None and group in holder:
                on = False
                why = f"power-on {mode}: interlock {group}: {holder[group]} is already on"
                events.append(self._event(r, "off" if was_on else "refused", why, wall))
            elif on and not (mode == "restore" and was_on):
                blocker = self._wait_reason(r, now, forced=False)
                if blocker is not None:
                    on = False
                    r.pending = _Pending(True, "power-on: on")
                    events.append(self._event(r, "deferred", f"{blocker}; power-on: on", wall))
            if on:
                # Re-energised now, whatever it was before the restart: min_on counts from here.
                r.on, r.last_on, r.last_on_wall = True, now, wall
                if restored and pulse is not None:  # the rest of the pulse it was in
                    r.pulse_end, r.pulse_s, r.commanded = now + pulse[0], pulse[1], pulse[2]
                else:
                    self._begin_pulse(r, None, now)
                events.append(self._event(r, "on", f"power-on: {mode}", wall))
                if group is not None:
                    holder[group] = r.cfg.name
            elif was_on:
                # It may have been on until a moment ago: its min_off starts now.
                r.last_off, r.last_off_wall = now, wall
        return events

    def request(
        self, name: str, on: bool, reason: str, pulse: Optional[float] = None
    ) -> list[Event]:
        """Asks for a relay on or off; replaces any request of it still waiting, and any pulse
        in force. `pulse`: on for that many seconds (from when it comes on, or from now if it is
        on already), then off by itself; a later request cancels it."""
        r = self._get(name)
        if r.unavailable is not None:
            return [self._event(r, "refused", f"{r.unavailable}; {reason}", kind="alarm")]
        if r.device is None:  # retired by a reconfiguration that could not be completed
            return [self._event(r, "refused", f"{name} was removed from the config; {reason}")]
        now = self._clock.monotonic()
        r.pending = None
        events: list[Event] = []
        if on:
            # The latest request in an interlock group wins over one still waiting.
            for other in self._others(r):
                if other.pending is not None and other.pending.on:
                    other.pending = None
                    why = f"interlock {r.cfg.interlock}: {name} requested on ({reason})"
                    events.append(self._event(other, "cancelled", why))
        if r.on == on:
            if on and (pulse is not None or r.commanded):
                self._begin_pulse(r, pulse, now)  # a new pulse, or a plain on ending one
                self._save(r)
                self._flush_if_read_back(r, now)
            return events
        return events + self._start(r, _Pending(on, reason, pulse=pulse if on else None), now)

    def tick(self) -> list[Event]:
        """Applies what time has allowed: pulse ends, dead times, deferred requests."""
        self._check_open()
        now = self._clock.monotonic()
        events, self._late_events = self._late_events, []
        events += self._retry(now)
        for r in self._relays.values():
            if r.pulse_end is not None and r.on and now >= r.pulse_end:
                events.append(self._switch(r, False, f"pulse: {r.pulse_s:g} s elapsed", now))
        for r in self._relays.values():
            p = r.pending
            if p is None or p.on == r.on:
                r.pending = None
                continue
            done, blocker = self._advance(r, replace(p, reason=f"{p.reason} (waited)"), now)
            events += done
            if blocker is None:
                r.pending = None
        if now - self._last_flush >= ENERGY_FLUSH_INTERVAL and (
            self._unsaved or any(r.on and r.cfg.rated_power_w > 0 for r in self._relays.values())
        ):
            for r in self._relays.values():
                self._save(r)
            self._flush(now)
        return events

    def safe_state(self, reason: str) -> list[Event]:
        """Every relay to its safe state now: past min_on, min_off and the chatter guard, never
        past an interlock (a safe 'on' waits for the group's dead time; tick() completes it)."""
        self._check_open()
        now = self._clock.monotonic()
        why = f"safe state: {reason}"
        events: list[Event] = []
        for r in self._relays.values():
            r.pending = None
        for r in self._relays.values():  # all offs first, so an interlocked 'on' sees them
            if r.cfg.safe_state == "off" and r.on:
                events.append(self._switch(r, False, why, now))
        for r in self._relays.values():
            if r.cfg.safe_state == "on" and not r.on and r.device is not None:
                events += self._start(r, _Pending(True, why, forced=True), now)
        return events

    def state(self, name: str) -> bool:
        return self._get(name).on

    def states(self) -> dict[str, bool]:
        return {name: r.on for name, r in self._relays.items()}

    def energy_wh(self, name: str) -> float:
        """Energy switched through the relay since its state was first saved: on-time x rating."""
        r = self._get(name)
        return r.energy_wh + self._running_wh(r, self._clock.monotonic())

    def saved_energy_wh(self, name: str) -> float:
        """The energy as last written to the card: what a restart resumes from, so never more
        than that (a switch not written at once, or a failed write, is not in it)."""
        return self._saved_energy.get(self._get(name).cfg.name, 0.0)

    def close(self) -> None:
        """Saves the state and releases the pins, switching nothing (that is safe_state's job).
        gpiozero returns a released pin to an input: the board's own pull decides from then."""
        if self._closed:
            return
        now = self._clock.monotonic()
        for r in self._relays.values():
            self._save(r)
        self._flush(now)
        self._closed = True
        self._close_devices()

    def __enter__(self) -> RelayBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The rules.

    def _start(self, r: _Relay, p: _Pending, now: float) -> list[Event]:
        events, blocker = self._advance(r, p, now)
        if blocker is not None:
            r.pending = p
            want = "on" if p.on else "off"
            events.append(self._event(r, "deferred", f"{blocker}; wanted {want}: {p.reason}"))
        return events

    def _advance(self, r: _Relay, p: _Pending, now: float) -> tuple[list[Event], Optional[str]]:
        """Takes every step towards p that the rules allow now; returns the switches made and
        what still blocks (None once done, or refused)."""
        if not p.on:
            left = self._min_on_left(r, now)
            if left > 0 and not p.forced:
                return [], f"min_on: {r.cfg.min_on:g} s, {left:.0f} s to go"
            return [self._switch(r, False, p.reason, now)], None
        limit = r.cfg.max_switches_per_hour
        if limit and not p.forced:
            while r.switches and r.switches[0] <= now - HOUR:
                r.switches.popleft()
            if len(r.switches) + 2 > limit:  # the on, and the off that must follow it
                why = (
                    f"chatter guard: {len(r.switches)} switches in the last hour, at most "
                    f"{limit}; refused on: {p.reason}"
                )
                return [self._event(r, "refused", why, kind="alarm")], None
        events: list[Event] = []
        blocker: Optional[str] = None
        for other in self._others(r):
            if not other.on:
                continue
            left = self._min_on_left(other, now)
            if left > 0 and not p.forced:
                blocker = blocker or (
                    f"interlock {r.cfg.interlock}: {other.cfg.name} has min_on "
                    f"{other.cfg.min_on:g} s, {left:.0f} s to go"
                )
                continue
            why = f"interlock {r.cfg.interlock}: {r.cfg.name} wanted on ({p.reason})"
            events.append(self._switch(other, False, why, now))
        blocker = blocker or self._wait_reason(r, now, p.forced)
        if blocker is None:
            events.append(self._switch(r, True, p.reason, now, p.pulse))
        return events, blocker

    def _wait_reason(self, r: _Relay, now: float, forced: bool) -> Optional[str]:
        """Why r, with every other member of its group off, may not come on yet."""
        others = self._others(r)
        offs = [o.last_off for o in others if o.last_off is not None]
        if offs:
            dead = max(o.cfg.interlock_dead_time for o in [r, *others])
            since = max(offs)
            if now - since < dead:
                left = since + dead - now
                return f"interlock {r.cfg.interlock}: dead time {dead:g} s, {left:.0f} s to go"
        if not forced and r.last_off is not None and now - r.last_off < r.cfg.min_off:
            left = r.last_off + r.cfg.min_off - now
            return f"min_off: {r.cfg.min_off:g} s, {left:.0f} s to go"
        return None

    def _min_on_left(self, r: _Relay, now: float) -> float:
        if r.on and r.last_on is not None and now - r.last_on < r.cfg.min_on:
            return r.last_on + r.cfg.min_on - now
        return 0.0

    def _others(self, r: _Relay) -> list[_Relay]:
        if r.cfg.interlock is None:
            return []
        return [o for o in self._groups[r.cfg.interlock] if o is not r]

    # Pins, bookkeeping and the store.

    def _switch(
        self, r: _Relay, on: bool, reason: str, now: float, pulse: Optional[float] = None
    ) -> Event:
        if on:
            r.device.on()
        else:
            r.device.off()
        wall = self._clock.time()
        self._fold_energy(r, now)  # at the old state's rate
        r.on, r.pending = on, None
        if on:
            r.last_on, r.last_on_wall = now, wall
            self._begin_pulse(r, pulse, now)
        else:
            r.last_off, r.last_off_wall = now, wall
            r.pulse_end, r.pulse_s, r.commanded = None, None, False
        r.switches.append(now)
        self._save(r)
        self._flush_if_read_back(r, now)
        return self._event(r, "on" if on else "off", reason, wall)

    def _flush_if_read_back(self, r: _Relay, now: float) -> None:
        """A relay whose saved state a restart reads for safety is written to the card at once
        (rare: min_off keeps it so); the others' switches wait for the next write, at most
        ENERGY_FLUSH_INTERVAL away (tick), so a room's lights and fans cost the card no sync of
        their own."""
        if r.cfg.name in self._sync_at_switch:
            self._flush(now)

    @staticmethod
    def _begin_pulse(r: _Relay, pulse: Optional[float], now: float) -> None:
        """The pulse in force from now: a command's, else the config's, else none."""
        r.commanded = pulse is not None
        r.pulse_s = pulse if pulse is not None else r.cfg.pulse
        r.pulse_end = now + r.pulse_s if r.pulse_s is not None else None

    def _running_wh(self, r: _Relay, now: float) -> float:
        return (now - r.energy_since) * r.cfg.rated_power_w / HOUR if r.on else 0.0

    def _fold_energy(self, r: _Relay, now: float) -> None:
        r.energy_wh += self._running_wh(r, now)
        r.energy_since = now

    def _save(self, r: _Relay) -> None:
        if r.unavailable is not None:
            return  # not known: the record of the last time it could be driven stands
        self._fold_energy(r, self._clock.monotonic())
        record: dict[str, Any] = {"on": r.on, "energy_wh": r.energy_wh}
        record.update(last_on=r.last_on_wall, last_off=r.last_off_wall)
        if r.on and r.pulse_end is not None and r.pulse_s is not None:
            # Wall time: the monotonic clock restarts with the machine.
            left = r.pulse_end - self._clock.monotonic()
            record["pulse"] = {
                "end": self._clock.time() + left, "seconds": r.pulse_s, "command": r.commanded,
            }  # fmt: skip
        self._store.set(_key(r.cfg.name), record)
        self._unsaved = True

    def _flush(self, now: float) -> None:
        self._last_flush = now
        if not self._store.flush():  # a failure is logged there; the relays carry on regardless
            return
        self._unsaved = False
        for name in self._relays:
            saved = self._store.get(_key(name))
            value = finite_number(saved.get("energy_wh")) if isinstance(saved, dict) else None
            self._saved_energy[name] = value or 0.0

    def _event(
        self, r: _Relay, state: str, reason: str, wall: Optional[float] = None, kind: str = "relay"
    ) -> Event:
        return Event(kind, r.cfg.name, state, reason, self._clock.time() if wall is None else wall)

    def _get(self, name: str) -> _Relay:
        self._check_open()
        try:
            return self._relays[name]
        except KeyError:
            raise KeyError(f"no relay named {name!r}") from None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the relay bank is closed")

    def _close_devices(self) -> None:
        for r in self._relays.values():
            if r.device is not None:
                r.device.close()
                r.device = None


def _key(name: str) -> str:
    return f"relay.{name}"


def _read_back_for_safety(c: RelayConfig, configs: Sequence[RelayConfig]) -> bool:
    """Whether a restart needs this relay's last switch from the card to keep a rule: its
    state for power_on "restore", when it went off for min_off (a relay saved "on" is held
    from the start, so an older record errs safe only if the "on" was written), when a group
    member went off for a dead time a restart does not outlast. Energy is not a reason: it is
    written at least every ENERGY_FLUSH_INTERVAL and published only once written."""
    if c.power_on == "restore" or c.min_off > 0:
        return True
    if c.interlock is None:
        return False
    group = [o for o in configs if o.interlock == c.interlock]
    return max(o.interlock_dead_time for o in group) > RESTART_GAP


def _saved_pulse(record: dict[str, Any], wall: float) -> Optional[tuple[float, float, bool]]:
    """(seconds left, pulse length, from a command) of the pulse a saved relay was in, or None.
    Never more left than the pulse's length: a wall clock that went backwards proves nothing."""
    saved = record.get("pulse")
    if not isinstance(saved, dict):
        return None
    end, length = finite_number(saved.get("end")), finite_number(saved.get("seconds"))
    if end is None or length is None or length <= 0:
        return None
    return min(end - wall, length), length, saved.get("command") is True

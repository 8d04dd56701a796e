"""`roomagent doctor`'s view of fault detection and optimum start: what the running agent last
wrote to analytics.json in its state directory (it writes it on every change, so this is current
without asking the agent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from agent.tools.doctor_checks import Result, failed, info, passed


def check_analytics(cfg: Any) -> list[Result]:
    from agent.analytics.service import STATE_FILE

    path = cfg.node.state_dir / STATE_FILE
    learning = cfg.room.optimum_start if cfg.room is not None else None
    if cfg.faults is None and learning is None:
        return []
    try:
        data = _read(path)
    except (OSError, ValueError) as e:
        return [info("faults", f"cannot read {path}: {e} (the agent starts it afresh)")]
    if data is None:
        if learning is None:
            return []  # the agent has not run with fault detection yet: nothing to tell
        data = {}
    results = []
    if cfg.faults is not None:
        active = (data.get("faults") or {}).get("active", [])
        if active:
            lines = "; ".join(f"{a['fault']} {a['subject']}: {a['reason']}" for a in active)
            results.append(failed("faults", f"{len(active)} active: {lines}",
                                  "see docs/analytics.md for what each fault means and what to "
                                  "check"))  # fmt: skip
        else:
            results.append(passed("faults", "none active"))
    if learning is not None:
        status = data.get("optimum_start_status") or {}
        if not status:
            results.append(info("optimum start", "nothing learned yet: the fixed lead of "
                                f"{learning.fixed_lead_minutes:g} min is used"))  # fmt: skip
        for zone, s in sorted(status.items()):
            learned = f"{s['warmups']} warm-ups learned" + (
                f" (fixed lead until {s['needed']})" if s["warmups"] < s["needed"] else ""
            )
            last = s.get("last_decision") or "no decision yet"
            nxt = s.get("next_decision") or "no session within the longest lead"
            results.append(info(f"optimum start {zone}", f"{learned}; next: {nxt}; last: {last}"))
    return results


def _read(path: Path) -> Optional[dict[str, Any]]:
    """The agent's state file, read without touching it (agent.common.state_store's format: a slot
    file, or the plain JSON of earlier versions); None when there is none yet."""
    from agent.common.slot_file import SlotFile, SlotFileError

    try:
        raw = SlotFile(path).read()
    except SlotFileError:
        raw = path.read_bytes()
    if raw is None:
        return None
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data

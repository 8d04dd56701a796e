"""`roomagent doctor`'s cadence check: does every device get sampled on its interval?

The running agent knows each device's achieved interval (agent.sensing.cadence) and names the
ones off their configured interval in its systemd status line; the doctor reads it from there
rather than logging in to the broker as the node, which would push the agent off it.
"""

from __future__ import annotations

from typing import Optional

from agent.sensing.runner import SLOW_MARK
from agent.tools.doctor_checks import Result, ServiceState, failed, passed

NAME = "cadence"


def check_cadence(service: ServiceState) -> Optional[Result]:
    """None while the agent is not running (the service row says so): nothing to judge."""
    if service.active != "active" or not service.status:
        return None
    _, mark, slow = service.status.partition(SLOW_MARK)
    if not mark:
        return passed(NAME, "every device is sampled on its configured interval (within 5 %)")
    return failed(
        NAME,
        f"sampled off their interval (achieved for configured): {slow}",
        "a device that fails is retried less often (see its state's error); otherwise its bus "
        "is overloaded: move a slow chip to another bus, or raise its interval",
    )

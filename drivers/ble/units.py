"""The unit of every value name the BLE decoders can return, read from the one quantity table
(drivers/quantities.py). A BTHome name repeated in one advertisement gets a suffix
(temperature_2): `base_name` strips it.
"""

from __future__ import annotations

import re
from typing import Optional

from drivers.quantities import TABLE

# name -> unit ("" for counts, states, identifiers and text)
UNITS: dict[str, str] = {name: row.unit.value for name, row in TABLE.items()}

_SUFFIX = re.compile(r"^(?P<base>[a-z0-9_]+?)_(?P<n>[2-9]|[1-9][0-9]+)(?P<steps>_steps)?$")


def base_name(name: str) -> str:
    """The name without its repeat number: temperature_2 -> temperature, dimmer_2_steps ->
    dimmer_steps."""
    if name in UNITS:
        return name
    match = _SUFFIX.match(name)
    if match is None:
        return name
    return match["base"] + (match["steps"] or "")


def repeat_of(name: str) -> str:
    """The repeat number of a name, "" for none: temperature_2 -> "2", dimmer_2_steps -> "2"."""
    if name in UNITS:
        return ""
    match = _SUFFIX.match(name)
    return "" if match is None else match["n"]


def unit_of(name: str) -> Optional[str]:
    """The unit of a decoded value's name, or None for a name no decoder returns."""
    return UNITS.get(base_name(name))

"""A "did you mean …?" for a misspelt key, driver, time zone or day: difflib's close matches."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
from typing import Optional

# difflib's default cutoff (0.6) finds 'interval' for 'intreval' and 'Europe/Berlin' for
# 'Europe/Berlni' but not unrelated words.
CUTOFF = 0.6


def closest(word: str, choices: Iterable[str]) -> Optional[str]:
    """The choice nearest to `word`, or None when nothing is near; case is ignored."""
    options = list(choices)
    folded = {c.lower(): c for c in options}
    if word.lower() in folded:
        return folded[word.lower()]
    found = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=CUTOFF)
    return folded[found[0]] if found else None


def hint(word: str, choices: Iterable[str]) -> str:
    """The words " - did you mean 'x'?", or "" when no choice is near."""
    match = closest(word, choices)
    return f" - did you mean {match!r}?" if match is not None and match != word else ""


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def timezone_problem(name: object) -> Optional[str]:
    """None when `name` is an IANA time zone this system knows, else what is wrong."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name:
        return f"must be an IANA time zone name such as 'Europe/London', got {name!r}"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return (f"unknown time zone {name!r}{hint(name, _zones())} (an IANA name such as "
                "'Europe/London')")  # fmt: skip
    return None

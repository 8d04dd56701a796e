"""How long the soak and fuzz tests run: ROOMAGENT_SOAK=N multiplies their sizes for a longer
run by hand; .ci/run shortens them on two legs."""

from __future__ import annotations

import os

SOAK = float(os.environ.get("ROOMAGENT_SOAK", "1"))

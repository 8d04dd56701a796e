"""`python -m agent ...` exactly, plus a record of the modules it had loaded when it exited.

    python -m benchmarks.agent_child MODULES_FILE run CONFIG --simulate ...

The footprint benchmark runs the agent through this so that the list of imported modules comes
from the very process whose memory it measured: evidence that bleak, requests and cryptography
stay unloaded for a config that does not use them.
"""

from __future__ import annotations

import atexit
import json
import runpy
import sys


def main() -> None:
    modules_file = sys.argv[1]

    def record() -> None:
        with open(modules_file, "w") as f:
            json.dump(sorted(sys.modules), f)

    atexit.register(record)
    sys.argv = ["agent", *sys.argv[2:]]
    runpy.run_module("agent", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Turns a freshly flashed Raspberry Pi OS card (its mounted boot partition) into a room node.

Runs on the installer's laptop with the checkout's Python environment (the one scripts/demo.sh
or scripts/test.sh sets up), e.g.:
    .venv-3.11/bin/python scripts/provision.py /media/$USER/bootfs --room firmware_configs/...
`--help` lists the options; docs/provisioning.md explains them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.provision.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""Provisioning: turns a freshly flashed Raspberry Pi OS SD card into a room node, offline.

Runs on the installer's laptop (scripts/provision.py); nothing here is imported by the agent.
docs/provisioning.md describes the whole flow and what each generation of the OS reads.
"""


class ProvisionError(Exception):
    """Bad input or an unusable card: the message says what and how to fix it."""

"""The pieces a Home Assistant discovery component is made of (agent.central.ha_discovery puts
them together): command topics, the on/off templates, a value template. Here, below room
control, so a control declares its own entities (agent.control.types.Published)."""

from __future__ import annotations

import json
from typing import Any

RELAY_TEMPLATE = "{{ 'ON' if value_json['on'] else 'OFF' }}"
ON_TEMPLATE = RELAY_TEMPLATE  # light groups and ventilation say "on" the same way


def command_topic(base: str, *path: str) -> str:
    """Where Home Assistant sends a command: ``<base>/cmd/relay/<name>`` and the like."""
    return "/".join((base, "cmd", *path))


def on_off(platform: str, name: str, state: str, command: str) -> dict[str, Any]:
    return {
        "p": platform,
        "name": name,
        "stat_t": state,
        # The light platform's name for the state template differs from the switch's.
        "stat_val_tpl" if platform == "light" else "val_tpl": RELAY_TEMPLATE,
        "cmd_t": command,
        "pl_on": "ON",
        "pl_off": "OFF",
    }


def value_template(table: str, key: str) -> str:
    # "" while the key is missing (a device down publishes no values): HA ignores an empty
    # state without logging a template warning. json.dumps quotes any name safely for Jinja.
    return f"{{{{ value_json['{table}'].get({json.dumps(key)}, '') }}}}"

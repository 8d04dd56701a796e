"""Home Assistant's MQTT abbreviations (homeassistant/components/mqtt/abbreviations.py): the
subset our discovery payloads may use, copied from HA's source, for the discovery tests."""

from __future__ import annotations

# HA's abbreviations.py: the entries this payload may use (component and root scope) ...
ABBREVIATIONS = {
    "act_t": "action_topic", "act_tpl": "action_template", "avty": "availability",
    "avty_mode": "availability_mode", "cmd_t": "command_topic", "cmps": "components",
    "curr_temp_t": "current_temperature_topic",
    "curr_temp_tpl": "current_temperature_template", "dev": "device", "dev_cla": "device_class",
    "max_temp": "max_temp", "min_temp": "min_temp", "mode_cmd_t": "mode_command_topic",
    "mode_stat_t": "mode_state_topic", "mode_stat_tpl": "mode_state_template",
    "modes": "modes", "name": "name", "o": "origin", "p": "platform", "pl_off": "payload_off",
    "pl_on": "payload_on", "pr_mode_cmd_t": "preset_mode_command_topic",
    "pr_mode_cmd_tpl": "preset_mode_command_template",
    "pr_mode_stat_t": "preset_mode_state_topic",
    "pr_mode_val_tpl": "preset_mode_value_template", "pr_modes": "preset_modes",
    "stat_cla": "state_class", "stat_t": "state_topic", "stat_val_tpl": "state_value_template",
    "sug_dsp_prc": "suggested_display_precision", "t": "topic",
    "temp_cmd_t": "temperature_command_topic", "temp_stat_t": "temperature_state_topic",
    "temp_stat_tpl": "temperature_state_template", "temp_unit": "temperature_unit",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
    "json_attr_t": "json_attributes_topic", "json_attr_tpl": "json_attributes_template",
    "ent_cat": "entity_category",
    "on_cmd_type": "on_command_type", "fx_cmd_t": "effect_command_topic",
    "fx_list": "effect_list", "fx_stat_t": "effect_state_topic",
    "fx_val_tpl": "effect_value_template", "pct_cmd_t": "percentage_command_topic",
    "pct_stat_t": "percentage_state_topic", "pct_val_tpl": "percentage_value_template",
    "spd_rng_min": "speed_range_min", "spd_rng_max": "speed_range_max",
}  # fmt: skip
# ... keys that have no abbreviation (so appear in full) ...
UNABBREVIATED = {"qos", "temp_step", "precision"}
# ... and DEVICE_ABBREVIATIONS / ORIGIN_ABBREVIATIONS.
DEVICE_ABBREVIATIONS = {"ids": "identifiers", "name": "name", "mf": "manufacturer",
                        "mdl": "model", "sw": "sw_version"}  # fmt: skip
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

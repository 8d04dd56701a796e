"""The room-control part of a node's config: [control], [[relays]], [[inputs]], [[zones]],
[[lights]], [[ventilation]] and [[scenes]]; reference in docs/config.md.

Each table's keys are the fields of its settings dataclass (agent/config/<section>.py, e.g.
ZoneConfig in zones.py), so a key is documented and validated in one place. Errors read like the
rest of the config's:
``room.toml: zones[0].deadband: must be > 0``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, TypeVar

from agent.config.inputs import InputConfig, validate_inputs
from agent.config.lights import LightConfig, check_light_references
from agent.config.relays import RelayConfig, validate_relays
from agent.config.scenes import SceneConfig, check_targets
from agent.config.schedule import WeeklySchedule
from agent.config.ventilation import VentilationConfig
from agent.config.zones import ZoneConfig

T = TypeVar("T")
# What a name must be wherever it becomes an MQTT topic level or a Home Assistant id.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Problems(Exception):
    """Several config errors at once (the loader reports them all)."""

    def __init__(self, errors: Sequence[Exception]) -> None:
        super().__init__("\n".join(map(str, errors)))
        self.errors = list(errors)


class RecordError(ValueError):
    """A bad record: the key path below the record (may be empty) and the problem."""

    def __init__(self, key: str, message: str) -> None:
        self.key, self.message = key, message
        super().__init__(message)


def parse_record(
    data: Any,
    cls: type[T],
    *,
    rename: Optional[dict[str, str]] = None,
    skip: Sequence[str] = (),
) -> tuple[T, dict[str, Any]]:
    """Builds cls (a dataclass) from one TOML table. `rename` maps TOML keys to field names;
    keys in `skip` are returned untouched (the caller parses them). Lists become tuples.
    Raises RecordError naming the key."""
    if not isinstance(data, dict):
        raise RecordError("", "must be a table")
    rename = rename or {}
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    known = {rename.get(k, k) for k in data} | set(skip)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in skip:
            extra[key] = value
            continue
        name = rename.get(key, key)
        if name not in fields:
            from agent.common.suggest import hint

            allowed = sorted(set(fields) | set(skip))
            near = hint(key, allowed)
            if near:
                raise RecordError(key, f"unknown key {key!r}{near}")
            raise RecordError(key, f"unknown key (known keys here: {', '.join(allowed)})")
        kwargs[name] = _convert(key, value, hints.get(name))
    missing = [
        n for n, f in fields.items()
        if n not in known and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    if missing:
        raise RecordError(missing[0], "is required")
    try:
        return cls(**kwargs), extra
    except (ValueError, TypeError) as e:
        field, _, rest = str(e).partition(":")
        if field.strip() in fields and rest:
            raise RecordError(field.strip(), rest.strip()) from None
        raise RecordError("", str(e)) from None


def _convert(key: str, value: Any, hint: Any) -> Any:
    text = str(hint)
    if isinstance(value, list):
        return tuple(value)
    if "float" in text and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if text in ("float", "<class 'float'>") and not isinstance(value, (int, float)):
        raise RecordError(key, f"must be a number, got {value!r}")
    if text in ("int", "<class 'int'>") and (not isinstance(value, int) or isinstance(value, bool)):
        raise RecordError(key, f"must be an integer, got {value!r}")
    if text in ("bool", "<class 'bool'>") and not isinstance(value, bool):
        raise RecordError(key, f"must be true or false, got {value!r}")
    if text in ("str", "<class 'str'>") and not isinstance(value, str):
        raise RecordError(key, f"must be a string, got {value!r}")
    return value


def parse_records(
    data: Any, section: str, parse_one: Callable[[Any], T], error: Callable[[str, str], Exception]
) -> tuple[T, ...]:
    """[[section]] → records; error(key_path, message) builds the config error to raise."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise error(section, "must be an array of tables ([[" + section + "]])")
    out, errors = [], []
    for i, item in enumerate(data):
        try:
            out.append(parse_one(item))
        except RecordError as e:  # the next records are still checked: all errors at once
            errors.append(error(f"{section}[{i}]" + (f".{e.key}" if e.key else ""), e.message))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise Problems(errors)
    return tuple(out)


# The control section as a whole --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ControlConfig:
    timezone: str = "UTC"  # the building's, for schedules (daylight saving handled)
    relays: tuple[RelayConfig, ...] = ()
    inputs: tuple[InputConfig, ...] = ()
    zones: tuple[ZoneConfig, ...] = ()
    # zone name -> its schedule
    schedules: Mapping[str, WeeklySchedule] = dataclasses.field(default_factory=dict)
    lights: tuple[LightConfig, ...] = ()
    ventilation: tuple[VentilationConfig, ...] = ()
    scenes: tuple[SceneConfig, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.relays or self.inputs)

    def relay_owners(self) -> dict[str, str]:
        """Relay name -> the control that runs it (such a relay takes no direct command)."""
        owners: dict[str, str] = {}
        for z in self.zones:
            for relay in (*z.heat_stages, *z.cool_stages):
                owners[relay] = f"zone {z.name!r} (cmd/zone/{z.name}/...)"
        for light in self.lights:
            for relay in light.relays:
                owners[relay] = f"lights {light.name!r} (cmd/lights/{light.name})"
        for v in self.ventilation:
            for relay in (v.relays,) if isinstance(v.relays, str) else v.relays:
                owners[relay] = f"ventilation {v.name!r}"
        return owners


def parse_control(
    data: dict[str, Any],
    error: Callable[[str, str], Exception],
    devices: Sequence[Any],
    presence: Sequence[str] = (),
    ble_measures: Optional[dict[str, Sequence[str]]] = None,
) -> ControlConfig:
    """All control sections of a config (already-loaded TOML); error(key, message) makes the
    loader's ConfigError. `devices` are the parsed DeviceConfigs, for sensor references;
    `presence` the names of the BLE presence groups, which a light group may use for
    occupancy like a motion input; `ble_measures` what each BLE device is configured to
    measure (its `quantities`), so a zone may regulate on a BLE thermometer."""
    from drivers import DRIVERS

    top = data.get("control", {})
    if not isinstance(top, dict):
        raise error("control", "must be a table")
    from agent.common.suggest import hint, timezone_problem

    errors: list[Exception] = []
    for key in top:
        if key not in ("timezone", "grid_emission_factor"):
            near = hint(key, ("timezone", "grid_emission_factor"))
            known = "unknown key (known keys here: grid_emission_factor, timezone)"
            errors.append(error(f"control.{key}", f"unknown key {key!r}{near}" if near else known))
    timezone = top.get("timezone", "UTC")
    # Checked here, not only when a schedule uses it: a typo would otherwise surface the day
    # someone adds a schedule.
    if problem := timezone_problem(timezone):
        errors.append(error("control.timezone", problem))
        timezone = "UTC"
    # Deprecated: the grid factor is [energy] grid_factor (agent/config/modbus.py folds it in).
    factor = top.get("grid_emission_factor", 0.0)
    if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor < 0:
        errors.append(
            error("control.grid_emission_factor", f"must be a number ≥ 0, got {factor!r}")
        )

    def section_records(section: str, parse_one: Callable[[Any], Any]) -> tuple[Any, ...]:
        try:
            return parse_records(data.get(section), section, parse_one, error)
        except Problems as p:
            errors.extend(p.errors)
        except Exception as e:  # the loader's ConfigError, made by `error`
            errors.append(e)
        return ()

    def one(cls: type[Any], **kw: Any) -> Callable[[Any], Any]:
        return lambda item: parse_record(item, cls, **kw)[0]

    relays = section_records("relays", one(RelayConfig))
    inputs = section_records("inputs", one(InputConfig))
    for section, items, validate in (("relays", relays, validate_relays),
                                     ("inputs", inputs, validate_inputs)):  # fmt: skip
        try:
            validate(items)
        except ValueError as e:
            errors.append(error(section, str(e)))

    schedules: dict[str, Any] = {}

    def zone(item: Any) -> Any:
        config, extra = parse_record(item, ZoneConfig, rename={"heat": "heat_stages",
                                     "cool": "cool_stages"}, skip=("schedule",))  # fmt: skip
        if "schedule" in extra:
            try:
                schedules[config.name] = WeeklySchedule(list(extra["schedule"]), timezone)
            except (ValueError, TypeError) as e:
                raise RecordError("schedule", str(e)) from None
        return config

    zones = section_records("zones", zone)
    lights = section_records("lights", one(LightConfig))
    ventilation = section_records("ventilation", one(VentilationConfig))
    scenes = section_records("scenes", one(SceneConfig))

    # Names become topic levels (relay/<name>, cmd/scene/<name>, ...) and discovery ids.
    for section, records in (("relays", relays), ("inputs", inputs), ("zones", zones),
                             ("lights", lights), ("ventilation", ventilation),
                             ("scenes", scenes)):  # fmt: skip
        seen: set[str] = set()
        for i, record in enumerate(records):
            if not NAME_RE.match(record.name):
                problem = ("must be 1-64 letters, digits, '-' or '_' (it becomes part of MQTT "
                           f"topics), got {record.name!r}")  # fmt: skip
                errors.append(error(f"{section}[{i}].name", problem))
            elif record.name in seen:
                errors.append(error(f"{section}[{i}].name", f"{record.name!r} is used twice"))
            seen.add(record.name)
    # The checks below compare sections: with a section missing they would only add echoes
    # ("no relay 'heat'") of the errors above.
    if errors:
        raise errors[0] if len(errors) == 1 else Problems(errors)

    # Cross-references: every name a control uses must exist, and no relay has two masters.
    relay_names = {r.name for r in relays}
    input_kinds = {i.name: i.kind for i in inputs}
    measures: dict[str, Sequence[str]] = {d.name: DRIVERS[d.driver].quantities for d in devices}
    measures.update(ble_measures or {})
    owner: dict[str, str] = {}

    def claim(key: str, relay: str, by: str) -> None:
        if relay not in relay_names:
            raise error(
                key, f"no relay {relay!r} (relays: {', '.join(sorted(relay_names)) or 'none'})"
            )
        if relay in owner:
            raise error(key, f"relay {relay!r} is already controlled by {owner[relay]}")
        owner[relay] = by

    def sensor(key: str, name: Optional[str], quantity: str) -> None:
        if name is not None and quantity not in measures.get(name, ()):
            raise error(key, f"no device {name!r} measuring {quantity}")

    for name in presence:
        if name in input_kinds:
            raise error("inputs", f"{name!r} names both an input and a BLE presence group")
    for i, z in enumerate(zones):
        for relay in (*z.heat_stages, *z.cool_stages):
            claim(f"zones[{i}]", relay, f"zone {z.name!r}")
        sensor(f"zones[{i}].sensor", z.sensor, "temperature")
    for i, light in enumerate(lights):
        for relay in light.relays:
            claim(f"lights[{i}].relays", relay, f"lights {light.name!r}")
        sensor(f"lights[{i}].daylight_sensor", light.daylight_sensor, "illuminance")
        try:
            check_light_references(light, input_kinds, presence)
        except ValueError as e:
            field, _, problem = str(e).partition(": ")
            raise error(f"lights[{i}].{field}", problem) from None
    for i, v in enumerate(ventilation):
        for relay in (v.relays,) if isinstance(v.relays, str) else v.relays:
            claim(f"ventilation[{i}].relays", relay, f"ventilation {v.name!r}")
        sensor(f"ventilation[{i}].co2_sensor", v.co2_sensor, "co2")
        sensor(f"ventilation[{i}].voc_sensor", v.voc_sensor, "voc_index")
    _check_scenes(scenes, zones, lights, ventilation, error)
    return ControlConfig(timezone, relays, inputs, zones, schedules, lights,
                         ventilation, scenes)  # fmt: skip


def _check_scenes(
    scenes: Sequence[Any],
    zones: Sequence[Any],
    lights: Sequence[Any],
    ventilation: Sequence[Any],
    error: Callable[[str, str], Exception],
) -> None:
    """Every scene target must exist and take its value, so a scene fails at load, not when a
    council session starts."""
    names = ({x.name for x in lights}, {z.name for z in zones}, {v.name for v in ventilation})
    for i, scene in enumerate(scenes):
        try:
            check_targets(scene, *names)
        except ValueError as e:
            raise error(f"scenes[{i}].targets", str(e)) from None

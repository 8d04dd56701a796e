"""Writes a node config (parsed TOML data, after merging) back out as TOML.

Python's tomllib only reads, and the agent needs no writer, so this covers what a node config
holds: tables, arrays of tables, strings, integers (I2C addresses in hex), floats, booleans and
arrays of those. Every result is parsed back and compared with its input, so a value it cannot
write faithfully is an error here, never a different config on the Pi.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 in CI
    import tomli as tomllib

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
HEX_KEYS = frozenset({"address"})  # how people write I2C addresses


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    out: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    _table(out, (), data)
    text = "\n".join(out).strip("\n") + "\n"
    if tomllib.loads(text) != data:
        raise ValueError("internal error: the TOML written does not read back the same")
    return text


def _is_table(v: Any) -> bool:
    return isinstance(v, Mapping)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def _table(out: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    for k, v in table.items():
        if not _is_table(v) and not _is_table_array(v):
            out.append(f"{_key(k)} = {_value(v, k)}")
    for k, v in table.items():
        sub = (*path, k)
        name = ".".join(_key(p) for p in sub)
        if _is_table(v):
            out += ["", f"[{name}]"]
            _table(out, sub, v)
        elif _is_table_array(v):
            for item in v:
                out += ["", f"[[{name}]]"]
                _table(out, sub, item)


def _key(k: str) -> str:
    return k if BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON's escapes are TOML's, except that TOML also forbids a raw DEL.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v: Any, key: str = "") -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"0x{v:02x}" if key in HEX_KEYS and v >= 0 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(x, k)}" for k, x in v.items()) + "}"
    raise ValueError(f"cannot write {type(v).__name__} as TOML")

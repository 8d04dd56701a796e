"""The node's config and credentials: a room profile, the site inventory's settings for this
node, and the files given on the command line, merged and validated as the agent will read them.

The site inventory (TOML, docs/provisioning.md#site-inventory) maps node ids to room profiles:

    [site]
    country = "GB"
    ca = "certs/ca.crt"                      # credentials every node gets
    [site.override.broker]                   # merged into every node's config
    host = "mqtt.townhall.example"

    [[nodes]]
    id = "chamber"
    profile = "council-chamber"              # firmware_configs/council-chamber.toml
    password_file = "secrets/chamber.password"
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 in CI
    import tomli as tomllib

from agent.config import schema as config_mod
from agent.config.schema import DEFAULT_STATE_DIR, ConfigError
from agent.config.table import Table, name_check
from agent.provision import ProvisionError
from agent.provision.toml_write import dumps

REPO = Path(__file__).resolve().parents[2]
CONFIG_NAME = "roomagent.toml"
# The room profiles' stand-in for the site's broker (firmware_configs/*.toml): a card must not
# leave with it.
PLACEHOLDER_BROKERS = frozenset({"mqtt.example.org"})


@dataclass(frozen=True)
class Credential:
    name: str  # the option's and the inventory key's name
    key: tuple[str, ...]  # where the config names the file
    file: str  # its name next to the config, on the card and in /etc/roomagent


CREDENTIALS = (
    Credential("ca", ("broker", "tls", "ca"), "ca.crt"),
    Credential("cert", ("broker", "tls", "cert"), "client.crt"),
    Credential("key", ("broker", "tls", "key"), "client.key"),
    Credential("password_file", ("broker", "password_file"), "mqtt-password"),
    Credential("registration_ca", ("registration", "ca"), "registration-ca.crt"),
    Credential("registration_token", ("registration", "token_file"), "registration-token"),
)
CREDENTIAL_NAMES = tuple(c.name for c in CREDENTIALS)


@dataclass(frozen=True)
class NodeSpec:
    """Everything that makes one node's config, before merging."""

    profile: Path
    node_id: Optional[str] = None  # None: the profile's node.id
    name: Optional[str] = None
    hostname: Optional[str] = None
    credentials: Mapping[str, Path] = field(default_factory=dict)
    registration_url: Optional[str] = None
    overrides: tuple[Mapping[str, Any], ...] = ()
    sources: tuple[Path, ...] = ()  # files it came from, named in the config's header
    allow_plain_password: bool = False  # accept broker.password_file without broker.tls


@dataclass(frozen=True)
class NodeFiles:
    node_id: str
    hostname: str
    config: str  # roomagent.toml
    files: Mapping[str, bytes]  # credential file name -> content
    simulate: bool


@dataclass(frozen=True)
class Site:
    """The parts of an inventory that are not per node."""

    path: Path
    country: Optional[str]
    user: Optional[str]
    ssh_key: Optional[Path]


def load_inventory(path: Path, node_id: str) -> tuple[Site, NodeSpec]:
    file = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ProvisionError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ProvisionError(f"{path}: not valid TOML: {e}") from None
    base = path.resolve().parent
    try:
        root = Table(data, "", file)
        site_t = root.table("site")
        profiles = base / site_t.get("profiles", str, str(REPO / "firmware_configs"))
        country = site_t.get("country", str, None)
        user = site_t.get("user", str, None)
        ssh_key = site_t.get("ssh_key", str, None)
        site_creds = _credentials(site_t, base)
        site_url = site_t.get("registration_url", str, None)
        site_override = site_t.get("override", dict, {})
        site_t.finish()
        root.used.add("nodes")
        nodes = data.get("nodes", [])
        if not isinstance(nodes, list):
            raise root.error("nodes", "must be an array of tables ([[nodes]])")
        root.finish()
        ids: list[str] = []
        spec: Optional[NodeSpec] = None
        for i, raw in enumerate(nodes):
            t = Table(raw, f"nodes[{i}]", file)
            nid = t.get("id", str, check=name_check)
            if nid in ids:
                raise t.error("id", f"{nid!r} is already used by nodes[{ids.index(nid)}]")
            ids.append(nid)
            profile = t.get("profile", str)
            name = t.get("name", str, None)
            hostname = t.get("hostname", str, None)
            creds = {**site_creds, **_credentials(t, base)}
            url = t.get("registration_url", str, site_url)
            override = t.get("override", dict, {})
            t.finish()
            if nid == node_id:
                spec = NodeSpec(
                    profile=_profile(profile, profiles, base, f"{file}: nodes[{i}].profile"),
                    node_id=nid,
                    name=name,
                    hostname=hostname,
                    credentials=creds,
                    registration_url=url,
                    overrides=(site_override, override),
                    sources=(path,),
                )
    except ConfigError as e:
        raise ProvisionError(str(e)) from None
    if spec is None:
        raise ProvisionError(
            f"{path}: no node {node_id!r} in the inventory (nodes: {', '.join(ids) or 'none'})"
        )
    site = Site(path, country, user, base / ssh_key if ssh_key else None)
    return site, spec


def _credentials(t: Table, base: Path) -> dict[str, Path]:
    found = {}
    for name in CREDENTIAL_NAMES:
        value = t.get(name, str, None)
        if value is not None:
            found[name] = base / value
    return found


def _profile(profile: str, profiles: Path, base: Path, where: str) -> Path:
    candidates = [base / profile, profiles / profile, profiles / f"{profile}.toml"]
    for c in candidates:
        if c.is_file():
            return c
    known = sorted(p.stem for p in profiles.glob("*.toml")) if profiles.is_dir() else []
    raise ProvisionError(
        f"{where}: no profile {profile!r} (looked in {profiles}; profiles there: "
        f"{', '.join(known) or 'none'})"
    )


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; anything else (values, arrays) is replaced."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def compose(spec: NodeSpec) -> NodeFiles:
    """The node's config and credential files, validated by agent.config.schema as the Pi will read
    them from /etc/roomagent. Raises ProvisionError naming the source and the key."""
    try:
        with open(spec.profile, "rb") as f:
            data: dict[str, Any] = tomllib.load(f)
    except OSError as e:
        raise ProvisionError(f"{spec.profile}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ProvisionError(f"{spec.profile}: not valid TOML: {e}") from None
    for override in spec.overrides:
        data = merge(data, override)
    node = _sub(data, ("node",))
    if spec.node_id is not None:
        node["id"] = spec.node_id
    if spec.name is not None:
        node["name"] = spec.name
    node_id = node.get("id")
    if not isinstance(node_id, str):
        raise ProvisionError(f"{spec.profile}: node.id is required (or give --node-id)")
    # The hardened unit lets the agent write only its StateDirectory.
    buffer = data.get("buffer", {})
    buffer_path = buffer.get("path") if isinstance(buffer, dict) else None
    if buffer_path is not None and not str(buffer_path).startswith(f"{DEFAULT_STATE_DIR}/"):
        raise ProvisionError(
            f"{spec.profile}: buffer.path = {buffer_path!r}: on a Pi the buffer must be under "
            f"{DEFAULT_STATE_DIR} (the service may write nowhere else); remove the key"
        )
    node["state_dir"] = str(DEFAULT_STATE_DIR)
    files = _place_credentials(data, spec, node_id)
    _check_broker(data, spec)
    source = ", ".join(_shown(p) for p in (spec.profile, *spec.sources))
    header = (
        f"roomagent node {node_id}, written by scripts/provision.py from {source}.\n"
        "Change those files and provision again rather than editing this one;\n"
        "the profile's comments say what each part is for. Keys: docs/config.md."
    )
    try:
        text = dumps(data, header)
    except ValueError as e:
        raise ProvisionError(f"{source}: {e}") from None
    _validate(text, files, source)
    hostname = spec.hostname or node_id.lower().replace("_", "-")
    return NodeFiles(node_id, hostname, text, files, bool(node.get("simulate", False)))


def _sub(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for k in path:
        v = data.setdefault(k, {})
        if not isinstance(v, dict):
            raise ProvisionError(f"{'.'.join(path)} must be a table")
        data = v
    return data


def _place_credentials(data: dict[str, Any], spec: NodeSpec, node_id: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    url = spec.registration_url
    if url is not None:
        _sub(data, ("registration",))["url"] = url
    for c in CREDENTIALS:
        table = data
        for k in c.key[:-1]:
            table = table.get(k, {}) if isinstance(table, dict) else {}
        given = spec.credentials.get(c.name)
        if given is None:
            if isinstance(table, dict) and c.key[-1] in table:
                raise ProvisionError(
                    f"{spec.profile}: {'.'.join(c.key)} = {table[c.key[-1]]!r} names a file on "
                    f"the Pi; give it with --{c.name.replace('_', '-')} FILE (or {c.name} in the "
                    "inventory) and provisioning puts it there"
                )
            continue
        if c.key[0] == "registration" and "registration" not in data:
            raise ProvisionError(
                f"--{c.name.replace('_', '-')} needs a registration URL "
                "(--registration-url, or registration_url in the inventory)"
            )
        try:
            files[c.file] = given.read_bytes()
        except OSError as e:
            raise ProvisionError(f"--{c.name.replace('_', '-')} {given}: {e.strerror}") from None
        _sub(data, c.key[:-1])[c.key[-1]] = c.file
    broker = data.get("broker", {})
    if "password_file" in broker and "username" not in broker:
        broker["username"] = node_id  # docs/security.md: a node logs in with its node id
    return files


def _check_broker(data: dict[str, Any], spec: NodeSpec) -> None:
    broker = data.get("broker", {})
    if not isinstance(broker, dict):
        return  # the config's own validation names it
    host = broker.get("host", "localhost")
    if host in PLACEHOLDER_BROKERS:
        raise ProvisionError(
            f"{spec.profile}: broker.host is the profile's placeholder {host!r}: give the site's "
            "broker with --broker HOST[:PORT] (or [site.override.broker] host in the inventory)"
        )
    if "password_file" in broker and "tls" not in broker and not spec.allow_plain_password:
        raise ProvisionError(
            f"the node's MQTT password would cross the network in clear to {host}: give the "
            "broker's CA with --ca (TLS; docs/security.md), or --allow-plain-password for a "
            "lab broker"
        )


def _validate(text: str, files: Mapping[str, bytes], source: str) -> None:
    """Writes the node's /etc/roomagent to a temporary directory and loads it as the agent
    does: every key, every file it names, and their permissions."""
    with tempfile.TemporaryDirectory(prefix="roomagent-provision-") as d:
        staging = Path(d)
        for name, content in {**files, CONFIG_NAME: text.encode()}.items():
            fd = os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(content)
        try:
            config_mod.load(staging / CONFIG_NAME)
        except ConfigError as e:
            where = f"{e.key}: " if e.key else ""
            message = e.message.replace(str(staging), "/etc/roomagent")
            raise ProvisionError(f"the node config from {source}: {where}{message}") from None


def _shown(p: Path) -> str:
    """Not relative to the working directory: the card must not depend on where it ran."""
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p.resolve())

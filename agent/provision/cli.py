"""scripts/provision.py: turns a freshly flashed Raspberry Pi OS card into a room node.

    scripts/provision.py BOOT --room firmware_configs/meeting-room.toml --node-id room-2-14 \\
        --user installer --ssh-key ~/.ssh/id_ed25519.pub \\
        --wifi-ssid "Site WiFi" --wifi-psk-file psk.txt --country GB \\
        --password-file room-2-14.password --ca ca.crt --wheelhouse site-wheels/
    scripts/provision.py BOOT --inventory site.toml --node chamber ... [--dry-run]

Everything is read and checked first (config, key, Wi-Fi, the card, the wheels); only then is
the card written. docs/provisioning.md walks through it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from agent.provision import ProvisionError
from agent.provision.boot import (
    FIRSTRUN,
    BootPartition,
    detect,
    edit_cmdline,
    enable_i2c_and_bluetooth,
)
from agent.provision.node import CONFIG_NAME, CREDENTIAL_NAMES, NodeFiles, NodeSpec, compose
from agent.provision.node import load_inventory as load_site_inventory
from agent.provision.osfiles import (
    PAYLOAD,
    System,
    WiFi,
    check_country,
    check_hostname,
    check_ssh_key,
    check_ssid,
    check_user,
    firstrun_sh,
    meta_data,
    network_config,
    user_data,
    wpa_psk,
)
from agent.provision.plan import Plan
from agent.provision.wheels import Target, build_agent_wheel, download

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
# Copied into roomagent/ on the card: the on-device installer and what it needs.
INSTALLER = (("install.sh", 0o755), ("firstboot.sh", 0o755), ("ready_check.py", 0o644),
             ("roomagent.service", 0o644), ("roomagent-firstboot.service", 0o644))  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="provision.py",
        description="Write what a room's Pi needs for its first boot onto a freshly flashed "
        "Raspberry Pi OS card (Bookworm or Trixie), offline.",
    )
    p.add_argument("boot", type=Path, help="the card's mounted boot partition (e.g. .../bootfs)")
    room = p.add_argument_group("the node")
    room.add_argument("--room", type=Path, help="the room's config (a firmware_configs/ profile)")
    room.add_argument(
        "--inventory", type=Path, help="site inventory (TOML) mapping node ids to rooms"
    )
    room.add_argument("--node", help="with --inventory: which node this card is for")
    room.add_argument("--node-id", help="with --room: node.id (default: the room config's)")
    room.add_argument("--name", help="node.name, e.g. 'Room 2.14'")
    room.add_argument("--hostname", help="host name (default: from the node id)")
    room.add_argument(
        "--broker", metavar="HOST[:PORT]", help="the site's MQTT broker (not the placeholder)"
    )
    room.add_argument(
        "--allow-plain-password", action="store_true",
        help="accept an MQTT password sent without TLS (a lab, never a site)",
    )  # fmt: skip
    creds = p.add_argument_group("credentials (files; written next to the node's config)")
    helps = {
        "ca": "CA of the broker's certificate (enables TLS)",
        "cert": "the node's client certificate (mutual TLS), with --key",
        "key": "its private key",
        "password_file": "the node's MQTT password (user name: the node id)",
        "registration_ca": "CA of the site inventory's certificate",
        "registration_token": "bearer token for the site inventory",
    }
    for name in CREDENTIAL_NAMES:
        creds.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=Path, metavar="FILE", help=helps[name]
        )
    creds.add_argument("--registration-url", help="site inventory to register with (https://)")
    system = p.add_argument_group("the Pi's system")
    system.add_argument("--user", help="the installer's login (SSH key only, no password)")
    system.add_argument("--ssh-key", type=Path, metavar="FILE", help="its public key (.pub)")
    system.add_argument("--wifi-ssid", help="Wi-Fi network (or --ethernet-only)")
    system.add_argument(
        "--wifi-psk-file", type=Path, metavar="FILE", help="the Wi-Fi passphrase (else asked for)"
    )
    system.add_argument("--ethernet-only", action="store_true", help="no Wi-Fi")
    system.add_argument("--country", help="Wi-Fi country, ISO 3166-1 (GB, FR, DE, ...)")
    system.add_argument("--os", choices=["bookworm", "trixie"], help="override the detection")
    wheels = p.add_argument_group("wheels")
    wheels.add_argument(
        "--wheelhouse", type=Path, action="append", default=[], metavar="DIR",
        help="prebuilt wheels for the Pi (repeatable), searched first",
    )  # fmt: skip
    wheels.add_argument(
        "--offline", action="store_true", help="use only --wheelhouse folders, not PyPI"
    )
    wheels.add_argument(
        "--agent-wheel", type=Path, metavar="FILE",
        help="this roomagent wheel instead of one built from the checkout",
    )  # fmt: skip
    wheels.add_argument("--arch", default="aarch64", help="the Pi's machine (default aarch64)")
    wheels.add_argument(
        "--python-version", help="the Pi's Python, X.Y.Z (default: the OS generation's)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="show what would be written; write nothing"
    )
    return p


def log(line: str) -> None:
    print(line, flush=True)


Defaults = tuple[Optional[str], Optional[str], Optional[Path]]  # country, user, SSH key


def broker_override(text: Optional[str]) -> tuple[dict[str, Any], ...]:
    """--broker HOST[:PORT] as a config override ([broker] host, port)."""
    if text is None:
        return ()
    if text.startswith("["):  # [IPv6]:PORT
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest or ""
        bad_port = bool(rest) and not rest.startswith(":")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:  # no port, or an IPv6 address without brackets
            host, port = text, ""
        bad_port = bool(sep) and not port and ":" not in host
    if not host or bad_port or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ProvisionError(f"--broker must be HOST or HOST:PORT, e.g. mqtt.site.lan:8883, "
                             f"got {text!r}")  # fmt: skip
    broker: dict[str, Any] = {"host": host}
    if port:
        broker["port"] = int(port)
    return ({"broker": broker},)


def node_spec(args: argparse.Namespace) -> tuple[NodeSpec, Defaults]:
    """The node's spec, plus the inventory's defaults for country, user and SSH key."""
    cli_creds = {n: getattr(args, n) for n in CREDENTIAL_NAMES if getattr(args, n) is not None}
    cli_overrides = broker_override(args.broker)
    if args.inventory is not None:
        if args.room is not None or args.node is None:
            raise ProvisionError("give --inventory FILE --node ID, or --room FILE (not both)")
        site, spec = load_site_inventory(args.inventory, args.node)
        spec = NodeSpec(
            profile=spec.profile,
            node_id=spec.node_id,
            name=args.name or spec.name,
            hostname=args.hostname or spec.hostname,
            credentials={**spec.credentials, **cli_creds},
            registration_url=args.registration_url or spec.registration_url,
            overrides=(*spec.overrides, *cli_overrides),
            sources=spec.sources,
            allow_plain_password=args.allow_plain_password,
        )
        return spec, (site.country, site.user, site.ssh_key)
    if args.room is None:
        raise ProvisionError("give --room FILE (a room config) or --inventory FILE --node ID")
    spec = NodeSpec(
        profile=args.room,
        node_id=args.node_id,
        name=args.name,
        hostname=args.hostname,
        credentials=cli_creds,
        registration_url=args.registration_url,
        overrides=cli_overrides,
        allow_plain_password=args.allow_plain_password,
    )
    return spec, (None, None, None)


def system_settings(
    args: argparse.Namespace, node: NodeFiles, country: Optional[str], user: Optional[str],
    ssh_key: Optional[Path],
) -> System:  # fmt: skip
    user = args.user or user
    if user is None:
        raise ProvisionError("give --user NAME: the installer's login on the Pi")
    key_file = args.ssh_key or ssh_key
    if key_file is None:
        raise ProvisionError("give --ssh-key FILE: the installer's SSH public key (.pub)")
    try:
        key = check_ssh_key(key_file.read_text(), str(key_file))
    except OSError as e:
        raise ProvisionError(f"--ssh-key {key_file}: {e.strerror}") from None
    country = args.country or country
    if country is not None:
        check_country(country)
    wifi = None
    if args.ethernet_only == (args.wifi_ssid is not None):
        raise ProvisionError("give --wifi-ssid SSID (and its passphrase), or --ethernet-only")
    if args.wifi_ssid is not None:
        if country is None:
            raise ProvisionError("Wi-Fi needs --country (the regulatory domain, e.g. GB)")
        if args.wifi_psk_file is not None:
            try:
                passphrase = args.wifi_psk_file.read_text().rstrip("\r\n")
            except OSError as e:
                raise ProvisionError(
                    f"--wifi-psk-file {args.wifi_psk_file}: {e.strerror}"
                ) from None
        elif sys.stdin.isatty():
            passphrase = getpass.getpass(f"Wi-Fi passphrase for {args.wifi_ssid!r}: ")
        else:
            raise ProvisionError("give --wifi-psk-file FILE (no terminal to ask on)")
        ssid = check_ssid(args.wifi_ssid)
        wifi = WiFi(ssid, wpa_psk(passphrase, ssid), country)
    hostname = check_hostname(node.hostname)
    return System(hostname, check_user(user), key, wifi, country)


def make_plan(card: BootPartition, node: NodeFiles, system: System, wheels: list[Path]) -> Plan:
    plan = Plan(card.path, owned=(PAYLOAD,))
    boot = card.path
    config_txt = (boot / "config.txt").read_text(errors="surrogateescape")
    plan.add("config.txt", 0o644, enable_i2c_and_bluetooth(config_txt), "I2C on, Bluetooth not off")
    cmdline = (boot / "cmdline.txt").read_text(errors="surrogateescape")
    firstrun = card.generation.init == "firstrun"
    plan.add("cmdline.txt", 0o644, edit_cmdline(cmdline, firstrun=firstrun, regdom=system.country))
    # The Wi-Fi key is a secret like the others: owner only where the card keeps modes.
    secret = system.wifi is not None
    if firstrun:
        plan.add(
            Path(FIRSTRUN).name,
            0o700 if secret else 0o755,
            firstrun_sh(system, node.node_id),
            "run once by systemd.run=" + ("; holds the Wi-Fi key" if secret else ""),
        )
    else:
        ud = user_data(system, node.node_id)
        nc = network_config(system)
        plan.add("user-data", 0o644, ud, "cloud-init")
        note = "cloud-init, netplan v2" + ("; holds the Wi-Fi key" if secret else "")
        plan.add("network-config", 0o600 if secret else 0o644, nc, note)
        plan.add("meta-data", 0o644, meta_data(system, ud, nc), "cloud-init NoCloud")
    plan.add(f"{PAYLOAD}/README.txt", 0o644, readme(node, card))
    for name, mode in INSTALLER:
        plan.copy(f"{PAYLOAD}/{name}", mode, SCRIPTS / name)
    for doc in sorted((REPO / "docs").glob("*.md")):
        plan.copy(f"{PAYLOAD}/docs/{doc.name}", 0o644, doc)
    plan.add(f"{PAYLOAD}/etc/{CONFIG_NAME}", 0o600, node.config, "the node's config, validated")
    for name, content in sorted(node.files.items()):
        plan.add(f"{PAYLOAD}/etc/{name}", 0o600, content, "secret until first boot removes it")
    for wheel in wheels:
        plan.copy(f"{PAYLOAD}/wheels/{wheel.name}", 0o644, wheel)
    return plan


def readme(node: NodeFiles, card: BootPartition) -> str:
    return (
        f"roomagent for node {node.node_id} (host name {node.hostname}), Raspberry Pi OS "
        f"{card.generation.name.capitalize()}.\n\n"
        "Written by roomagent's scripts/provision.py. At first boot the Pi installs the agent\n"
        "from wheels/ with no network (firstboot.sh, install.sh), takes its config and\n"
        "credentials from etc/, starts the roomagent service, then deletes etc/ and wheels/\n"
        "from this card. Until then etc/ holds secrets: keep the card safe.\n"
        "docs/provisioning.md says more.\n"
    )


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ProvisionError as e:
        print(f"provision: {e}", file=sys.stderr)
        print("provision: nothing was written to the card", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    spec, (country, user, ssh_key) = node_spec(args)
    log(f"==> node config from {spec.profile}")
    node = compose(spec)
    log(f"    node {node.node_id!r}: valid ({len(node.files)} credential files)")
    if node.simulate:
        log("    note: node.simulate = true: the Pi will read simulated chips, not real ones")
    system = system_settings(args, node, country, user, ssh_key)
    card = detect(args.boot, args.os)
    log(f"==> {card.path}: Raspberry Pi OS {card.generation.name} ({card.why})")
    target = Target(args.arch, args.python_version or card.generation.python, card.generation.glibc)
    for w in args.wheelhouse:
        if not w.is_dir():
            raise ProvisionError(f"--wheelhouse {w}: no such directory")
    if args.dry_run:  # a preview: nothing built, nothing downloaded, nothing written
        # The card's wheels stand in for the ones a real run would fetch, so they are not
        # shown as removed.
        on_card = sorted((card.path / PAYLOAD / "wheels").glob("*.whl"))
        plan = make_plan(card, node, system, on_card)
        log(f"==> --dry-run: what would be written to {card.path} (nothing is)")
        plan.describe(log)
        log(f"    wheels: not built or downloaded in a dry run; a real run puts the agent and "
            f"its dependencies for {target.arch}, Python {target.python} in "
            f"{PAYLOAD}/wheels/")  # fmt: skip
        return 0
    with tempfile.TemporaryDirectory(prefix="roomagent-wheels-") as d:
        staging = Path(d)
        if args.agent_wheel is not None:
            if not args.agent_wheel.is_file():
                raise ProvisionError(f"--agent-wheel {args.agent_wheel}: no such file")
            agent_wheel = args.agent_wheel
        else:
            (staging / "build").mkdir()
            agent_wheel = build_agent_wheel(
                staging / "build", tuple(args.wheelhouse), args.offline, log
            )
        (staging / "wheels").mkdir()
        wheels = download(
            target, agent_wheel, tuple(args.wheelhouse), args.offline, staging / "wheels", log
        )
        total = sum(w.stat().st_size for w in wheels)
        log(f"    {len(wheels)} wheels, {total / 1e6:.1f} MB")
        plan = make_plan(card, node, system, wheels)
        log(f"==> writing to {card.path}")
        try:
            changes = plan.apply(log)
        except OSError as e:
            print(f"provision: writing to the card failed: {e}", file=sys.stderr)
            print("provision: the card may be half written; fix that and run this again",
                  file=sys.stderr)  # fmt: skip
            return 1
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "remove")}
    unchanged = sum(1 for c in changes if c.action == "unchanged")
    log(f"    {counts['create']} created, {counts['update']} updated, {counts['remove']} removed, "
        f"{unchanged} already as wanted")  # fmt: skip
    log(
        f"==> card ready for {node.node_id}: eject it, put it in the Pi and power on. "
        f"First boot takes a few minutes; then: ssh {system.user}@{system.hostname}.local"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the OS itself reads at first boot: host name, the installer's user and SSH key, Wi-Fi.

Bookworm: firstrun.sh, run once through `systemd.run=` as Raspberry Pi Imager's is, using the
same helpers Imager's uses (raspberrypi-sys-mods' imager_custom, userconf-pi's userconf) with a
plain fallback. Trixie: cloud-init's NoCloud seed (user-data, network-config in netplan v2
form, meta-data). Both then arm the roomagent first-boot unit from the card
(roomagent/firstboot.sh --arm), which installs the agent offline on the next boot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import struct
from dataclasses import dataclass
from typing import Optional

from agent.provision import ProvisionError

PAYLOAD = "roomagent"  # our folder on the boot partition
BOOT_MOUNT = "/boot/firmware"  # where Bookworm and Trixie mount the boot partition
# The installer's groups, as Imager gives the first user (i2c and gpio for the tools).
USER_GROUPS = ("users", "adm", "dialout", "audio", "netdev", "video", "plugdev", "input",
               "gpio", "spi", "i2c", "sudo")  # fmt: skip
HOSTNAME_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")  # one RFC 1123 label
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # Debian's adduser default NAME_REGEX
RESERVED_USERS = frozenset({"root", "roomagent", "daemon", "nobody"})
SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                 "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
                 "sk-ecdsa-sha2-nistp256@openssh.com")  # fmt: skip
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2, as cfg80211 expects


@dataclass(frozen=True)
class WiFi:
    ssid: str
    psk: str  # the 256-bit pre-shared key, 64 hex digits: the passphrase is not stored
    country: str


@dataclass(frozen=True)
class System:
    hostname: str
    user: str
    ssh_key: str
    wifi: Optional[WiFi]  # None: Ethernet only
    country: Optional[str]


def wpa_psk(passphrase: str, ssid: str) -> str:
    """IEEE 802.11i-2004 H.4: PSK = PBKDF2(HMAC-SHA1, passphrase, SSID, 4096 rounds, 256 bits).
    A 64-hex-digit input is already a PSK and is kept."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", passphrase):
        return passphrase.lower()
    if not 8 <= len(passphrase) <= 63 or not all(32 <= ord(c) <= 126 for c in passphrase):
        raise ProvisionError(
            "Wi-Fi passphrase: must be 8 to 63 printable ASCII characters (or a 64-hex-digit PSK)"
        )
    key = hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32)
    return key.hex()


def check_ssid(ssid: str) -> str:
    if not 1 <= len(ssid.encode()) <= 32:
        raise ProvisionError(f"Wi-Fi SSID: must be 1 to 32 bytes, got {len(ssid.encode())}")
    if any(ord(c) < 32 for c in ssid):
        raise ProvisionError("Wi-Fi SSID: must not contain control characters")
    return ssid


def check_country(country: str) -> str:
    if not COUNTRY_RE.match(country):
        raise ProvisionError(
            f"--country: must be two capital letters (ISO 3166-1), got {country!r}"
        )
    return country


def check_hostname(name: str) -> str:
    if not HOSTNAME_RE.match(name):
        raise ProvisionError(
            f"host name {name!r}: must be 1-63 lower-case letters, digits or '-', not starting or "
            "ending with '-' (give --hostname, or hostname in the inventory)"
        )
    return name


def check_user(name: str) -> str:
    if not USER_RE.match(name) or name in RESERVED_USERS:
        raise ProvisionError(
            f"--user {name!r}: must be a Linux user name (lower-case letter or '_', then letters, "
            f"digits, '-', '_', at most 32) and not one of {', '.join(sorted(RESERVED_USERS))}"
        )
    return name


def check_ssh_key(text: str, source: str) -> str:
    """One OpenSSH public key line; its blob must decode and name the same key type
    (RFC 4253 section 6.6: the blob starts with the key type as an SSH string)."""
    if "PRIVATE KEY" in text:
        raise ProvisionError(f"{source}: this is a private key; give the public one (.pub)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1:
        raise ProvisionError(f"{source}: must hold exactly one public key line, found {len(lines)}")
    parts = lines[0].split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ProvisionError(
            f"{source}: not an OpenSSH public key (expected '<type> <base64> [comment]' with type "
            f"one of {', '.join(SSH_KEY_TYPES)}); is it the private key?"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + length].decode("ascii")
    except (ValueError, struct.error, UnicodeDecodeError):
        raise ProvisionError(f"{source}: the key's base64 part does not decode") from None
    if embedded != parts[0]:
        raise ProvisionError(f"{source}: the key says {parts[0]} but its data is {embedded}")
    return lines[0]


def firstrun_sh(system: System, node_id: str) -> str:
    """Bookworm's firstrun.sh. Imager's runs the same steps; this one then arms our unit."""
    q = shlex.quote
    wifi = system.wifi
    lines = [
        "#!/bin/bash",
        f"# Raspberry Pi OS Bookworm first run for roomagent node {node_id}, written by",
        "# roomagent's scripts/provision.py. The kernel command line (cmdline.txt) runs it once,",
        "# as root, through systemd.run=, as Raspberry Pi Imager's firstrun.sh is run; it sets",
        "# the host name, the installer's user and SSH key and the Wi-Fi, arms the roomagent",
        "# first-boot unit, then removes itself and its cmdline.txt arguments; the Pi reboots.",
        "set +e",
        "",
        f"BOOT={BOOT_MOUNT}",
        f"NEW_HOSTNAME={q(system.hostname)}",
        f"NEW_USER={q(system.user)}",
        f"SSH_KEY={q(system.ssh_key)}",
        "",
        'CURRENT_HOSTNAME=$(tr -d " \\t\\n\\r" </etc/hostname)',
        "if [ -x /usr/lib/raspberrypi-sys-mods/imager_custom ]; then",
        '    /usr/lib/raspberrypi-sys-mods/imager_custom set_hostname "$NEW_HOSTNAME"',
        "else",
        '    echo "$NEW_HOSTNAME" >/etc/hostname',
        '    sed -i "s/127.0.1.1.*$CURRENT_HOSTNAME/127.0.1.1\\t$NEW_HOSTNAME/g" /etc/hosts',
        "fi",
        "",
        "# The first user (uid 1000) becomes $NEW_USER. '*' is a password hash no password",
        "# matches: the user logs in with the SSH key only (and sudo needs no password).",
        "FIRSTUSER=$(getent passwd 1000 | cut -d: -f1)",
        "if [ -x /usr/lib/userconf-pi/userconf ]; then",
        "    /usr/lib/userconf-pi/userconf \"$NEW_USER\" '*'",
        'elif [ -n "$FIRSTUSER" ]; then',
        '    echo "$FIRSTUSER:*" | chpasswd -e',
        '    if [ "$FIRSTUSER" != "$NEW_USER" ]; then',
        '        usermod -l "$NEW_USER" "$FIRSTUSER"',
        '        usermod -m -d "/home/$NEW_USER" "$NEW_USER"',
        '        groupmod -n "$NEW_USER" "$FIRSTUSER"',
        "    fi",
        "else",
        f'    useradd -m -s /bin/bash -G {",".join(USER_GROUPS)} "$NEW_USER"',
        '    echo "$NEW_USER:*" | chpasswd -e',
        "fi",
        "",
        "if [ -x /usr/lib/raspberrypi-sys-mods/imager_custom ]; then",
        '    /usr/lib/raspberrypi-sys-mods/imager_custom enable_ssh -k "$SSH_KEY"',
        "else",
        '    HOME_DIR=$(getent passwd "$NEW_USER" | cut -d: -f6)',
        '    install -o "$NEW_USER" -g "$NEW_USER" -m 700 -d "$HOME_DIR/.ssh"',
        '    echo "$SSH_KEY" >>"$HOME_DIR/.ssh/authorized_keys"',
        '    chown "$NEW_USER:$NEW_USER" "$HOME_DIR/.ssh/authorized_keys"',
        '    chmod 600 "$HOME_DIR/.ssh/authorized_keys"',
        "    echo 'PasswordAuthentication no' >/etc/ssh/sshd_config.d/roomagent.conf",
        "    systemctl enable ssh",
        "fi",
        "",
    ]
    if wifi is not None:
        lines += [
            f"WIFI_SSID={q(wifi.ssid)}",
            f"WIFI_PSK={q(wifi.psk)}",
            f"WIFI_COUNTRY={q(wifi.country)}",
            "if [ -x /usr/lib/raspberrypi-sys-mods/imager_custom ]; then",
            "    /usr/lib/raspberrypi-sys-mods/imager_custom set_wlan \\",
            '        "$WIFI_SSID" "$WIFI_PSK" "$WIFI_COUNTRY"',
            "else",
            '    raspi-config nonint do_wifi_country "$WIFI_COUNTRY"',
            "    CONN=/etc/NetworkManager/system-connections/preconfigured.nmconnection",
            "    umask 077",
            '    printf "%s\\n" "[connection]" "id=preconfigured" "type=wifi" "[wifi]" \\',
            '        "mode=infrastructure" "ssid=$WIFI_SSID" "[wifi-security]" \\',
            '        "key-mgmt=wpa-psk" "psk=$WIFI_PSK" "[ipv4]" "method=auto" \\',
            '        "[ipv6]" "method=auto" >"$CONN"',
            '    chmod 600 "$CONN"',
            "fi",
            "rfkill unblock wifi",
            'for f in /var/lib/systemd/rfkill/*:wlan; do [ -e "$f" ] && echo 0 >"$f"; done',
            "",
        ]
    elif system.country is not None:
        lines += [f"raspi-config nonint do_wifi_country {q(system.country)}", ""]
    lines += [
        f'bash "$BOOT/{PAYLOAD}/firstboot.sh" --arm',
        "",
        "# Run once: remove this script and the arguments that ran it (only those).",
        'rm -f "$BOOT/firstrun.sh"',
        "sed -i -e 's| systemd\\.run=[^ ]*||g' -e 's| systemd\\.run_success_action=[^ ]*||g' \\",
        "    -e 's| systemd\\.unit=kernel-command-line\\.target||g' \"$BOOT/cmdline.txt\"",
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def _y(value: str) -> str:
    """A YAML double-quoted scalar: JSON's string syntax is a subset of it."""
    return json.dumps(value)


def user_data(system: System, node_id: str) -> str:
    """Trixie's cloud-init user-data (#cloud-config): only standard cloud-init modules."""
    lines = [
        "#cloud-config",
        f"# Raspberry Pi OS Trixie first boot for roomagent node {node_id}, written by roomagent's",
        "# scripts/provision.py. cloud-init applies it once: host name, the installer's user",
        "# with an SSH key (no password), SSH on; then runcmd arms the roomagent first-boot unit.",
        f"hostname: {_y(system.hostname)}",
        "manage_etc_hosts: true",
        "users:",
        f"  - name: {_y(system.user)}",
        f"    groups: [{', '.join(USER_GROUPS)}]",
        "    shell: /bin/bash",
        "    lock_passwd: true",
        '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
        "    ssh_authorized_keys:",
        f"      - {_y(system.ssh_key)}",
        "ssh_pwauth: false",
        "runcmd:",
        "  - [systemctl, enable, --now, ssh]",
        f"  - [bash, {BOOT_MOUNT}/{PAYLOAD}/firstboot.sh, --arm, --now]",
    ]
    return "\n".join(lines) + "\n"


def network_config(system: System) -> str:
    """Netplan v2, which cloud-init hands to netplan (NetworkManager renders it on Trixie)."""
    lines = [
        f"# Network for roomagent node {system.hostname}, written by scripts/provision.py.",
        "network:",
        "  version: 2",
        "  ethernets:",
        "    eth0:",
        "      dhcp4: true",
        "      optional: true",
    ]
    wifi = system.wifi
    if wifi is not None:
        lines += [
            "  wifis:",
            "    wlan0:",
            "      dhcp4: true",
            "      optional: true",
            f"      regulatory-domain: {_y(wifi.country)}",
            "      access-points:",
            f"        {_y(wifi.ssid)}:",
            f"          password: {_y(wifi.psk)}",
        ]
    return "\n".join(lines) + "\n"


def meta_data(system: System, user_data_text: str, network_text: str) -> str:
    """NoCloud meta-data. The instance id changes with the seed, so a card provisioned again
    with other settings is a new instance to cloud-init and is configured again."""
    digest = hashlib.sha256((user_data_text + network_text).encode()).hexdigest()[:12]
    return (
        "# cloud-init NoCloud meta-data, written by roomagent's scripts/provision.py.\n"
        "dsmode: local\n"
        f"instance-id: roomagent-{system.hostname}-{digest}\n"
        f"local-hostname: {system.hostname}\n"
    )

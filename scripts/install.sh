#!/usr/bin/env bash
# Installs roomagent as a systemd service on this machine (Raspberry Pi OS / Debian), as root:
#   sudo scripts/install.sh --config firmware_configs/<room>.toml
# Idempotent: run it again to upgrade; an existing /etc/roomagent/roomagent.toml is kept unless
# --config is given. What it does, in order, is printed as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh

PREFIX=/opt/roomagent
CONFIG_DIR=/etc/roomagent
CONFIG=""
START=1
while [ $# -gt 0 ]; do
    case "$1" in
        --config) CONFIG=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "error: run as root (sudo $0 $*)" >&2; exit 1; }

echo "==> groups and the roomagent user"
for group in i2c gpio bluetooth; do
    getent group "$group" >/dev/null || groupadd --system "$group"
done
if ! id roomagent >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/roomagent \
        --shell /usr/sbin/nologin roomagent
fi
usermod -a -G i2c,gpio,bluetooth roomagent

echo "==> $PREFIX/venv"
make_venv python3 "$PREFIX/venv" ""
"$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check "$REPO"
install -d -m 0755 "$PREFIX/docs"
install -m 0644 docs/*.md "$PREFIX/docs/"

echo "==> $CONFIG_DIR/roomagent.toml"
install -d -m 0750 -g roomagent "$CONFIG_DIR"
if [ -n "$CONFIG" ]; then
    install -m 0640 -g roomagent "$CONFIG" "$CONFIG_DIR/roomagent.toml"
elif [ ! -f "$CONFIG_DIR/roomagent.toml" ]; then
    echo "error: no $CONFIG_DIR/roomagent.toml yet: give --config firmware_configs/<room>.toml" >&2
    exit 2
fi
"$PREFIX/venv/bin/roomagent" check-config "$CONFIG_DIR/roomagent.toml"

echo "==> /etc/systemd/system/roomagent.service"
sed -e "s|@VENV@|$PREFIX/venv|g" -e "s|@CONFIG@|$CONFIG_DIR/roomagent.toml|g" \
    -e "s|@DOCS@|$PREFIX/docs|g" scripts/roomagent.service > /etc/systemd/system/roomagent.service
systemd-analyze verify /etc/systemd/system/roomagent.service

if [ "$START" = 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable roomagent.service
    systemctl restart roomagent.service
    echo "==> started: systemctl status roomagent; journalctl -u roomagent -f"
else
    echo "==> installed, not started (no running systemd, or --no-start)"
fi

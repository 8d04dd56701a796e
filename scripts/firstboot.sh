#!/bin/bash
# roomagent's first boot on a provisioned card (scripts/provision.py copies this file to the
# boot partition's roomagent/ folder, with the wheels, the node's config and the installer):
#   firstboot.sh --arm [--now]    installs and enables roomagent-firstboot.service; run by
#                                 firstrun.sh (Bookworm) or cloud-init's runcmd (Trixie)
#   firstboot.sh                  what that unit runs: install the agent offline (install.sh),
#                                 register with the site inventory if configured, start the
#                                 service, then remove the unit and the card's copy of the
#                                 secrets and wheels
# --root DIR and --python PY are passed to install.sh (tests install into a directory).
# A failed install leaves everything in place; the unit runs again at the next boot.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
unset PYTHONPATH PYTHONHOME  # the installed agent runs on its own
ROOT=""
PYTHON=python3
ARM=0
NOW=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arm) ARM=1; shift ;;
        --now) NOW=1; shift ;;
        --root) ROOT=$(cd "$2" && pwd); shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        *) echo "error: unknown argument $1" >&2; exit 2 ;;
    esac
done
UNIT=roomagent-firstboot.service
systemctl_files() { systemctl ${ROOT:+--root="$ROOT"} "$@"; }

if [ "$ARM" = 1 ]; then
    install -D -m 0644 "$HERE/$UNIT" "$ROOT/etc/systemd/system/$UNIT"
    systemctl_files enable "$UNIT"
    # On Trixie cloud-init arms it during boot: start it now rather than at the next boot.
    if [ "$NOW" = 1 ] && [ -z "$ROOT" ]; then systemctl start --no-block "$UNIT"; fi
    exit 0
fi

echo "==> roomagent first boot, from $HERE"
bash "$HERE/install.sh" install --wheels "$HERE/wheels" --config-dir "$HERE/etc" --no-start \
    --python "$PYTHON" ${ROOT:+--root "$ROOT"}

# Optional per site ([registration] in the config); may replace the config before the first
# start. Offline, it retries a bounded number of times, then the node runs with the card's.
"$ROOT/opt/roomagent/current/bin/roomagent" register --config "$ROOT/etc/roomagent/roomagent.toml" ||
    echo "registration failed: running with the config from the card (retry: roomagent register)"

if [ -z "$ROOT" ]; then
    echo "==> starting roomagent.service (waits for READY=1)"
    systemctl start roomagent.service
else
    echo "    skipped under --root: systemctl start roomagent.service"
fi

echo "==> done: removing $UNIT and the card's copy of the secrets and wheels"
systemctl_files disable "$UNIT" >/dev/null 2>&1 || true
rm -f "$ROOT/etc/systemd/system/$UNIT"
rm -rf "${HERE:?}/etc" "${HERE:?}/wheels"
echo "installed; this folder now holds only the installer and the docs" > "$HERE/INSTALLED.txt"

#!/usr/bin/env bash
# Installs, upgrades, rolls back or removes roomagent as a systemd service (Raspberry Pi OS /
# Debian), as root. From a checkout, online:
#   sudo scripts/install.sh --config firmware_configs/<room>.toml
# From wheels, offline (what a provisioned card's first boot runs, docs/provisioning.md):
#   sudo install.sh install --wheels DIR --config-dir DIR
#   sudo install.sh rollback              # back to the previous version
#   sudo install.sh uninstall [--purge]   # --purge also removes config, buffer and user
# Options: --root DIR (install into DIR as if it were /, for tests), --python PY, --no-start,
# --no-compile (skip byte-compiling: quicker, but /opt is read-only to the service, so every
# start then compiles in memory).
# Each install is a new venv in /opt/roomagent/releases/; /opt/roomagent/current points to the
# one in use and /opt/roomagent/previous to the one before. An upgrade that does not become
# ready (READY=1 within the unit's start timeout) is rolled back, config included.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# The release must run on its own: nothing from the caller's Python path.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE

ACTION=install
case "${1:-}" in install|uninstall|rollback) ACTION=$1; shift ;; esac
ROOT=""
PREFIX=/opt/roomagent
CONFIG=""
CONFIG_SRC=""
WHEELS=""
PYTHON=python3
START=1
PURGE=0
COMPILE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --config) CONFIG=$2; shift 2 ;;
        --config-dir) CONFIG_SRC=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --root) ROOT=$(cd "$2" && pwd); shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        --purge) PURGE=1; shift ;;
        --no-compile) COMPILE=--no-compile; shift ;;  # faster; the agent then starts slower
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

OPT=$ROOT$PREFIX
ETC=$ROOT/etc/roomagent
STATE=$ROOT/var/lib/roomagent
UNIT=$ROOT/etc/systemd/system/roomagent.service
USER_NAME=roomagent

say() { echo "==> $*"; }
die() { echo "error: $*" >&2; exit 1; }
# Under --root nothing may touch this machine's users, services or running systemd.
skip() { echo "    skipped under --root: $*"; }
systemctl_files() { systemctl ${ROOT:+--root="$ROOT"} "$@"; }  # enable/disable: symlinks only
live() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

[ -n "$ROOT" ] || [ "$(id -u)" = 0 ] || die "run as root (sudo $0 $ACTION ...), or give --root DIR"

owner() {  # owner MODE FILE...: root:roomagent and MODE, as the unit expects
    local mode=$1; shift
    chmod "$mode" "$@"
    if [ -z "$ROOT" ]; then chgrp "$USER_NAME" "$@"; fi
}

check_ready() {  # check_ready RELEASE: does that release become ready with the config?
    local release=$1
    if [ -n "$ROOT" ]; then
        # No systemd to start it under --root: start it the way systemd would (Type=notify,
        # wait for READY=1), on simulated chips, with a throw-away buffer, then stop it.
        local state
        state=$(mktemp -d)
        say "readiness under --root: $release/bin/roomagent run --simulate, waiting for READY=1"
        if "$release/bin/python" "$HERE/ready_check.py" --timeout 90 -- \
            "$release/bin/roomagent" run "$ETC/roomagent.toml" --simulate --state-dir "$state"; then
            rm -rf "$state"; return 0
        fi
        rm -rf "$state"; return 1
    fi
    if ! live || [ "$START" = 0 ]; then
        echo "    not started (no running systemd, or --no-start): readiness not checked"
        return 0
    fi
    systemctl daemon-reload
    # Type=notify: the start job ends when the agent sends READY=1, or fails after
    # TimeoutStartSec (90 s) or when the agent exits.
    say "systemctl restart roomagent.service (waits for READY=1)"
    timeout 150 systemctl restart roomagent.service && systemctl is-active --quiet roomagent.service
}

switch_to() {  # switch_to RELEASE_NAME: atomically repoint current
    ln -sfn "releases/$1" "$OPT/current.new"
    mv -T "$OPT/current.new" "$OPT/current"
}

render_unit() {  # render_unit VENV OUT
    local docs=$PREFIX/current/docs
    sed -e "s|@VENV@|$1|g" -e "s|@CONFIG@|/etc/roomagent/roomagent.toml|g" -e "s|@DOCS@|$docs|g" \
        "$HERE/roomagent.service" > "$2"
}

# What this run created, so that a failed first install can be undone: "dir:PATH",
# "link:PATH", "unit:PATH", "group:NAME", "user:NAME", in the order made.
CREATED=()
created() { CREATED+=("$1"); }

undo_created() {  # undoes CREATED, newest first; prints what was removed and what was left
    local i item removed=() left=()
    for ((i = ${#CREATED[@]} - 1; i >= 0; i--)); do
        item=${CREATED[i]}
        case "$item" in
            unit:*)
                if live; then systemctl disable --now roomagent.service >/dev/null 2>&1 || true; fi
                systemctl_files disable roomagent.service >/dev/null 2>&1 || true
                if rm -f "${item#unit:}"; then removed+=("${item#unit:}"); else left+=("${item#unit:}"); fi
                if live; then systemctl daemon-reload || true; fi ;;
            dir:*|link:*)
                local path=${item#*:}
                if rm -rf "$path"; then removed+=("$path"); else left+=("$path"); fi ;;
            user:*)
                if userdel "${item#user:}" 2>/dev/null; then removed+=("user ${item#user:}")
                else left+=("user ${item#user:}"); fi ;;
            group:*)
                if groupdel "${item#group:}" 2>/dev/null; then removed+=("group ${item#group:}")
                else left+=("group ${item#group:}"); fi ;;
        esac
    done
    CREATED=()
    UNDO_REMOVED=$(join_list "${removed[@]}")
    UNDO_LEFT=$(join_list "${left[@]}")
}

join_list() { local out="" x; for x in "$@"; do out=${out:+$out, }$x; done; echo "$out"; }

fail() {  # fail MESSAGE: stops an install, first undoing what it created, and says exactly so
    undo_created
    local what="nothing else was changed"
    if [ -n "$UNDO_REMOVED" ]; then what="undone: removed $UNDO_REMOVED"; fi
    if [ -n "$UNDO_LEFT" ]; then
        what="${UNDO_REMOVED:+removed $UNDO_REMOVED, but }could not remove $UNDO_LEFT (remove by hand)"
    fi
    die "$1; $what"
}

BACKUP=""
save_config() {  # a copy of the config being replaced, put back if the install fails
    BACKUP=$(mktemp -d "$ETC/.backup-XXXXXX")
    find "$ETC" -maxdepth 1 -type f -exec cp -p {} "$BACKUP/" \;
}

restore_config() {
    [ -n "$BACKUP" ] || return 0
    find "$ETC" -maxdepth 1 -type f -delete
    find "$BACKUP" -maxdepth 1 -type f -exec cp -p {} "$ETC/" \;
    rm -rf "$BACKUP"
    BACKUP=""
}

keep_config_backup() {  # installed: the old config stays in .previous, for reference
    rm -rf "$ETC/.previous"
    mv "$BACKUP" "$ETC/.previous"
    BACKUP=""
}

do_install() {
    local version source
    if [ -n "$WHEELS" ]; then
        local wheels=("$WHEELS"/roomagent-*.whl)
        if [ ${#wheels[@]} != 1 ] || [ ! -f "${wheels[0]}" ]; then
            die "$WHEELS must hold exactly one roomagent-*.whl"
        fi
        version=$(basename "${wheels[0]}" | cut -d- -f2)
        source="wheels in $WHEELS (no network)"
    else
        local repo=$HERE/..
        [ -f "$repo/pyproject.toml" ] || die "no --wheels and no checkout around $HERE"
        version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml")
        source="the checkout $(cd "$repo" && pwd) (PyPI for dependencies)"
    fi
    [ -e "$OPT" ] || created "dir:$OPT"
    mkdir -p "$OPT/releases"
    local name
    name=$version-$(date -u +%Y%m%dT%H%M%SZ)
    local n=1 base=$name
    while [ -e "$OPT/releases/$name" ]; do n=$((n + 1)); name=$base-$n; done
    local release=$OPT/releases/$name

    say "$release from $source"
    if [ -n "$WHEELS" ]; then
        local pip_wheels=("$WHEELS"/pip-*.whl)
        [ -f "${pip_wheels[-1]}" ] || die "$WHEELS has no pip-*.whl to install with"
        # --without-pip needs no python3-venv/ensurepip: pip runs from its own wheel.
        # --isolated: no pip configuration of this machine adds other sources.
        if ! { "$PYTHON" -m venv --without-pip "$release" &&
               "$release/bin/python" "${pip_wheels[-1]}/pip" --isolated install -q $COMPILE \
                   --disable-pip-version-check --no-index --find-links "$WHEELS" \
                   "roomagent==$version" pip; }; then
            rm -rf "$release"
            fail "installing roomagent $version failed"
        fi
    else
        # shellcheck source=scripts/_setup.sh
        . "$HERE/_setup.sh"
        # make_venv installs the checkout editable (and apt-installs a compiler for the SGP40's
        # algorithm if needed); the second install replaces that with a copy.
        if ! { (cd "$HERE/.." && make_venv "$PYTHON" "$release" "") &&
               "$release/bin/python" -m pip install -q --disable-pip-version-check "$HERE/.."; }; then
            rm -rf "$release"
            fail "installing roomagent $version failed"
        fi
    fi
    say "groups and the $USER_NAME user"
    if [ -n "$ROOT" ]; then
        skip "groupadd i2c gpio bluetooth; useradd --system $USER_NAME; root:$USER_NAME owners"
    else
        for group in i2c gpio bluetooth; do
            if ! getent group "$group" >/dev/null; then
                groupadd --system "$group" && created "group:$group"
            fi
        done
        if ! id "$USER_NAME" >/dev/null 2>&1; then
            useradd --system --user-group --no-create-home --home-dir /var/lib/roomagent \
                --shell /usr/sbin/nologin "$USER_NAME" && created "user:$USER_NAME"
        fi
        usermod -a -G i2c,gpio,bluetooth "$USER_NAME"
    fi
    local docs_src=$HERE/docs
    [ -d "$docs_src" ] || docs_src=$HERE/../docs
    install -d -m 0755 "$release/docs"
    install -m 0644 "$docs_src"/*.md "$release/docs/"

    say "$ETC"
    [ -e "$ETC" ] || created "dir:$ETC"
    install -d -m 0750 "$ETC"
    owner 0750 "$ETC"
    save_config
    if [ -n "$CONFIG_SRC" ]; then
        local f
        for f in "$CONFIG_SRC"/*; do
            [ -f "$f" ] || continue
            install -m 0640 "$f" "$ETC/$(basename "$f")"
            owner 0640 "$ETC/$(basename "$f")"
        done
    fi
    if [ -n "$CONFIG" ]; then
        install -m 0640 "$CONFIG" "$ETC/roomagent.toml"
        owner 0640 "$ETC/roomagent.toml"
    fi
    if [ ! -f "$ETC/roomagent.toml" ]; then
        restore_config
        rm -rf "$release"
        fail "no $ETC/roomagent.toml yet: give --config FILE or --config-dir DIR"
    fi
    if ! "$release/bin/roomagent" check-config "$ETC/roomagent.toml"; then
        restore_config
        rm -rf "$release"
        fail "the config does not pass roomagent $version's check"
    fi

    say "$STATE (the buffer; kept by uninstall unless --purge)"
    [ -e "$STATE" ] || created "dir:$STATE"
    install -d -m 0700 "$STATE"
    if [ -z "$ROOT" ]; then chown "$USER_NAME:$USER_NAME" "$STATE"; fi

    say "$UNIT"
    local check
    check=$(mktemp -d)
    # Verified as it will run this release (the real unit points at current, not yet switched).
    render_unit "$release" "$check/roomagent.service"
    if command -v systemd-analyze >/dev/null 2>&1; then
        if ! systemd-analyze verify "$check/roomagent.service"; then
            rm -rf "$check" "$release"
            restore_config
            fail "the unit does not verify"
        fi
    else
        echo "    systemd-analyze not found: unit not verified"
    fi
    rm -rf "$check"
    mkdir -p "$(dirname "$UNIT")"
    [ -e "$UNIT" ] || created "unit:$UNIT"
    render_unit "$PREFIX/current" "$UNIT"
    chmod 0644 "$UNIT"
    systemctl_files enable roomagent.service

    local old=""
    [ -L "$OPT/current" ] && old=$(basename "$(readlink "$OPT/current")")
    switch_to "$name"
    say "$OPT/current -> releases/$name${old:+ (was $old)}"
    link_command
    if ! check_ready "$release"; then
        if [ -n "$old" ]; then
            say "roomagent $version did not become ready: rolling back to $old"
            switch_to "$old"
            restore_config
            rm -rf "$release"
            undo_created
            if ! live && [ -z "$ROOT" ] || [ "$START" = 0 ]; then
                die "upgrade failed; rolled back to $old (not started: no running systemd, or --no-start)"
            fi
            if check_ready "$OPT/releases/$old"; then
                die "upgrade failed; rolled back to $old, which is ready again (journalctl -u roomagent for why)"
            fi
            die "upgrade failed, and $old, rolled back to, did not become ready either: the service is DOWN (systemctl status roomagent; journalctl -u roomagent)"
        fi
        if [ -z "$ROOT" ] && live; then systemctl stop roomagent.service || true; fi
        restore_config
        rm -rf "$release"
        fail "roomagent $version did not become ready (journalctl -u roomagent for why)"
    fi
    keep_config_backup
    if [ -n "$old" ] && [ "$old" != "$name" ]; then
        ln -sfn "releases/$old" "$OPT/previous"
    fi
    # Keep the running release and the one before it; older ones go.
    local keep_prev=""
    [ -L "$OPT/previous" ] && keep_prev=$(basename "$(readlink "$OPT/previous")")
    local d
    for d in "$OPT"/releases/*; do
        case "$(basename "$d")" in "$name"|"$keep_prev") ;; *) rm -rf "$d" ;; esac
    done
    say "installed roomagent $version${old:+ (previous: $old; install.sh rollback goes back)}"
}

do_rollback() {
    [ -L "$OPT/previous" ] || die "no previous version to roll back to"
    local prev cur
    prev=$(basename "$(readlink "$OPT/previous")")
    cur=$(basename "$(readlink "$OPT/current")")
    [ -d "$OPT/releases/$prev" ] || die "$OPT/releases/$prev is gone"
    "$OPT/releases/$prev/bin/roomagent" check-config "$ETC/roomagent.toml" ||
        die "$prev does not accept the current config; not rolled back"
    switch_to "$prev"
    ln -sfn "releases/$cur" "$OPT/previous"
    if ! check_ready "$OPT/releases/$prev"; then
        switch_to "$cur"
        ln -sfn "releases/$prev" "$OPT/previous"
        if ! live && [ -z "$ROOT" ] || [ "$START" = 0 ]; then
            die "$prev did not become ready; back on $cur (not started)"
        fi
        if check_ready "$OPT/releases/$cur"; then
            die "$prev did not become ready; back on $cur, which is ready again"
        fi
        die "$prev did not become ready, and neither did $cur after it: the service is DOWN (systemctl status roomagent; journalctl -u roomagent)"
    fi
    say "rolled back to $prev (previous is now $cur)"
}

# `roomagent` on PATH for the installer (doctor, read, watch): a link that follows current.
BIN_LINK=$ROOT/usr/local/bin/roomagent
link_command() {
    [ -e "$BIN_LINK" ] || [ -L "$BIN_LINK" ] || created "link:$BIN_LINK"
    mkdir -p "$(dirname "$BIN_LINK")"
    ln -sfn "$PREFIX/current/bin/roomagent" "$BIN_LINK"
    say "$BIN_LINK -> $PREFIX/current/bin/roomagent"
}

do_uninstall() {
    say "stopping and removing roomagent.service"
    # Only our own link: a roomagent put there by someone else stays.
    [ "$(readlink "$BIN_LINK" 2>/dev/null)" = "$PREFIX/current/bin/roomagent" ] && rm -f "$BIN_LINK"
    if live; then systemctl disable --now roomagent.service || true; fi
    systemctl_files disable roomagent.service >/dev/null 2>&1 || true
    rm -f "$UNIT"
    if live; then systemctl daemon-reload; fi
    rm -rf "$OPT"
    if [ "$PURGE" = 1 ]; then
        say "--purge: removing $ETC, $STATE (the buffer) and the $USER_NAME user"
        rm -rf "$ETC" "$STATE"
        if [ -n "$ROOT" ]; then
            skip "userdel $USER_NAME"
        elif id "$USER_NAME" >/dev/null 2>&1; then
            userdel "$USER_NAME"
        fi
    else
        say "kept $ETC and $STATE (the buffer): uninstall --purge removes them"
    fi
}

case "$ACTION" in
    install) do_install ;;
    rollback) do_rollback ;;
    uninstall) do_uninstall ;;
esac

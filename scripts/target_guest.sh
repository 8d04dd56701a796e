#!/bin/bash
# Runs inside the booted arm64 guest of scripts/target-test.sh (as its target-check.service):
# installs roomagent the way a site does and checks it under the guest's own systemd. Writes
# one "PASS|FAIL|NOTE check_name detail" line per check to /root/verdicts; the unit then
# powers the guest off. SUITE (bookworm|trixie) and MODE (online|offline) come from the unit.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
V=/root/verdicts
: > "$V"
verdict() { echo "$1 $2 $3" >> "$V"; echo "[$(date -u +%T)] $1 $2 $3"; }
prop() { systemctl show -p "$1" --value roomagent.service; }
active() { [ "$(prop ActiveState)" = active ] && [ "$(prop SubState)" = running ]; }
wait_for() {  # wait_for SECONDS COMMAND...: polls once a second
    local limit=$1; shift
    local i
    for ((i = 0; i < limit; i++)); do "$@" && return 0; sleep 1; done
    return 1
}

if [ "$SUITE" = trixie ]; then
    # Under qemu-user, Trixie's systemd fails every mount-namespace option with 226/NAMESPACE
    # and puts seccomp filters on qemu itself: only here, the unit runs without them.
    # docs/installing.md reasons about them on a real Pi.
    mkdir -p /etc/systemd/system/roomagent.service.d
    cat > /etc/systemd/system/roomagent.service.d/emulation.conf <<'EOF'
[Service]
PrivateTmp=no
ProtectSystem=no
ProtectHome=no
ProtectKernelTunables=no
ProtectKernelModules=no
ProtectKernelLogs=no
ProtectControlGroups=no
ProtectHostname=no
ProtectProc=default
ProcSubset=all
RestrictNamespaces=no
SystemCallFilter=
SystemCallArchitectures=
MemoryDenyWriteExecute=no
LockPersonality=no
RestrictAddressFamilies=
EOF
    verdict NOTE emulation "trixie: the unit's namespace and seccomp options are off in this guest"
fi

start=$(date +%s)
if [ "$MODE" = online ]; then
    cmd=(bash /root/src/scripts/install.sh --config /root/node.toml)
else
    cmd=(bash /root/src/scripts/install.sh install --wheels /root/wheels --config /root/node.toml)
fi
if "${cmd[@]}" > /root/install.log 2>&1; then
    verdict PASS "install_($MODE)" "install.sh exit 0 in $(( $(date +%s) - start )) s"
else
    verdict FAIL "install_($MODE)" "install.sh failed: $(tail -n 2 /root/install.log | tr '\n' ' ')"
    journalctl -u roomagent --no-pager -n 80 > /root/journal.log
    exit 0
fi

# install.sh's restart is a Type=notify start job: it ends when the agent sends READY=1.
if active; then
    verdict PASS READY "active (running) after READY=1; status: $(prop StatusText)"
else
    verdict FAIL READY "$(prop ActiveState)/$(prop SubState) $(prop Result)"
fi

gpio_line() { journalctl -u roomagent -o cat --no-pager | grep "GPIO pins:" | tail -n 1; }
wait_for 30 bash -c 'journalctl -u roomagent -o cat --no-pager | grep -q "GPIO pins:"'
line=$(gpio_line)
if [ -z "$(journalctl -q --no-pager -n 1 2>/dev/null)" ]; then
    # Trixie's journald records nothing under qemu: the agent's own record of why its GPIO
    # is unavailable is in the buffer (offline) or on the broker (online; judged on the host).
    sleep 10
    line=$(/opt/roomagent/current/bin/python /root/src/scripts/target_guest_events.py)
    [ -n "$line" ] || verdict NOTE pin_library_in_the_sandbox "journal empty under emulation, events delivered: judged from the broker"
fi
if [ -n "$line" ]; then
    if [[ "$line" == *lgpio* ]] && [[ "$line" != *"cannot be imported"* ]]; then
        verdict PASS pin_library_in_the_sandbox "lgpio imported by the service: ${line#*GPIO pins: }"
    else
        verdict FAIL pin_library_in_the_sandbox "$line"
    fi
fi

# The council chamber's relays and inputs have no /dev/gpiochip here: unavailable, not a crash
# loop. Watched over two of the old crash loop's 5 s restart periods and more.
sleep 20
restarts=$(prop NRestarts)
if active && [ "$restarts" = 0 ]; then
    verdict PASS no_crash_loop "active, NRestarts=0 after $(( $(date +%s) - start )) s"
else
    verdict FAIL no_crash_loop "$(prop ActiveState), NRestarts=$restarts"
fi

if [ "$MODE" = online ]; then
    # The wheels a site builds once on a Pi for packages without one for it (docs/provisioning.md).
    if PYPI=1 /opt/roomagent/current/bin/python -m pip wheel -q --disable-pip-version-check \
        --no-deps -w /root/wheelhouse sensirion-gas-index-algorithm lgpio > /root/wheelhouse.log 2>&1
    then
        verdict NOTE site_wheelhouse "$(find /root/wheelhouse -name '*.whl' -printf '%f ')"
    else
        verdict FAIL site_wheelhouse "$(tail -n 2 /root/wheelhouse.log | tr '\n' ' ')"
    fi

    pid=$(prop MainPID)
    kill -STOP "$pid"
    t0=$(date +%s)
    # shellcheck disable=SC2317  # called through wait_for
    new_pid() { [ "$(prop MainPID)" != "$pid" ] && active; }
    if wait_for 240 new_pid; then
        verdict PASS watchdog "SIGSTOPped agent killed and restarted by systemd in $(( $(date +%s) - t0 )) s (WatchdogSec=30)"
    else
        verdict FAIL watchdog "after $(( $(date +%s) - t0 )) s: $(prop ActiveState) MainPID $(prop MainPID)"
    fi
    wait_for 120 bash -c '[ "$(systemctl show -p StatusText --value roomagent)" != "" ]'

    t0=$(date +%s)
    if timeout 150 systemctl restart roomagent.service && active; then
        verdict PASS restart "systemctl restart: READY again in $(( $(date +%s) - t0 )) s"
    else
        verdict FAIL restart "$(prop ActiveState)/$(prop SubState)"
    fi

    before=$(readlink /opt/roomagent/current)
    rm -rf /root/broken && cp -a /root/src /root/broken
    sed -i 's/^    async def run(self, stop: asyncio.Event) -> None:$/&\n        raise RuntimeError("target test: a release that cannot start")/' \
        /root/broken/agent/app/runtime.py
    grep -q "a release that cannot start" /root/broken/agent/app/runtime.py ||
        verdict FAIL failing_upgrade "could not plant the failure in agent/app/runtime.py"
    if bash /root/broken/scripts/install.sh --config /root/node.toml > /root/upgrade.log 2>&1; then
        verdict FAIL failing_upgrade "install.sh succeeded with a release that cannot start"
    elif [ "$(readlink /opt/roomagent/current)" = "$before" ] && active &&
         grep -q "rolling back" /root/upgrade.log; then
        verdict PASS failing_upgrade "rolled back to $(basename "$before"), active: $(tail -n 1 /root/upgrade.log)"
    else
        verdict FAIL failing_upgrade "current $(readlink /opt/roomagent/current), $(prop ActiveState): $(tail -n 1 /root/upgrade.log)"
    fi
fi
journalctl -u roomagent --no-pager -n 200 > /root/journal.log
exit 0

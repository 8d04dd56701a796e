#!/usr/bin/env bash
# The pre-release check on the target OS family: Raspberry Pi OS's Debian arm64, Bookworm
# (Python 3.11) and Trixie (Python 3.13), emulated with qemu-user and booted with real systemd
# under systemd-nspawn. Too slow for CI (about an hour on 2 cores): run it before a release and
# record its verdicts in docs/installing.md ("Verified on the target").
#   sudo scripts/target-test.sh [--suite bookworm|trixie]... [--mode online|offline]...
#                               [--cache DIR] [--keep]
# For each suite it builds and caches a root filesystem (mmdebstrap), then boots two copies:
#   online:  install.sh from this checkout (PyPI for dependencies), with the council-chamber
#            profile and a broker on the host; checks READY, the pin library inside the unit's
#            sandbox, GPIO unavailable with a reason and no crash loop, telemetry on the host's
#            broker, the watchdog (SIGSTOP), systemctl restart, and a failing upgrade rolled back;
#   offline: --private-network, install.sh --wheels with the wheels provisioning puts on a card
#            (agent.provision.wheels, plus the two built on the "Pi": the online guest);
#            checks the install, READY and the pin library.
# One verdict line per check (PASS/FAIL/NOTE), and exit status 1 if any check failed.
# Needs root, mmdebstrap, qemu-user-static, systemd-container (systemd-nspawn) and mosquitto on
# a Debian x86-64 host; docs/installing.md says what emulation cannot prove.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=/var/cache/roomagent-target
SUITES=()
MODES=()
KEEP=0
HOSTPY=${HOSTPY:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --suite) SUITES+=("$2"); shift 2 ;;
        --mode) MODES+=("$2"); shift 2 ;;  # online, offline (needs an online run's wheelhouse)
        --cache) CACHE=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#SUITES[@]} -gt 0 ] || SUITES=(bookworm trixie)
[ ${#MODES[@]} -gt 0 ] || MODES=(online offline)
[ "$(id -u)" = 0 ] || { echo "error: run as root (mmdebstrap, systemd-nspawn)" >&2; exit 2; }
for tool in mmdebstrap systemd-nspawn dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "error: $tool missing: apt-get install mmdebstrap qemu-user-static systemd-container" >&2; exit 2; }
done
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || { echo "error: mosquitto missing: apt-get install mosquitto" >&2; exit 2; }
if [ -z "$HOSTPY" ]; then
    HOSTPY=python3
    for v in "$REPO"/.venv-*/bin/python; do [ -x "$v" ] && HOSTPY=$v && break; done
fi
"$HOSTPY" -c "import paho.mqtt.client" 2>/dev/null ||
    { echo "error: $HOSTPY has no paho-mqtt: set HOSTPY to the project's venv python" >&2; exit 2; }

mkdir -p "$CACHE"
RUN=$(mktemp -d "$CACHE/run-XXXXXX")
VERDICTS=$RUN/verdicts
: > "$VERDICTS"
say() { echo "==> $*"; }
verdict() {  # verdict PASS|FAIL|NOTE SUITE CHECK DETAIL
    printf '%-4s %-9s %-34s %s\n' "$1" "$2" "$3" "$4" | tee -a "$VERDICTS"
}
cleanup() {
    if [ -n "${BROKER_PID:-}" ]; then kill "$BROKER_PID" 2>/dev/null || true; fi
    if [ -n "${SUB_PID:-}" ]; then kill "$SUB_PID" 2>/dev/null || true; fi
    [ "$KEEP" = 1 ] || rm -rf "$RUN/rootfs"
}
trap cleanup EXIT

# qemu-user: Debian's 7.2 runs Bookworm's systemd; Trixie's needs qemu 10 (bookworm-backports),
# fetched once into the cache without touching the host's apt sources.
qemu_for() {
    if [ "$1" = bookworm ]; then echo /usr/bin/qemu-aarch64-static; return; fi
    local q=$CACHE/qemu10
    # qemu-user-static is a transitional package in qemu 10: qemu-user holds the static binary.
    if [ ! -x "$q/root/usr/bin/qemu-aarch64" ]; then
        mkdir -p "$q/lists/partial"
        echo "deb http://deb.debian.org/debian bookworm-backports main" > "$q/sources.list"
        local a=(-o "Dir::Etc::SourceList=$q/sources.list" -o Dir::Etc::SourceParts=/nonexistent
                 -o "Dir::State::Lists=$q/lists" -o Debug::NoLocking=1)
        apt-get "${a[@]}" update -qq >/dev/null
        (cd "$q" && apt-get "${a[@]}" download qemu-user/bookworm-backports >/dev/null 2>&1)
        dpkg-deb -x "$q"/qemu-user_*.deb "$q/root"
    fi
    echo "$q/root/usr/bin/qemu-aarch64"
}

use_qemu() {  # registers qemu-aarch64 in binfmt_misc with F: the binary is opened now, so it
    # also works inside the container's root
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64
    local magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    echo ":qemu-aarch64:M::$magic:$mask:$1:OCF" > /proc/sys/fs/binfmt_misc/register
}

rootfs_tar() {  # the cached root filesystem of a suite, built once (5-10 min)
    local suite=$1 tar=$CACHE/$1-arm64.tar
    if [ ! -f "$tar" ]; then
        say "building the $suite arm64 root filesystem (mmdebstrap; cached in $tar)" >&2
        mmdebstrap --arch=arm64 --variant=minbase --format=tar \
            --include=python3,python3-venv,python3-dev,gcc,libc6-dev,swig,ca-certificates,systemd,systemd-sysv,dbus,libpam-systemd \
            "$suite" "$tar.part" http://deb.debian.org/debian >&2
        mv "$tar.part" "$tar"
    fi
    echo "$tar"
}

node_config() {  # node_config PORT OUT: the council-chamber profile, its broker on the host
    sed -e "s|^host = \"mqtt.example.org\".*|host = \"127.0.0.1\"\nport = $1|" \
        -e 's|^health_interval = 60|health_interval = 5|' \
        "$REPO/firmware_configs/council-chamber.toml" > "$2"
}

checkout_into() {  # the working tree's tracked files, as they are now (uncommitted changes too)
    mkdir -p "$2"
    (cd "$1" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$2"
}

boot() {  # boot SUITE MODE ROOT: runs the guest's checks at boot; waits for its poweroff
    local suite=$1 mode=$2 root=$3 net=()
    [ "$mode" = offline ] && net=(--private-network)
    say "$suite $mode: booting under systemd-nspawn (log: $RUN/$suite-$mode.console)"
    local rc=0
    timeout 5400 systemd-nspawn --quiet --boot --register=no --keep-unit "${net[@]}" \
        --machine "ra-$suite-$mode" -D "$root" > "$RUN/$suite-$mode.console" 2>&1 || rc=$?
    [ "$rc" = 124 ] && verdict FAIL "$suite" "$mode: guest finished" "timed out after 90 min"
    return 0
}

guest_setup() {  # guest_setup SUITE MODE ROOT
    local suite=$1 mode=$2 root=$3
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    echo "ra-$suite" > "$root/etc/hostname"
    checkout_into "$REPO" "$root/root/src"
    node_config "$PORT" "$root/root/node.toml"
    install -m 0755 "$HERE/target_guest.sh" "$root/root/target_guest.sh"
    cat > "$root/etc/systemd/system/target-check.service" <<EOF
[Unit]
Description=roomagent target test ($suite, $mode)
After=basic.target dbus.service
[Service]
Type=oneshot
Environment=SUITE=$suite MODE=$mode
ExecStart=/root/target_guest.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=file:/root/guest.log
StandardError=inherit
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
EOF
    ln -sf /etc/systemd/system/target-check.service \
        "$root/etc/systemd/system/multi-user.target.wants/target-check.service"
}

offline_wheels() {  # offline_wheels SUITE ROOT DEST: what provisioning puts in the card's wheels/
    local root=$2 dest=$3
    local pyver glibc
    pyver=$(chroot "$root" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
    glibc=$(chroot "$root" /usr/bin/python3 -c 'import platform; print(platform.libc_ver()[1])')
    "$HOSTPY" - "$REPO" "$dest" "$pyver" "$glibc" "$CACHE/$1-wheelhouse" <<'EOF'
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from agent.provision.wheels import Target, build_agent_wheel, download  # noqa: E402

dest, pyver, glibc, house = Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5])
dest.mkdir(parents=True, exist_ok=True)
major, minor = (int(x) for x in glibc.split(".")[:2])
target = Target("aarch64", pyver, (major, minor))
built = dest.parent / "agent-wheel"  # not dest: download() copies the agent's wheel there
built.mkdir(exist_ok=True)
agent = build_agent_wheel(built, (house,), False, print, Path(sys.argv[1]))
wheels = download(target, agent, (house,), False, dest, print)
print(f"{len(wheels)} wheels for {target.describe()}")
EOF
}

collect() {  # collect SUITE MODE ROOT: the guest's verdicts, then the broker's side
    local suite=$1 mode=$2 root=$3
    if [ -f "$root/root/verdicts" ]; then
        while read -r status check detail; do
            verdict "$status" "$suite" "$mode: ${check//_/ }" "$detail"
        done < "$root/root/verdicts"
    else
        verdict FAIL "$suite" "$mode: guest checks" "no verdicts: see $RUN/$suite-$mode.console"
    fi
    for f in "$root"/root/*.log; do [ -f "$f" ] && cp "$f" "$RUN/$suite-$mode-$(basename "$f")"; done
}

broker_checks() {  # what reached the host's broker from the online guest
    local suite=$1
    local out=$RUN/$suite-mqtt.jsonl
    "$HOSTPY" - "$out" <<'EOF' | while IFS='|' read -r status check detail; do verdict "$status" "$suite" "online: $check" "$detail"; done
import json, sys
msgs = [json.loads(line) for line in open(sys.argv[1])] if sys.argv[1] else []
base = "roomagent/council-chamber/"
mine = [m for m in msgs if m["topic"].startswith(base)]
health = [m for m in mine if m["topic"] == base + "state/agent"]
seqs = [m for m in mine if '"seq"' in m["payload"]]
ok = bool(health) and bool(seqs)
print(f"{'PASS' if ok else 'FAIL'}|telemetry on the host's broker|{len(mine)} messages "
      f"under {base}, {len(health)} agent health, {len(seqs)} through the buffer (with seq)")
gone = [json.loads(m["payload"]) for m in mine if m["topic"] == base + "events"]
gone = [e for e in gone if e.get("state") == "unavailable" and e.get("kind") in ("input", "relay")]
subjects = sorted({e["subject"] for e in gone})
reason = gone[0]["reason"] if gone else ""
print(f"{'PASS' if len(subjects) == 13 else 'FAIL'}|GPIO unavailable with a reason|"
      f"{len(subjects)} of 13 relays and inputs: {reason[:120]}")
# lgpio imported inside the sandbox: the reason is then the chip, not the import.
imported = bool(gone) and not any("cannot be imported" in e["reason"] for e in gone)
print(f"{'PASS' if imported else 'FAIL'}|pin library in the sandbox (events)|{reason[-90:]}")
EOF
}

subscribe() {  # everything the broker sees, as JSON lines, until killed
    "$HOSTPY" - "$PORT" "$1" <<'EOF' &
import json, sys
import paho.mqtt.client as mqtt
out = open(sys.argv[2], "a", buffering=1)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
c.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
c.on_message = lambda c, u, m: out.write(json.dumps(
    {"topic": m.topic, "payload": m.payload.decode(errors="replace")}) + "\n")
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_forever()
EOF
    SUB_PID=$!
}

PORT=$("$HOSTPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" > "$RUN/mosquitto.conf"
"$MOSQUITTO" -c "$RUN/mosquitto.conf" > "$RUN/mosquitto.log" 2>&1 &
BROKER_PID=$!

for suite in "${SUITES[@]}"; do
    started=$(date +%s)
    tar=$(rootfs_tar "$suite")
    use_qemu "$(qemu_for "$suite")"
    for mode in "${MODES[@]}"; do
        root=$RUN/rootfs/$suite-$mode
        mkdir -p "$root"
        tar -xf "$tar" -C "$root"
        guest_setup "$suite" "$mode" "$root"
        if [ "$mode" = offline ]; then
            if ! ls "$CACHE/$suite-wheelhouse"/*.whl >/dev/null 2>&1; then
                verdict FAIL "$suite" "offline: wheels" "no site wheelhouse from the online run"
                continue
            fi
            if ! offline_wheels "$suite" "$root" "$root/root/wheels" > "$RUN/$suite-wheels.log" 2>&1; then
                verdict FAIL "$suite" "offline: wheels" "$(tail -n 3 "$RUN/$suite-wheels.log" | tr '\n' ' ')"
                continue
            fi
            verdict NOTE "$suite" "offline: wheels" "$(tail -n 1 "$RUN/$suite-wheels.log")"
        else
            : > "$RUN/$suite-mqtt.jsonl"
            subscribe "$RUN/$suite-mqtt.jsonl"
        fi
        boot "$suite" "$mode" "$root"
        if [ "$mode" = online ]; then
            kill "$SUB_PID" 2>/dev/null || true; SUB_PID=""
            mkdir -p "$CACHE/$suite-wheelhouse"
            cp "$root"/root/wheelhouse/*.whl "$CACHE/$suite-wheelhouse/" 2>/dev/null || true
            broker_checks "$suite"
        fi
        collect "$suite" "$mode" "$root"
    done
    verdict NOTE "$suite" "duration" "$(( ($(date +%s) - started) / 60 )) min"
done

echo
echo "target test $(date -u +%Y-%m-%d), $(git -C "$REPO" describe --always --dirty): logs in $RUN"
cat "$VERDICTS"
! grep -q '^FAIL' "$VERDICTS"

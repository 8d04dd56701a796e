#!/usr/bin/env bash
# Sets up everything and runs the whole test suite.
#   scripts/test.sh [--python PYTHON] [--no-lint] [TEST FILES...] [-- PYTEST OPTIONS...]
# Installs mosquitto, nats-server, openssl, systemd-analyze and what the provisioning tests check
# with (below) with apt-get when missing (as root or with sudo); the tests start their own
# mosquitto and NATS cluster on free loopback ports, so a running system broker is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_setup.sh

usage() {
    sed -n '2,3s/^# \{0,1\}//p' "$0"
    echo "pytest's own options go after --, e.g. scripts/test.sh --no-lint -- -x -k config"
}
python=python3
lint=1
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --python)
            if [ $# -lt 2 ] || [[ $2 == -* ]]; then
                echo "test.sh: --python needs an interpreter, e.g. --python python3.11" >&2
                exit 2
            fi
            python=$2; shift 2 ;;
        --no-lint) lint=0; shift ;;
        --) shift; break ;;
        -*) echo "test.sh: unknown option '$1' (pytest's own options go after --;" \
                 "scripts/test.sh --help)" >&2; exit 2 ;;
        *) break ;;
    esac
done

missing=()
[ -n "$(find_mosquitto)" ] || missing+=(mosquitto)
# The second broker: a NATS cluster speaking MQTT 3.1.1 (tests/mqtt_fixtures.py, docs/scaling.md).
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)  # checks the service unit
# The write-budget benchmark (benchmarks/writes.py) measures a loop-mounted ext4 and counts
# fsyncs with strace; the power-cut test builds its fsync shim with cc (make_venv checks cc).
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
command -v losetup >/dev/null 2>&1 || [ -x /sbin/losetup ] || missing+=(mount)
# Provisioning tests: shellcheck and bash -n on the scripts, a real SSH key, and the Python
# libraries Debian's cloud-init imports (the tests unpack cloud-init and netplan with
# `apt-get download` to validate what is written, without installing them).
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
/usr/bin/python3 -c 'import yaml, jsonschema, jinja2, configobj, jsonpatch, requests' 2>/dev/null ||
    missing+=(python3-yaml python3-jsonschema python3-jinja2 python3-configobj python3-jsonpatch
              python3-requests)
[ ${#missing[@]} = 0 ] || apt_install "${missing[@]}"

version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
venv=".venv-$version"
make_venv "$python" "$venv" "[test]"
export PATH="$PWD/$venv/bin:$PATH"

if [ "$lint" = 1 ]; then
    echo "==> ruff"
    ruff check .
    ruff format --check .
    echo "==> mypy"
    mypy
    echo "==> lint-imports (layer contracts)"
    lint-imports
fi
echo "==> pytest on Python $version"
python -m pytest "$@"

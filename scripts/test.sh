#!/usr/bin/env bash
# Sets up everything and runs the whole test suite.
#   scripts/test.sh [--python PYTHON] [--no-lint] [pytest args...]
# Installs mosquitto, nats-server, openssl, systemd-analyze and what the provisioning tests check
# with (below) with apt-get when missing (as root or with sudo); the tests start their own
# mosquitto and NATS cluster on free loopback ports, so a running system broker is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_setup.sh

python=python3
lint=1
while [ $# -gt 0 ]; do
    case $1 in
        --python) python=$2; shift 2 ;;
        --no-lint) lint=0; shift ;;
        *) break ;;
    esac
done

missing=()
[ -n "$(find_mosquitto)" ] || missing+=(mosquitto)
# The second broker: a NATS cluster speaking MQTT 3.1.1 (tests/mqtt_fixtures.py, docs/scaling.md).
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)  # checks the service unit
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
fi
echo "==> pytest on Python $version"
python -m pytest "$@"

#!/usr/bin/env bash
# Sets up everything and runs the demo: the agent on simulated room hardware
# (firmware_configs/demo.toml), a local mosquitto when one is installed, and a live view of what
# the central side receives. Ctrl-C stops it all.
#   scripts/demo.sh [--seconds N]
# Without mosquitto the agent runs anyway and buffers every reading on disk until a broker
# appears; the view then shows the agent's log instead.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_setup.sh

usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; }
seconds=0
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --seconds)
            if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
                echo "demo.sh: --seconds needs a whole number of seconds, e.g. --seconds 60" >&2
                exit 2
            fi
            seconds=$2; shift 2 ;;
        *) echo "demo.sh: unknown argument '$1' (scripts/demo.sh --help lists them)" >&2; exit 2 ;;
    esac
done

make_venv python3 .venv "" >/dev/null
bin="$PWD/.venv/bin"
mkdir -p .demo
port=$("$bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

mosquitto=$(find_mosquitto)
if [ -n "$mosquitto" ]; then
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > .demo/mosquitto.conf
    "$mosquitto" -c .demo/mosquitto.conf > .demo/mosquitto.log 2>&1 &
    pids+=($!)
    sleep 0.5
    echo "==> mosquitto on 127.0.0.1:$port"
else
    echo "==> mosquitto is not installed (sudo apt-get install mosquitto): the agent will buffer"
    echo "    every reading in .demo/state/buffer.sqlite until a broker is reachable"
fi

"$bin/roomagent" run firmware_configs/demo.toml --simulate \
    --broker "127.0.0.1:$port" --state-dir .demo/state > .demo/agent.log 2>&1 &
pids+=($!)
echo "==> agent running (log: .demo/agent.log)"

if [ -n "$mosquitto" ]; then
    echo "==> what the central side receives (roomagent/#):"
    "$bin/roomagent" watch --port "$port" --topic 'roomagent/#' --seconds "$seconds"
else
    if [ "$seconds" != 0 ]; then sleep "$seconds"; cat .demo/agent.log
    else tail -f .demo/agent.log
    fi
fi

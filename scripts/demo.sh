#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, and runs a real fault end to end,
# printing what happened. Leaves nothing running.
#   FAULTLINE_SKIP_DEPS=1  skip installing Debian packages
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "scripts/demo.sh: run as root" >&2; exit 1; fi
[ "${FAULTLINE_SKIP_DEPS:-0}" = 1 ] || scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target faultline faultline-agent
F=build/cli/faultline
work=$(mktemp -d /tmp/faultline-demo-XXXXXX)
agent_pid="" victim_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "$victim_pid" ] && kill -KILL "$victim_pid" 2>/dev/null && wait "$victim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
state() { awk '{print $3}' "/proc/$1/stat"; }

echo "== start an agent on $work/agent.sock"
build/agent/faultline-agent --listen "unix://$work/agent.sock" --state-dir "$work/state" \
  2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$work/agent.sock" ] && break; sleep 0.05; done
sleep 30000 & victim_pid=$!
echo "== victim process $victim_pid is in state $(state $victim_pid)"
echo "== faultline inject process pause --pid $victim_pid --duration 3s"
$F --agent "$work/agent.sock" inject process pause --pid "$victim_pid" --duration 3s
echo "== victim state now: $(state $victim_pid) (T = stopped)"
$F --agent "$work/agent.sock" status
sleep 3.5
echo "== after the duration: victim state $(state $victim_pid)"
$F --agent "$work/agent.sock" status --all

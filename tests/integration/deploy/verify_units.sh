#!/usr/bin/env bash
# systemd-analyze verify on the configured units. The binaries they name are installed only by
# `cmake --install`, so point ExecStart/ExecStopPost at the build tree's copies.
set -euo pipefail
build=$1
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in faultline-agent faultline-controller; do
  sed -e "s|/[^ =]*/sbin/faultline-agent|$build/agent/faultline-agent|g" \
      -e "s|/[^ =]*/sbin/faultline-controller|/bin/true|g" \
      "$build/deploy/systemd/$unit.service" > "$tmp/$unit.service"
done
systemd-analyze verify "$tmp"/*.service
grep -q 'ExecStopPost=.*--recover-only' "$tmp/faultline-agent.service"
# Release threads and FUSE workers need SCHED_FIFO: RestrictRealtime would refuse it to the agent
# and every overlay process it starts.
if grep -q '^RestrictRealtime=yes' "$tmp/faultline-agent.service"; then
  echo "faultline-agent.service: RestrictRealtime=yes forbids the real-time release threads" >&2
  exit 1
fi
echo "units verified"

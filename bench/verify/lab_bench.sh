#!/bin/bash
# The linearizability checker on histories recorded from a lab, next to generated histories of
# the same size (ops, keys, clients, share of unknown writes): one table row per recording, for
# bench/RESULTS.md. Each workload runs for SECONDS as fast as its clients go, with no fault or
# with a follower cut off from the other members (a partition its agent installs) for the middle
# third; each history is also checked with one read made stale (non-linearizable).
#
#   sudo bench/verify/lab_bench.sh [BUILD_DIR] [SECONDS]
#   SPECS="64 1000" FAULTS=partition sudo bench/verify/lab_bench.sh build 600   (one long row)
#
# Needs root (the lab) and a build with faultline, faultline-agent and verify_bench. Everything it
# creates (lab, histories) is under a temp dir and removed at the end.
set -euo pipefail

build=$(realpath "${1:-build}")
seconds=${2:-20}
fl=$build/cli/faultline
vb=$build/bench/verify/verify_bench
name=vb$$
root=$(mktemp -d /tmp/faultline-labbench.XXXXXX)
export FAULTLINE_LAB_ROOT=$root
cleanup() {
  "$fl" lab down --name "$name" >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT

"$fl" lab up --name "$name" --agent-binary "$build/agent/faultline-agent" >/dev/null 2>&1
endpoints=$("$fl" lab endpoints --name "$name")

# A follower (not the leader etcd reports) and the addresses of the other members.
follower_and_peers() {
  "$fl" lab status --name "$name" -o json |
    jq -r '[.members[] | select(.leader | not)][0].name as $f |
           $f, ([.members[] | select(.name != $f) | .endpoint | capture("//(?<a>[^:]+)").a + "/32"]
                | join(","))'
}

echo "| history | ops | keys | clients | unknown writes | verdict | check s | peak RSS MiB |" \
  "failure shown on ops | generated, same size: check s | ratio | generated verdict |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
IFS=';' read -ra specs <<<"${SPECS:-8 10;32 100;64 1000}"
for spec in "${specs[@]}"; do
  read -r clients keys <<<"$spec"
  for fault in ${FAULTS:-none partition}; do
    file=$root/c$clients-k$keys-$fault.jsonl
    "$vb" --record "$file" --endpoints "$endpoints" --clients "$clients" --keys "$keys" \
      --seconds "$seconds" 2>"$root/record.log" &
    recorder=$!
    if [ "$fault" = partition ]; then
      sleep "$(echo "$seconds / 3" | bc -l)"
      mapfile -t fp < <(follower_and_peers)
      "$fl" --lab "$name" --target "${fp[0]}" inject net partition --peer "${fp[1]}" \
        --direction both --duration "$((seconds / 3))s" >/dev/null
    fi
    wait "$recorder"
    sed 's/^/# /' "$root/record.log" >&2
    label="lab, $clients clients, $keys keys, $fault"
    "$vb" --check "$file" --label "$label"
    "$vb" --check "$file" --stale 0.5 --label "$label, stale read at 50%"
    # Let a partitioned follower catch up before the next recording.
    sleep 3
  done
done

#!/bin/bash
# Linearizability checking on histories recorded from a real lab, next to generated histories of
# the same size. Brings up a lab (etcd members in namespaces, each with its agent), records the
# library's workload (linearizable reads, as fast as the cluster goes) for 8 and 32 clients over
# 10 and 1000 keys, with and without a follower partitioned from its peers through its agent
# mid-run, times `faultline check history` on each file, then `verify_bench --compare` (recorded
# vs generated in forked children). Histories are written under a temp dir and removed.
#
#   bench/verify/lab_histories.sh [BUILD_DIR] [SECONDS]     (root; default build, 20 s per run)
#   CLIENTS=64 KEYS=10 PARTITION=1 bench/verify/lab_histories.sh build 400   (one long run)
# Each history is then checked as recorded and with one read made stale (not linearizable).
set -euo pipefail
BUILD=$(realpath "${1:-build}")
SECONDS_PER_RUN=${2:-20}
FL=$BUILD/cli/faultline
VB=$BUILD/bench/verify/verify_bench
WORK=$(mktemp -d /tmp/faultline-vbench.XXXXXX)
export FAULTLINE_LAB_ROOT=$WORK/labs
LAB=vb$$
cleanup() {
  "$FL" lab down --name "$LAB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$FL" lab up --name "$LAB" --no-controller --agent-binary "$BUILD/agent/faultline-agent" >&2
EP=$("$FL" lab endpoints --name "$LAB")

# A follower as an independent etcdctl sees it, and the other members' addresses.
follower() {
  etcdctl --endpoints "$EP" endpoint status -w json |
    jq -r '.[] | select(.Status.leader != .Status.header.member_id) | .Endpoint' | head -1
}

record() {  # FILE CLIENTS KEYS PARTITION(0|1)
  local file=$1 clients=$2 keys=$3 partition=$4
  if [ "$partition" = 1 ]; then
    local fep fhost member peers
    fep=$(follower)
    fhost=${fep#http://}
    fhost=${fhost%:*}
    member=$("$FL" -o json lab status --name "$LAB" |
      jq -r --arg ep "$fep" '.members[] | select(.endpoint == $ep) | .name')
    peers=$(echo "$EP" | tr ',' '\n' | sed -e 's|http://||' -e 's|:.*|/32|' | grep -v "^$fhost/" |
      paste -sd,)
    # A third of the way in, cut the follower from its peers for a third of the run.
    (
      sleep "$((SECONDS_PER_RUN / 3))"
      "$FL" --lab "$LAB" --target "$member" inject net partition --peer "$peers" \
        --direction both --protocol tcp --ports 2380 --duration "$((SECONDS_PER_RUN / 3))s" >&2
    ) &
    local injector=$!
  fi
  "$VB" --record "$file" --endpoints "$EP" --clients "$clients" --keys "$keys" \
    --seconds "$SECONDS_PER_RUN" --seed "$((clients * 1000 + keys))"
  if [ "$partition" = 1 ]; then wait "$injector"; fi
}

FILES=()
for clients in ${CLIENTS:-8 32}; do
  for keys in ${KEYS:-10 1000}; do
    for partition in ${PARTITION:-0 1}; do
      suffix=""
      if [ "$partition" = 1 ]; then suffix=-partition; fi
      f=$WORK/lab-c$clients-k$keys$suffix.jsonl
      record "$f" "$clients" "$keys" "$partition"
      FILES+=("$f")
      # Let a healed member catch up before the next run.
      sleep 3
    done
  done
done

echo "## faultline check history (whole CLI: load, all four checks)"
echo
echo "| history | ops | size MiB | exit | wall s |"
echo "|---|---|---|---|---|"
for f in "${FILES[@]}"; do
  ops=$(grep -c '"kind":"op"' "$f" || true)
  size=$(du -m "$f" | cut -f1)
  start=$(date +%s.%N)
  code=0
  "$FL" check history "$f" -o json >"$WORK/check.json" || code=$?
  end=$(date +%s.%N)
  printf '| %s | %s | %s | %s | %.3f |\n' "$(basename "$f")" "$ops" "$size" "$code" \
    "$(echo "$end - $start" | bc)"
done
echo
echo "## checker on recorded vs generated histories of the same size"
echo
"$VB" --compare "${FILES[@]}"
echo
echo "## the same with one read of each made stale at 50% (not linearizable)"
echo
"$VB" --stale 0.5 --compare "${FILES[@]}"

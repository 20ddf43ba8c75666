#!/usr/bin/env bash
# The README's main command. Installs dependencies, builds, brings up a 3-member etcd lab (etcd in
# network namespaces, each member's data dir on a faultline FUSE overlay, one agent per member),
# runs real faults against it end to end, shows what happened to the cluster, and tears the lab
# down — also when interrupted.
#   FAULTLINE_SKIP_DEPS=1  skip installing Debian packages
#   FAULTLINE_LAB=NAME     lab name (default "demo")
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "scripts/demo.sh: run as root" >&2; exit 1; fi
[ "${FAULTLINE_SKIP_DEPS:-0}" = 1 ] || scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target faultline faultline-agent faultline-controller \
  faultline-seccomp-exec
export PATH="$PWD/build/cli:$PATH"
lab=${FAULTLINE_LAB:-demo}
export ETCDCTL_API=3

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
leader() { faultline lab status --name "$lab" | awk '/leader/ {print $NF; exit}'; }
endpoint() { faultline lab endpoints --name "$lab" | tr ',' '\n' | sed -n "${1#e}p"; }
wal_fsync_ms() {  # mean WAL fsync (ms) of a member, from etcd's own /metrics, since $2/$3
  curl -s "$(endpoint "$1")/metrics" |
    awk -v s0="$2" -v c0="$3" '/^etcd_disk_wal_fsync_duration_seconds_sum/ {s=$2}
      /^etcd_disk_wal_fsync_duration_seconds_count/ {c=$2}
      END {if (c > c0) printf "%.1f ms over %d fsyncs\n", (s-s0)*1000/(c-c0), c-c0; else print "no fsyncs"}'
}
wal_counters() {
  curl -s "$(endpoint "$1")/metrics" |
    awk '/^etcd_disk_wal_fsync_duration_seconds_sum/ {s=$2} /^etcd_disk_wal_fsync_duration_seconds_count/ {c=$2} END {print s, c}'
}

trap 'step "lab down"; faultline lab down --name "$lab" || true' EXIT
step "lab up: 3 etcd members in network namespaces, one faultline agent each"
faultline lab up --name "$lab" --members 3
faultline lab status --name "$lab"
endpoints=$(faultline lab endpoints --name "$lab")
etcdctl --endpoints "$endpoints" put /demo/before "written before any fault" >/dev/null

step "experiment: experiments/catalog/leader-pause.yaml — a workload runs, the leader's etcd is
   frozen (SIGSTOP) for 20s, then faultline proves what happened to the data"
reports=${FAULTLINE_REPORTS:-/tmp/faultline-demo-reports}
faultline run experiments/catalog/leader-pause.yaml --lab "$lab" --report-dir "$reports" || verdict=$?
echo "reports (JSON, JUnit XML, HTML timeline): $(ls -d "$reports"/*/ | tail -1)"
[ "${verdict:-0}" = 0 ] || echo "the experiment found a problem (exit ${verdict}); see the report"
faultline lab status --name "$lab"

leader_now=$(leader)
step "by hand: 100ms on every WAL fdatasync of the leader ($leader_now), through its FUSE overlay"
read -r s0 c0 < <(wal_counters "$leader_now")
faultline --lab "$lab" --target "$leader_now" inject io latency \
  --mount "${FAULTLINE_LAB_ROOT:-/var/lib/faultline/lab}/$lab/$leader_now/etcd" \
  --path '**/*.wal' --methods fdatasync,fsync --delay 100ms --duration 30s
start=$(date +%s%N)
for i in $(seq 10); do etcdctl --endpoints "$(endpoint "$leader_now")" put "/demo/slow/$i" "$i" >/dev/null; done
echo "10 puts took $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo "etcd's own WAL fsync metric on $leader_now during the fault: $(wal_fsync_ms "$leader_now" "$s0" "$c0")"
faultline --lab "$lab" --target "$leader_now" recover --all

step "the data survived: every member serves every key (serializable reads, member by member)"
for e in e1 e2 e3; do
  n=$(etcdctl --endpoints "$(endpoint $e)" get /demo --prefix --keys-only --consistency=s | grep -c .)
  echo "$e: $n keys under /demo"
done
step "faultline check etcd: health, convergence, revisions, HashKV, key counts, alarms on every member"
faultline check etcd --endpoints "$(faultline lab endpoints --name "$lab")"

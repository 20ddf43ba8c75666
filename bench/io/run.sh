#!/bin/sh
# Builds and runs the IO overlay benchmark on the real disk (/var/tmp, not tmpfs) and prints
# Markdown for bench/RESULTS.md. Run as root from the repository root:
#   bench/io/run.sh [build-dir] [rounds]
set -eu
build=${1:-build}
rounds=${2:-3}
ninja -C "$build" -j2 io_overlay_bench >/dev/null
echo "Kernel $(uname -r), $(nproc) cores, $(df -T /var/tmp | awk 'NR==2 {print $2 " on " $1}')"
echo
"$build/bench/io/io_overlay_bench" --rounds "$rounds"

#!/usr/bin/env bash
# Builds faultline and runs every test tier: unit, integration (root: namespaces, FUSE, nftables,
# real etcd) and kernel (netem in a qemu-booted Debian kernel). This is the README's test command
# and what CI runs.
#   FAULTLINE_SKIP_DEPS=1   skip installing Debian packages (already installed)
#   FAULTLINE_TESTS=REGEX   run only tests whose name matches
#   FAULTLINE_SANITIZE=1    build with ASan/UBSan (separate build dir)
#   FAULTLINE_SLOW=1        also run the `slow` label (bug rows too long for CI)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run as root (integration tests create namespaces, mounts, qdiscs)" >&2
  exit 1
fi
[ "${FAULTLINE_SKIP_DEPS:-0}" = 1 ] || scripts/install-deps.sh
build=build
san=OFF
if [ "${FAULTLINE_SANITIZE:-0}" = 1 ]; then build=build-asan; san=ON; fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAULTLINE_SANITIZE=$san
cmake --build "$build" -j"$(nproc)"
args=(--test-dir "$build" --output-on-failure --no-tests=error)
[ -n "${FAULTLINE_TESTS:-}" ] && args+=(-R "$FAULTLINE_TESTS")
[ "${FAULTLINE_SLOW:-0}" = 1 ] || args+=(-LE slow)
# Serial: integration tests measure latency and RTT, and parallel runs on 2 cores skew them.
ctest "${args[@]}"

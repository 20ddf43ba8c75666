#!/usr/bin/env bash
# Installs every build, test and lab dependency of faultline from Debian's archive.
# Used by the README and by .ci/run; safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (apt-get)" >&2
  exit 1
fi
apt-get update -q
apt-get install -y -q --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates \
  clang-format clang-tidy \
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libssl-dev \
  libcli11-dev libyaml-cpp-dev nlohmann-json3-dev libmicrohttpd-dev \
  libfuse3-dev fuse3 \
  libnl-3-dev libnl-route-3-dev libmnl-dev libnftnl-dev libnetfilter-queue-dev \
  libseccomp-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  iproute2 iputils-ping nftables procps psmisc curl openssl \
  etcd-server etcd-client
# Other etcd versions for the bug track record (experiments/bugs): bookworm's 3.4, trixie's and
# sid's 3.5, unpacked under /var/lib/faultline/etcd/VERSION, never over the system's etcd.
"$(dirname "$0")/install-etcd.sh" bookworm trixie sid
# The kernel lane (netem under qemu) needs a Debian cloud kernel and qemu; optional so that a
# machine without them still builds and runs every other tier.
if [ "${FAULTLINE_KERNEL_LANE:-1}" = "1" ]; then
  apt-get install -y -q --no-install-recommends \
    qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio kmod || \
    echo "install-deps.sh: kernel lane packages unavailable; kernel tests will be skipped" >&2
fi
# kustomize rendering for the manifest tests: any kubectl will do (some images ship their own
# kubectl package, which Debian's kubernetes-client would conflict with).
command -v kubectl >/dev/null || apt-get install -y -q --no-install-recommends kubernetes-client
# The Kubernetes manifest validator runs on Node.js; machines that already have node/npm keep
# theirs. Its npm packages are pinned by package-lock.json.
command -v npm >/dev/null || apt-get install -y -q --no-install-recommends nodejs npm
(cd "$(dirname "$0")/../deploy/kubernetes/validate" && npm ci --no-audit --no-fund --loglevel=error)

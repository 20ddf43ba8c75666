#!/usr/bin/env bash
# Renders deploy/kubernetes with kustomize and validates every object (see validate.mjs).
set -euo pipefail
dir=$1
command -v node >/dev/null && command -v kubectl >/dev/null ||
  { echo "node or kubectl missing (scripts/install-deps.sh installs them): skipped"; exit 77; }
[ -d "$dir/validate/node_modules" ] ||
  { echo "npm packages missing (run scripts/install-deps.sh): skipped"; exit 77; }
cd "$dir/validate"
node validate.mjs --self-test
kubectl kustomize "$dir" | node validate.mjs
# The same with the HA component (deploy/kubernetes/ha) enabled, through a throwaway overlay
# (kustomize wants relative paths, and an overlay may not live inside its base).
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
rel=$(realpath --relative-to="$overlay" "$dir")
printf 'resources:\n  - %s\ncomponents:\n  - %s/ha\n' "$rel" "$rel" > "$overlay/kustomization.yaml"
rendered=$(kubectl kustomize "$overlay")
grep -q -- '--state=etcd://' <<<"$rendered" || { echo "ha: --state not set"; exit 1; }
! grep -q 'kind: PersistentVolumeClaim' <<<"$rendered" || { echo "ha: the state PVC is left"; exit 1; }
node validate.mjs <<<"$rendered"

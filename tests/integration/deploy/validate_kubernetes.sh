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

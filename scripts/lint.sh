#!/usr/bin/env bash
# clang-format (check only) and clang-tidy over the project's own sources.
# Needs a configured build dir (compile_commands.json): run scripts/test.sh or cmake first.
set -uo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cc' '*.h' | grep -v '^build')
rc=0
clang-format --dry-run --Werror $files || rc=1
if [ "${1:-}" = "--tidy" ]; then
  clang-tidy -p build --quiet $(echo "$files" | grep '\.cc$') || rc=1
fi
exit $rc

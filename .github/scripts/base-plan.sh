#!/usr/bin/env bash
# The offline plan of the pull request's base, for `make plan-diff`. A base without the plan verb
# (the first pull request) yields an empty plan, so everything shows as added.
set -euo pipefail
base_checkout=$1
out=$(realpath -m "$2")
mkdir -p "$out"
if grep -q '^plan:' "$base_checkout/Makefile" 2>/dev/null; then
  make -C "$base_checkout" -s plan ENV=all PLAN_DIR="$out" DIST="$PWD/dist"
else
  echo "base has no offline plan: every resource will show as added" >&2
fi

#!/usr/bin/env bash
# The commit this run deploys, as a step output: the pushed commit, or for a rollback an earlier
# commit of main, checked out as it was. Only main's history may be deployed: a commit that never
# reached main (an unreviewed branch) is refused.
set -euo pipefail
ref=$(git rev-parse HEAD)
if ! git merge-base --is-ancestor "$ref" "${MAIN_REF:-origin/main}"; then
  echo "commit $ref is not in main's history: only what was merged can be deployed" >&2
  exit 1
fi
echo "ref=$ref"

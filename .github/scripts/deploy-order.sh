#!/usr/bin/env bash
# Deploys of main apply in commit order. Before an up of STACK with commit REF: if the stack already
# runs a newer commit of main (a re-run of an old deploy run, or an older run that lost a race), stop
# and say so, rather than roll it back silently. A rollback is the explicit one: ROLLBACK=true, from
# the `ref` input of a dispatched deploy. A stack not created yet, or deployed before the stack
# recorded its commit, has nothing to compare with.
set -euo pipefail
stack=$1 ref=$2
[ "${ROLLBACK:-false}" != true ] || { echo "rollback to $ref: an older commit is intended"; exit 0; }
"$(dirname "$0")/pulumi-login.sh" > /dev/null
deployed=$(pulumi stack output commit --stack "$stack" 2> /dev/null || true)
if [ -z "$deployed" ] || [ "$deployed" = null ] || [ "$deployed" = "$ref" ]; then
  echo "$stack: deploying $ref${deployed:+ (it runs ${deployed})}"
  exit 0
fi
if git merge-base --is-ancestor "$ref" "$deployed" 2> /dev/null; then
  echo "error: $stack already runs $deployed, which is newer than this run's $ref; not deploying an older" \
    "commit over it. To roll back on purpose, run the deploy workflow with ref=$ref." >&2
  exit 1
fi
echo "$stack: deploying $ref over $deployed"

#!/usr/bin/env bash
# One stack's deploy, step by step (infra/delivery/rollout.py): `rollout.sh run STACK IMAGE` moves ENVIRONMENT's
# traffic to IMAGE as its rollout* settings say, smoke-testing and baking each step, and rolls both
# runtimes back on a failure; `rollout.sh abort STACK IMAGE` discards a rollout a cancelled run left.
# STRATEGY=all-at-once skips the canary (a rollback to an earlier ref); PROMOTE_NOW=true also skips
# the bakes. The timeline goes to the job summary; the stack's outputs to build/outputs-ENVIRONMENT.json.
# Further arguments go to infra/delivery/rollout.py (--interval, --kubernetes-url, …). The job's config comes
# from AWS_REGION, COMMIT, LAMBDA_IMAGE_ARM64/X86_64 and PULUMI_SECRETS_PROVIDER (infra/engine.py).
# The rollout replaces this shell (exec), and the workflow step execs this script: the runner's cancel
# (SIGINT, SIGTERM 7.5 s later, to the step's process only) reaches the rollout, which interrupts its
# update and stops before the abort step starts (infra/delivery/interrupt.py).
set -euo pipefail
command=$1 stack=$2 image=$3
shift 3
: "${ENVIRONMENT:?is not set: the environment whose settings the rollout follows}"
"$(dirname "$0")/pulumi-login.sh"
strategy=${STRATEGY:-settings}
bake=()
if [ "${PROMOTE_NOW:-false}" = true ]; then strategy=all-at-once bake=(--bake-seconds 0); fi
mkdir -p build
exec infra/.venv/bin/python infra/delivery/rollout.py "$command" --stack "$stack" --env "$ENVIRONMENT" \
  --image "$image" \
  --strategy "$strategy" "${bake[@]}" ${GITHUB_STEP_SUMMARY:+--summary "$GITHUB_STEP_SUMMARY"} \
  --outputs "build/outputs-$ENVIRONMENT.json" "$@"

#!/usr/bin/env bash
# The deploy's `pulumi up` of one stack: logs in (PULUMI_BACKEND_URL, or Pulumi Cloud), creates the
# stack on its first deploy with PULUMI_SECRETS_PROVIDER, and runs up with the policy pack through
# infra/engine.py on IMAGE (and its platform manifests LAMBDA_IMAGE_ARM64 and LAMBDA_IMAGE_X86_64,
# for a Lambda image function), in AWS_REGION (the repository variable the bootstrap set), recording
# COMMIT (the commit of main deployed). Later runners find the secrets provider in the stack's state.
# Any further arguments (--config KEY=VALUE) follow, and win over these. The rollout runs the same
# up in its own process (infra/delivery/rollout_io.py), so a cancel reaches the CLI.
set -euo pipefail
stack=$1 image=$2
shift 2
: "${AWS_REGION:?is not set: the repository variable AWS_REGION (set by make bootstrap) names the region of every resource}"
"$(dirname "$0")/pulumi-login.sh"
exec infra/.venv/bin/python infra/engine.py up --stack "$stack" --create \
  ${PULUMI_SECRETS_PROVIDER:+--secrets-provider "$PULUMI_SECRETS_PROVIDER"} --deploy-env \
  --config "image=$image" "$@"

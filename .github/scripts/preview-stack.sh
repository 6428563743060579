#!/usr/bin/env bash
# `pulumi preview` of one stack (infra/engine.py, with the policy pack) in AWS_REGION against the
# images it runs now, its own output (policy violations included) written for the PR comment. Logs
# in explicitly (PULUMI_BACKEND_URL, or Pulumi Cloud with PULUMI_ACCESS_TOKEN). A stack that does
# not exist yet is said so; any other failure (login, credentials, organisation, a cluster secret
# that is not a kubeconfig) fails the job and the comment says why.
set -euo pipefail
stack=$1 environment=$2 out=$3
log=$(mktemp)
comment() { PREVIEW_OUTPUT=$1 "$(dirname "$0")/write-preview.sh" "$environment" "$out"; }

if [ -z "${AWS_REGION:-}" ]; then
  comment "AWS_REGION is not set, so nothing was previewed: the repository variable AWS_REGION (set by make bootstrap) names the region of every resource."
  echo "error: AWS_REGION is not set" >&2
  exit 1
fi
if ! "$(dirname "$0")/pulumi-login.sh" > "$log" 2>&1; then
  comment "pulumi login failed, so nothing was previewed:"$'\n'"$(cat "$log")"
  cat "$log" >&2
  exit 1
fi
if ! outputs=$(pulumi stack output --json --stack "$stack" 2> "$log"); then
  if grep -q "no stack named" "$log"; then
    comment "No stack named '$stack' yet, so nothing to preview; the first merge to main creates it."
    exit 0
  fi
  comment "Reading the stack's deployed image failed, so nothing was previewed:"$'\n'"$(cat "$log")"
  cat "$log" >&2
  exit 1
fi
# Environment secrets are invisible without `environment:` (which would wait for prod's reviewers),
# so each cluster is reached with a read-only kubeconfig in a repository secret per environment.
cluster_var="PREVIEW_KUBECONFIG_${environment^^}"
if [ -n "${!cluster_var:-}" ]; then
  if ! infra/.venv/bin/python "$(dirname "$0")/kubeconfig-masks.py" <<< "${!cluster_var}" 2> "$log"; then
    comment "The $cluster_var secret is not usable, so nothing was previewed: $(cat "$log")"
    cat "$log" >&2
    exit 1
  fi
  umask 077
  export KUBECONFIG="${RUNNER_TEMP:-$(mktemp -d)}/preview-kubeconfig"
  printf '%s\n' "${!cluster_var}" > "$KUBECONFIG"
  cluster_note=""
else
  cluster_note="Note: no $cluster_var secret, so the Kubernetes resources were previewed without the cluster (no server-side checks, no live diff)."
fi
status=0
# The images the stack runs now: the image, and its platform manifests when Lambda runs one.
deployed=()
while IFS= read -r pair; do deployed+=(--config "$pair"); done < <(python3 -c '
import json, sys
outputs = json.load(sys.stdin)
for key in ("image", "lambdaImageArm64", "lambdaImageX8664"):
    if outputs.get(key):
        print(f"{key}={outputs[key]}")
' <<< "$outputs")
infra/.venv/bin/python infra/engine.py preview --stack "$stack" "${deployed[@]}" \
  --config "aws:region=$AWS_REGION" > "$log" 2>&1 || status=$?
cat "$log"
comment "${cluster_note:+$cluster_note$'\n\n'}$(cat "$log")"
exit "$status"

#!/usr/bin/env bash
# A kubeconfig from the KUBECONFIG secret, written where only this job reads it and exported for the
# following steps. Without the secret, Kubernetes stacks use the runner's ambient context.
set -euo pipefail
if [ -z "${KUBECONFIG_CONTENT:-}" ]; then
  echo "no KUBECONFIG secret: using the ambient Kubernetes context" >&2
  exit 0
fi
# Each of its credentials masked on its own, before anything can print one (GitHub masks the YAML
# secret as a whole only); a secret that is not a kubeconfig stops here, named.
infra/.venv/bin/python "$(dirname "$0")/kubeconfig-masks.py" <<< "$KUBECONFIG_CONTENT"
path="$RUNNER_TEMP/kubeconfig"
umask 077
printf '%s\n' "$KUBECONFIG_CONTENT" > "$path"
echo "KUBECONFIG=$path" >> "$GITHUB_ENV"

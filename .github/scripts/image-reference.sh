#!/usr/bin/env bash
# The image every environment deploys, by digest: the one just pushed, or the one already there for
# the same inputs.
set -euo pipefail
image="$ECR_REPOSITORY_URL@$PUSHED_DIGEST"
if ! [[ $image =~ @sha256:[0-9a-f]{64}$ ]]; then
  echo "image reference '$image' is not by digest (…@sha256:<64 hex>)" >&2
  exit 1
fi
echo "image=$image"

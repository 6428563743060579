#!/usr/bin/env bash
# The image a stack runs now, as step outputs: previews then show only this change's infrastructure,
# not an image swap. exists=false when the stack has never been deployed.
set -euo pipefail
stack=$1
if image=$(pulumi stack output image --stack "$stack" 2>/dev/null) && [ -n "$image" ]; then
  echo "exists=true"
  echo "image=$image"
else
  echo "exists=false"
fi

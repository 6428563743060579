#!/usr/bin/env bash
# Whether the repository already holds an image tagged TAG, and its digest: then nothing is built or
# pushed. Only "no such image" means build it; any other failure stops the job.
set -euo pipefail
repository=${ECR_REPOSITORY_URL#*/}
err=$(mktemp)
if digest=$(aws ecr describe-images --repository-name "$repository" --image-ids "imageTag=$TAG" \
  --query 'imageDetails[0].imageDigest' --output text 2> "$err"); then
  echo "exists=true"
  echo "digest=$digest"
elif grep -q "ImageNotFoundException" "$err"; then
  echo "exists=false"
else
  cat "$err" >&2
  exit 1
fi

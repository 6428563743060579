#!/usr/bin/env bash
# The image's content tag: a digest of everything its build copies in (the Dockerfile, the serving
# code and locks, the exported model), so a commit that changes none of them reuses the image
# already pushed, and a re-run never pushes a tag that exists (the repository's tags are immutable).
# PLATFORMS, the architectures it is built for, is an input too.
set -euo pipefail
model_dir=build/models/${MODEL_NAME:-iris}/${MODEL_VERSION:-1}
[ -d "$model_dir" ] || { echo "$model_dir is missing: run \`make model\` first" >&2; exit 1; }
digest=$( {
  echo "platforms ${PLATFORMS:-}"
  find serving/Dockerfile serving/*.py serving/requirements-*.txt "$model_dir" -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-40)
echo "tag=inputs-$digest"

#!/usr/bin/env bash
# The Pulumi CLI every preview and deploy runs, on the job's PATH for the following steps: the version
# the real-engine tests build and run (PULUMI_VERSION in tests/tools/versions.env, no older than the
# SDK in infra/requirements.txt), built by tests/tools/build.sh from the Go module proxy with every
# module checked against Go's checksum database (sum.golang.org). No unverified download: the
# installer in pulumi/actions checks no checksum. A cache restored from the job that built it (the
# deploy's `engine` job, the pull request's `tools` job) makes the build a no-op; a miss builds here.
set -euo pipefail
command -v go > /dev/null || PATH=$PATH:/usr/local/go/bin
for unverified in GONOSUMDB GONOSUMCHECK GOINSECURE GOPRIVATE; do
  if [ -n "$(go env "$unverified" 2> /dev/null)" ]; then
    echo "error: $unverified is set, so some modules would not be checked against the checksum database" >&2
    exit 1
  fi
done
if [ "$(go env GOSUMDB)" = off ]; then
  echo "error: GOSUMDB=off: the modules the CLI is built from would not be checked" >&2
  exit 1
fi
TWINSERVE_BUILT_PULUMI=true tests/tools/build.sh --only pulumi >&2
pulumi=$(TWINSERVE_BUILT_PULUMI=true tests/tools/build.sh --paths | sed -n 's/^PULUMI=//p')
[ -x "$pulumi" ] || { echo "error: no Pulumi CLI at '$pulumi' after the build" >&2; exit 1; }
dirname "$pulumi" >> "${GITHUB_PATH:?is not set: this script sets up a workflow job}"
"$pulumi" version

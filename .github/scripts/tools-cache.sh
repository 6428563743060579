#!/usr/bin/env bash
# The cache key and folders of one group of engines (TOOLS_GROUP), as step outputs for actions/cache:
# the key names every version the folders hold and the Go (tests/tools/go-version) that built them.
set -euo pipefail
: "${TOOLS_GROUP:?is not set: pulumi, kubernetes-provider, control-plane or checkers}"
exec tests/tools/build.sh --cache "$TOOLS_GROUP"

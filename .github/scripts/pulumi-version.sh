#!/usr/bin/env bash
# The CLI version the workflows install: the one the real-engine tests build and run
# (tests/tools/versions.env), so what deploys is what the suite ran. It must not be older than the
# Python SDK in infra/requirements.txt (the Automation API refuses an older CLI).
set -euo pipefail
version=$(sed -n 's/^PULUMI_VERSION=\([0-9.]*\)$/\1/p' tests/tools/versions.env)
[ -n "$version" ] || { echo "no PULUMI_VERSION in tests/tools/versions.env" >&2; exit 1; }
echo "version=$version"

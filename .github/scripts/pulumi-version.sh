#!/usr/bin/env bash
# The CLI version the workflows install: the Python SDK's, from the lock Dependabot updates.
set -euo pipefail
version=$(sed -n 's/^pulumi==\([0-9.]*\).*/\1/p' infra/requirements.txt)
[ -n "$version" ] || { echo "no pulumi== pin in infra/requirements.txt" >&2; exit 1; }
echo "version=$version"

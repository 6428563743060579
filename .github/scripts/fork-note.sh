#!/usr/bin/env bash
# Why a pull request from a fork, or from Dependabot, shows no live preview.
set -euo pipefail
echo "Pull requests from forks and from Dependabot get no cloud credentials, so no live \`pulumi preview\` ran." \
  "The offline plan job shows everything this change declares, and its diff against main."

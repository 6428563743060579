#!/usr/bin/env bash
# The scheduled drift report's matrix: the environments whose function captures payloads, with the
# function's log group, as the program reads the committed stack files (`matrix=<JSON>` for $GITHUB_OUTPUT).
set -euo pipefail
exec infra/.venv/bin/python -m drift.environments

#!/usr/bin/env bash
# The deploy's start time as a step output, for the summary's duration.
set -euo pipefail
echo "at=$(date +%s)"

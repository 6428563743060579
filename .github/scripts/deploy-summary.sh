#!/usr/bin/env bash
# The job summary of one deploy: how long it took and the endpoints it left behind.
set -euo pipefail
seconds=$(( $(date +%s) - ${STARTED_AT:-$(date +%s)} ))
echo "### $ENVIRONMENT: deployed in ${seconds} s"
echo
echo "| output | value |"
echo "|---|---|"
outputs="build/outputs-$ENVIRONMENT.json"
if [ -f "$outputs" ]; then
  # shellcheck disable=SC2016 # the quoted text is a Python program, not shell
  infra/.venv/bin/python -c 'import json, sys
for key, value in sorted(json.load(open(sys.argv[1])).items()):
    print(f"| {key} | `{value}` |")' "$outputs"
fi

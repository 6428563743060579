#!/usr/bin/env bash
# When a pull request changes what the cost comparison reads (environments, settings, serving),
# run `make compare` and print its report for the job summary; otherwise say why not.
set -euo pipefail
base_checkout=$1
changed=no
for path in environments Pulumi.yaml infra/program/settings.py infra/compare serving model; do
  if ! diff -rq "$base_checkout/$path" "$path" >/dev/null 2>&1; then changed=yes; fi
done
if [ "$changed" = yes ]; then
  make -s compare >&2
  cat build/compare/report.md
else
  echo "No change to environments, settings, serving or the model: the cost comparison is unchanged."
fi

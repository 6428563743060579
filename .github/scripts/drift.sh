#!/usr/bin/env bash
# One environment's scheduled drift report: `make drift` over its function's log group (the job summary
# gets the report), then one open issue per environment while its drift lasts: opened, or commented on,
# when a report finds drift; closed when one finds none. A report that could not be made (no reference,
# an unreadable log group) fails the job and touches no issue; one with too few records changes nothing.
set -uo pipefail
env=${ENV:?ENV names the environment} log_group=${LOG_GROUP:?LOG_GROUP names its function\'s log group}
report="build/drift/$env.md"
title="Drift in $env"
rm -f "$report"
make -s drift ENV="$env" LOG_GROUP="$log_group"
code=$?
if [ ! -s "$report" ]; then
  echo "error: no drift report for $env (make drift exited $code)" >&2
  [ "$code" -ne 0 ] || code=1
  exit "$code"
fi
set -e
open=$(gh issue list --state open --search "\"$title\" in:title" --json number,title \
  --jq "map(select(.title == \"$title\")) | .[0].number // empty")
if grep -q '^\*\*Drift\*\*' "$report"; then
  echo "::warning title=$title::$(sed -n 3p "$report")"
  if [ -n "$open" ]; then
    gh issue comment "$open" --body-file "$report"
  else
    gh issue create --title "$title" --body-file "$report"
  fi
elif grep -q '^No drift' "$report" && [ -n "$open" ]; then
  gh issue close "$open" --comment "No drift in $env in the report of $(date -u +%Y-%m-%d)."
fi

#!/usr/bin/env bash
# One environment's preview as a markdown file for the comment job (from PREVIEW_OUTPUT).
set -euo pipefail
environment=$1
out=$2
mkdir -p "$out"
{
  echo "<!-- twinserve-preview:$environment -->"
  echo "### \`pulumi preview\`: $environment"
  echo
  echo '<details><summary>output</summary>'
  echo
  echo '```'
  printf '%s\n' "$PREVIEW_OUTPUT" | tail -c 60000
  echo '```'
  echo '</details>'
} > "$out/$environment.md"

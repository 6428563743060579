#!/usr/bin/env bash
# One environment's preview as a markdown file for the comment job (from PREVIEW_OUTPUT).
set -euo pipefail
environment=$1
out=$2
[[ $environment =~ ^[a-z0-9-]+$ ]] || { echo "not an environment name: '$environment'" >&2; exit 2; }
mkdir -p "$out"
output=$(printf '%s\n' "$PREVIEW_OUTPUT" | tail -c 60000)
# The output is the pull request's own: a fence longer than any run of backticks in it, so nothing in
# it can close the code block and write markdown or HTML into the comment.
longest=$(printf '%s' "$output" | { grep -o '`\+' || true; } | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
fence=$(printf '`%.0s' $(seq 1 $((longest < 3 ? 3 : longest + 1))))
{
  echo "<!-- twinserve-preview:$environment -->"
  echo "### \`pulumi preview\`: $environment"
  echo
  echo '<details><summary>output</summary>'
  echo
  echo "$fence"
  printf '%s\n' "$output"
  echo "$fence"
  echo '</details>'
} > "$out/$environment.md"

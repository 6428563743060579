#!/usr/bin/env bash
# One comment per environment on the pull request, found by its marker and edited in place, so each
# push updates it rather than adding another (matrix jobs would otherwise overwrite one comment).
# Only the workflow's own comments count: anyone may post a comment that starts with the marker.
set -euo pipefail
BOT_LOGIN=${BOT_LOGIN:-github-actions[bot]}
dir=$1
for file in "$dir"/*.md; do
  [ -e "$file" ] || continue
  marker=$(head -n 1 "$file")
  id=$(gh api --paginate "repos/$REPOSITORY/issues/$PR_NUMBER/comments" \
    --jq ".[] | select(.user.login == \"$BOT_LOGIN\" and (.body | startswith(\"$marker\"))) | .id" | head -n 1)
  if [ -n "$id" ]; then
    gh api --method PATCH "repos/$REPOSITORY/issues/comments/$id" -F "body=@$file" > /dev/null
  else
    gh api --method POST "repos/$REPOSITORY/issues/$PR_NUMBER/comments" -F "body=@$file" > /dev/null
  fi
done

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
  # The files come from the previews' artifact: only a marker of the exact form is used, and only as data.
  [[ $marker =~ ^'<!-- twinserve-preview:'[a-z0-9-]+' -->'$ ]] || { echo "$file: no preview marker" >&2; exit 1; }
  id=$(gh api --paginate "repos/$REPOSITORY/issues/$PR_NUMBER/comments" \
    | jq -r --arg bot "$BOT_LOGIN" --arg marker "$marker" \
      '.[] | select(.user.login == $bot and (.body | startswith($marker))) | .id' | head -n 1)
  if [ -n "$id" ]; then
    gh api --method PATCH "repos/$REPOSITORY/issues/comments/$id" -F "body=@$file" > /dev/null
  else
    gh api --method POST "repos/$REPOSITORY/issues/$PR_NUMBER/comments" -F "body=@$file" > /dev/null
  fi
done

#!/usr/bin/env bash
# The job summary where prod is promoted by hand (PROD_GATE=manual: a private repository whose plan
# has no required reviewers): what passed staging, and the one command that promotes it.
set -euo pipefail
echo "### prod: not deployed by this run"
echo
echo "This repository's plan has no required reviewers for a private repository, so a merge stops at"
echo "staging. \`$COMMIT\` passed staging; to promote it to prod:"
echo
echo "    gh workflow run deploy.yml --repo $REPOSITORY -f ref=$COMMIT -f prod=true"

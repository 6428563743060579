#!/usr/bin/env bash
# `make bootstrap REPO=owner/name`: everything a fork needs before its first deploy, in one run that
# is safe to repeat: the dev, staging and prod environments, each limited to `main`, prod behind your
# review where the plan allows it (else promoted by hand, and it says so); the bootstrap stack (OIDC
# provider, or the account's existing one; roles, ECR, capture buckets, optional state bucket); the repository
# variables from its outputs. Prints everything it sets. Needs pulumi, gh (logged in), python3 and
# administrator credentials for the AWS account. REGION: eu-west-1 on the first run unless set, then
# the stack's (set once, it reaches the roles, ECR, the AWS_REGION variable and so every stack).
# STATE_BACKEND=true for the S3 backend, YES=1 to skip the `pulumi up` confirmation, OIDC_SUBJECTS=
# ids|names|both to choose the OIDC subject format the roles trust (default: from the creation date),
# CAPTURE_ARCHIVE_DAYS= how long the capture buckets keep a record (30; 0 makes none).
set -euo pipefail
repo=${REPO:-}
if ! [[ $repo =~ ^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$ ]]; then
  echo "error: REPO='$repo' is not the fork as owner/name (make bootstrap REPO=acme/models)" >&2
  exit 2
fi
for tool in pulumi gh python3; do
  command -v "$tool" > /dev/null || { echo "error: $tool is not installed" >&2; exit 2; }
done
gh auth status > /dev/null 2>&1 || { echo "error: gh is not logged in: run \`gh auth login\`" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
read -r visibility owner_id repository_id created owner_type < <(gh api "repos/$repo" --jq '[.visibility, .owner.id, .id, .created_at, .owner.type] | @tsv')
# Whoever pushed a deploy may not approve it where others can (an organization's repository); a
# personal fork's only reviewer is its owner, who must be able to approve. PREVENT_SELF_REVIEW decides.
self_review=${PREVENT_SELF_REVIEW:-$([ "${owner_type:-User}" = Organization ] && echo true || echo false)}
echo "== environments of $repo ($visibility)"
# What the plan offers decides how prod is gated, and it is said: required reviewers (public
# repositories, or GitHub Enterprise); else environments without reviewers (private, Pro or Team) and
# prod promoted by hand; else no environments at all (private, GitHub Free).
reviewer=$(gh api user --jq .id)
refused=$(mktemp)
trap 'rm -f "$refused"' EXIT
put_environment() {
  printf '{%s"deployment_branch_policy": {"protected_branches": false, "custom_branch_policies": true}}' "$2" \
    | gh api -X PUT "repos/$repo/environments/$1" --input - > /dev/null 2> "$refused"
}
gate=reviewers environments=true
for env in dev staging prod; do
  review=""
  if [ "$env" = prod ] && put_environment prod "\"reviewers\": [{\"type\": \"User\", \"id\": $reviewer}], \"prevent_self_review\": $self_review, "; then
    review=", each deploy waits for your review (self-review $([ "$self_review" = true ] && echo prevented || echo allowed))"
  elif put_environment "$env" ""; then
    [ "$env" != prod ] || gate=manual
  else
    echo "GitHub refused the environment $env: $(cat "$refused")"
    # Only a private or internal repository's plan may lack environments; anything else is an error.
    [ "$visibility" != public ] || exit 1
    environments=false gate=manual
    break
  fi
  policies=$(gh api "repos/$repo/environments/$env/deployment-branch-policies" --jq '.branch_policies[].name')
  if ! grep -qx main <<< "$policies"; then
    gh api -X POST "repos/$repo/environments/$env/deployment-branch-policies" -f name=main > /dev/null
  fi
  echo "environment $env: deploys from main only$review"
done
if [ "$environments" = false ]; then
  echo "No environments on this repository's plan (a private repository on GitHub Free): deploy jobs run"
  echo "without them, the deploy role trusts workflow runs on main (protect main with a ruleset), and"
  echo "each cluster's kubeconfig is a repository secret (gh secret set KUBECONFIG --repo $repo)."
fi
if [ "$gate" = manual ]; then
  echo "prod: no required reviewers on this plan for a private repository (GitHub Free, Pro and Team offer"
  echo "them on public repositories only), so a merge never deploys prod. Promote what passed staging with"
  echo "\`gh workflow run deploy.yml --repo $repo -f prod=true\` (anyone with write access can)."
fi

echo "== the bootstrap stack (infra/bootstrap, stack main)"
pulumi --cwd "$here" stack select --create main
current=$(pulumi --cwd "$here" config get aws:region 2> /dev/null || true)
region=${REGION:-${current:-eu-west-1}}
if [ -n "$current" ] && [ "$region" != "$current" ]; then
  echo "error: REGION=$region, but this bootstrap is in $current; moving it would recreate every resource." >&2
  echo "Run \`pulumi --cwd $here destroy\` first to move it, or leave REGION unset." >&2
  exit 2
fi
pulumi --cwd "$here" config set aws:region "$region"
pulumi --cwd "$here" config set githubRepository "$repo"
# GitHub's OIDC subject: repositories created (or renamed) since 2026-07-15 present the immutable
# repo:OWNER@OWNER_ID/REPO@REPO_ID:…; older ones repo:OWNER/REPO:… until they opt in, so they get both.
# OIDC_SUBJECTS=ids|names|both decides instead (e.g. after opting in, `ids`).
subjects=${OIDC_SUBJECTS:-$([[ $created > 2026-07-15 ]] && echo ids || echo both)}
pulumi --cwd "$here" config set githubOwnerId "$owner_id"
pulumi --cwd "$here" config set githubRepositoryId "$repository_id"
pulumi --cwd "$here" config set githubSubjects "$subjects"
case $subjects in
  ids) echo "OIDC subjects: repo:${repo%%/*}@$owner_id/${repo#*/}@$repository_id:… (immutable IDs; created $created)" ;;
  names) echo "OIDC subjects: repo:$repo:… (names only: OIDC_SUBJECTS=names)" ;;
  *) echo "OIDC subjects: repo:$repo:… and repo:${repo%%/*}@$owner_id/${repo#*/}@$repository_id:… (created $created, before immutable subjects; either works)" ;;
esac
# GitHub's OIDC provider: AWS allows one per account, so an account that already has one keeps it.
# Decided on the first run and kept in the stack's config; a stack that created one keeps managing it.
if provider=$(pulumi --cwd "$here" config get githubOidcProviderArn 2> /dev/null); then
  :
elif pulumi --cwd "$here" stack export 2> /dev/null | grep -q 'aws:iam/openIdConnectProvider:OpenIdConnectProvider::github"'; then
  provider=""
  pulumi --cwd "$here" config set githubOidcProviderArn ""
else
  provider=$("${PYTHON:-python3}" "$here/github_oidc.py")
  pulumi --cwd "$here" config set githubOidcProviderArn "$provider"
fi
if [ -n "$provider" ]; then
  echo "GitHub OIDC provider: the account's existing $provider (the roles trust it; the bootstrap never deletes it)"
else
  echo "GitHub OIDC provider: created by this stack (kept if the stack is destroyed)"
fi
pulumi --cwd "$here" config set stateBackend "${STATE_BACKEND:-false}"
pulumi --cwd "$here" config set captureArchiveDays "${CAPTURE_ARCHIVE_DAYS:-30}"
pulumi --cwd "$here" config set deployFromMain "$([ "$environments" = true ] && echo false || echo true)"
pulumi --cwd "$here" up ${YES:+--yes}

echo "== repository variables of $repo"
pulumi --cwd "$here" stack output --json \
  | python3 -c 'import json, sys; [print(k, v) for k, v in sorted(json.load(sys.stdin).items())]' \
  | while read -r name value; do
      gh variable set "$name" --repo "$repo" --body "$value"
      echo "variable $name=$value"
    done
for pair in DEPLOY_ENABLED=true "PROD_GATE=$gate" "DEPLOY_ENVIRONMENTS=$environments"; do
  gh variable set "${pair%%=*}" --repo "$repo" --body "${pair#*=}"
  echo "variable $pair"
done

if backend=$(pulumi --cwd "$here" stack output PULUMI_BACKEND_URL 2> /dev/null); then
  "$here/init-state.sh" "$backend"
else
  echo "Pulumi Cloud backend: also run \`gh secret set PULUMI_ACCESS_TOKEN --repo $repo\` with a token for CI."
fi
echo "Done. Optional: a cluster per environment (\`gh secret set KUBECONFIG --env dev --repo $repo\`)."

"""`make bootstrap REPO=…`: one command from a fork to deployable, run with stand-ins for pulumi and gh."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.infra.conftest import REPO

SCRIPT = REPO / "infra" / "bootstrap" / "bootstrap.sh"
OUTPUTS = {
    "AWS_DEPLOY_ROLE_ARN_DEV": "arn:aws:iam::1:role/twinserve-deploy-dev",
    "AWS_REGION": "eu-west-1",
    "ECR_REPOSITORY_URL": "1.dkr.ecr.eu-west-1.amazonaws.com/twinserve",
}
# gh keeps the environments' branch policies in a file, so a second run sees what the first created.
FAKE_GH = r"""
state=$(dirname "$0")
case "$*" in
  "auth status") exit 0 ;;
  "api user --jq .id") echo 4242 ;;
  "api -X POST "*) echo "$4" >> "$state/policies" ;;
  "api repos/"*"@tsv") printf '%s\t555\t777\t%s\t%s\n' "$FAKE_VISIBILITY" "$FAKE_CREATED" "$FAKE_OWNER" ;;
  "api -X PUT "*)
    body=$(cat)
    case "${FAKE_PLAN:-any}" in
      free) echo "gh: Not Found (HTTP 404)" >&2; exit 1 ;;
      team) if grep -q reviewers <<< "$body"; then
              echo "gh: Failed to create the environment protection rule (HTTP 422)" >&2; exit 1
            fi ;;
    esac
    echo "$body" >> "$state/bodies" ;;
  "api "*"policies --jq"*) if grep -qx "$2" "$state/policies" 2>/dev/null; then echo main; fi ;;
esac
"""


# The stack's config in a file, so a second run reads what the first set.
FAKE_PULUMI_CONFIG = r"""
state=$(dirname "$0")
case "$3 $4" in
  "config set") echo "$6" > "$state/config-$5" ;;
  "config get") if [ -f "$state/config-$5" ]; then cat "$state/config-$5"; else exit 255; fi ;;
esac
[ "$1" != login ] || echo "$PULUMI_HOME" > "$state/login-home"
"""


def stand_in(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f'#!/usr/bin/env bash\necho "$*" >> "{directory}/{name}.log"\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def bootstrap(
    tmp_path: Path,
    backend: str = "",
    existing_oidc: str = "",
    plan: str = "any",
    visibility: str = "",
    created: str = "2026-09-01T10:00:00Z",
    **env: str,
) -> subprocess.CompletedProcess[str]:
    pulumi = f"[ \"$3 $4\" != 'stack output' ] || [ \"$5\" != --json ] || echo '{json.dumps(OUTPUTS)}'"
    pulumi += '\nif [ "$5" = PULUMI_BACKEND_URL ]; then'
    pulumi += ' [ -n "$FAKE_BACKEND" ] || exit 255; echo "$FAKE_BACKEND"; fi'
    pulumi += FAKE_PULUMI_CONFIG
    pulumi += f'\n[ "$3 $4" != "stack export" ] || [ ! -f "{tmp_path}/export" ] || source "{tmp_path}/export"'
    stand_in(tmp_path, "pulumi", pulumi)
    stand_in(tmp_path, "gh", FAKE_GH)
    stand_in(tmp_path, "lookup-python", f'echo "{existing_oidc}"')  # github_oidc.py, which asks IAM
    return subprocess.run(
        [
            "make",
            "-s",
            "bootstrap",
            f"INFRA_PY={tmp_path}/lookup-python",
            *[f"{k}={v}" for k, v in env.items()],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PATH": f"{tmp_path}:{os.environ['PATH']}",
            "FAKE_BACKEND": backend,
            "FAKE_PLAN": plan,
            "FAKE_CREATED": created,
            "FAKE_OWNER": env.pop("FAKE_OWNER", "User"),
            "FAKE_VISIBILITY": visibility or ("public" if plan == "any" else "private"),
        },
    )


def calls(tmp_path: Path, tool: str) -> list[str]:
    return (tmp_path / f"{tool}.log").read_text().splitlines()


def test_one_command_sets_up_the_stack_the_variables_and_the_environments(tmp_path: Path) -> None:
    result = bootstrap(tmp_path, REPO="acme/models", YES="1")
    assert result.returncode == 0, result.stderr
    here = REPO / "infra" / "bootstrap"
    assert calls(tmp_path, "pulumi")[:14] == [
        f"--cwd {here} stack select --create main",
        f"--cwd {here} config get aws:region",
        f"--cwd {here} config set aws:region eu-west-1",
        f"--cwd {here} config set githubRepository acme/models",
        f"--cwd {here} config set githubOwnerId 555",
        f"--cwd {here} config set githubRepositoryId 777",
        f"--cwd {here} config set githubSubjects ids",
        f"--cwd {here} config get githubOidcProviderArn",
        f"--cwd {here} stack export",
        f"--cwd {here} config set githubOidcProviderArn ",
        f"--cwd {here} config set stateBackend false",
        f"--cwd {here} config set captureArchiveDays 30",
        f"--cwd {here} config set deployFromMain false",
        f"--cwd {here} up --yes",
    ]
    gh = calls(tmp_path, "gh")
    for name, value in OUTPUTS.items():
        assert f"variable set {name} --repo acme/models --body {value}" in gh
        assert f"variable {name}={value}" in result.stdout
    assert "variable set DEPLOY_ENABLED --repo acme/models --body true" in gh
    assert "variable set PROD_GATE --repo acme/models --body reviewers" in gh
    assert "variable set DEPLOY_ENVIRONMENTS --repo acme/models --body true" in gh
    assert f"--cwd {here} config set deployFromMain false" in calls(tmp_path, "pulumi")
    puts = [c for c in gh if c.startswith("api -X PUT")]
    assert puts == [
        f"api -X PUT repos/acme/models/environments/{e} --input -" for e in ("dev", "staging", "prod")
    ]
    bodies = [json.loads(b) for b in (tmp_path / "bodies").read_text().replace("}{", "}\n{").splitlines()]
    policy = {"protected_branches": False, "custom_branch_policies": True}
    assert bodies[0] == bodies[1] == {"deployment_branch_policy": policy}
    assert bodies[2] == {
        "reviewers": [{"type": "User", "id": 4242}],
        "prevent_self_review": False,  # a personal fork's only reviewer is the one who merges
        "deployment_branch_policy": policy,
    }
    assert len([c for c in gh if "-X POST" in c]) == 3  # main, once per environment
    assert "environment prod: deploys from main only, each deploy waits for your review" in result.stdout
    assert "gh secret set PULUMI_ACCESS_TOKEN --repo acme/models" in result.stdout


def test_an_s3_backend_is_initialised_once_by_the_administrator(tmp_path: Path) -> None:
    """So the read-only preview role's first login only reads (the real CLI: tests/engine)."""
    backend = "s3://twinserve-pulumi-state-1-us-east-1?region=us-east-1"
    result = bootstrap(tmp_path, backend=backend, REPO="acme/models", YES="1")
    assert result.returncode == 0, result.stderr
    assert f"login {backend}" in calls(tmp_path, "pulumi")
    assert (tmp_path / "login-home").read_text().strip() not in ("", os.environ.get("PULUMI_HOME", ""))
    assert f"state backend {backend}: initialised" in result.stdout
    assert "PULUMI_ACCESS_TOKEN" not in result.stdout


def test_an_accounts_existing_github_oidc_provider_is_used_and_the_choice_kept(tmp_path: Path) -> None:
    arn = "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"
    first = bootstrap(tmp_path, existing_oidc=arn, REPO="acme/models", YES="1")
    assert first.returncode == 0, first.stderr
    assert f"GitHub OIDC provider: the account's existing {arn}" in first.stdout
    again = bootstrap(
        tmp_path, existing_oidc="", REPO="acme/models", YES="1"
    )  # the lookup is not asked again
    assert f"GitHub OIDC provider: the account's existing {arn}" in again.stdout
    sets = [c for c in calls(tmp_path, "pulumi") if "config set githubOidcProviderArn" in c]
    assert sets == [f"--cwd {REPO / 'infra' / 'bootstrap'} config set githubOidcProviderArn {arn}"]


def test_a_stack_that_created_the_provider_keeps_managing_it(tmp_path: Path) -> None:
    """Bootstrapped before the setting existed: the lookup would find this stack's own provider."""
    export = 'echo \'{"resources": [{"urn": "urn:pulumi:main::twinserve-bootstrap::'
    export += "aws:iam/openIdConnectProvider:OpenIdConnectProvider::github\"}]}'"
    (tmp_path / "export").write_text(export)
    arn = "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"
    result = bootstrap(tmp_path, existing_oidc=arn, REPO="acme/models", YES="1")
    assert result.returncode == 0, result.stderr
    assert "GitHub OIDC provider: created by this stack" in result.stdout


def test_private_on_pro_or_team_gets_environments_and_prod_promoted_by_hand(tmp_path: Path) -> None:
    result = bootstrap(tmp_path, plan="team", REPO="acme/models", YES="1")
    assert result.returncode == 0, result.stderr
    assert "environment prod: deploys from main only\n" in result.stdout  # no review: the plan has none
    assert "so a merge never deploys prod" in result.stdout
    assert "gh workflow run deploy.yml --repo acme/models -f prod=true" in result.stdout
    gh = calls(tmp_path, "gh")
    assert "variable set PROD_GATE --repo acme/models --body manual" in gh
    assert "variable set DEPLOY_ENVIRONMENTS --repo acme/models --body true" in gh


def test_private_on_free_has_no_environments_and_says_what_it_gets_instead(tmp_path: Path) -> None:
    result = bootstrap(tmp_path, plan="free", REPO="acme/models", YES="1")
    assert result.returncode == 0, result.stderr
    assert "GitHub refused the environment dev: gh: Not Found (HTTP 404)" in result.stdout
    assert "No environments on this repository's plan" in result.stdout
    assert "the deploy role trusts workflow runs on main" in result.stdout
    assert "so a merge never deploys prod" in result.stdout
    gh = calls(tmp_path, "gh")
    assert "variable set PROD_GATE --repo acme/models --body manual" in gh
    assert "variable set DEPLOY_ENVIRONMENTS --repo acme/models --body false" in gh
    assert f"--cwd {REPO / 'infra' / 'bootstrap'} config set deployFromMain true" in calls(tmp_path, "pulumi")


def test_a_public_repository_whose_environment_is_refused_stops_the_bootstrap(tmp_path: Path) -> None:
    """Public repositories have environments on every plan: a refusal is an error, never a wider trust."""
    result = bootstrap(tmp_path, plan="free", visibility="public", REPO="acme/models", YES="1")
    assert result.returncode != 0
    assert "GitHub refused the environment dev" in result.stdout
    assert not (tmp_path / "pulumi.log").exists()  # nothing deployed


def test_a_second_run_changes_nothing_new(tmp_path: Path) -> None:
    assert bootstrap(tmp_path, REPO="acme/models", YES="1").returncode == 0
    again = bootstrap(tmp_path, REPO="acme/models", YES="1")
    assert again.returncode == 0, again.stderr
    assert len([c for c in calls(tmp_path, "gh") if "-X POST" in c]) == 3  # no second branch policy


def test_the_region_is_set_once_and_kept(tmp_path: Path) -> None:
    here = REPO / "infra" / "bootstrap"
    assert bootstrap(tmp_path, REPO="acme/models", YES="1", REGION="us-east-1").returncode == 0
    again = bootstrap(tmp_path, REPO="acme/models", YES="1")  # a later run without REGION
    assert again.returncode == 0, again.stderr
    sets = [c for c in calls(tmp_path, "pulumi") if "config set aws:region" in c]
    assert sets == [f"--cwd {here} config set aws:region us-east-1"] * 2
    moved = bootstrap(tmp_path, REPO="acme/models", YES="1", REGION="eu-central-1")
    assert moved.returncode == 2
    assert "REGION=eu-central-1, but this bootstrap is in us-east-1" in moved.stderr
    assert sum("up --yes" in c for c in calls(tmp_path, "pulumi")) == 2  # the refused run changed nothing


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "REPO='' is not the fork as owner/name (make bootstrap REPO=acme/models)"),
        ({"REPO": "acme"}, "REPO='acme' is not the fork as owner/name"),
    ],
)
def test_a_missing_or_malformed_repo_is_named(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = bootstrap(tmp_path, **env)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "pulumi.log").exists()


def test_the_script_passes_shellcheck() -> None:
    result = subprocess.run([REPO / ".venv" / "bin" / "shellcheck", SCRIPT], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("created", "chosen", "said"),
    [
        ("2026-07-15T00:00:01Z", "ids", "OIDC subjects: repo:acme@555/models@777:… (immutable IDs"),
        ("2024-03-01T09:00:00Z", "both", "OIDC subjects: repo:acme/models:… and repo:acme@555/models@777:…"),
    ],
)
def test_the_roles_trust_the_subject_format_the_repository_presents(
    tmp_path: Path, created: str, chosen: str, said: str
) -> None:
    """Repositories created (or renamed) since 2026-07-15 present repo:OWNER@ID/REPO@ID:…; older ones
    the name form until they opt in, so they are trusted in both."""
    result = bootstrap(tmp_path, created=created, REPO="acme/models", YES="1")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "config-githubSubjects").read_text().strip() == chosen
    assert (tmp_path / "config-githubOwnerId").read_text().strip() == "555"
    assert said in result.stdout


def test_oidc_subjects_can_be_chosen(tmp_path: Path) -> None:
    result = bootstrap(tmp_path, REPO="acme/models", YES="1", OIDC_SUBJECTS="names")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "config-githubSubjects").read_text().strip() == "names"


def test_an_organizations_prod_reviewer_cannot_approve_their_own_deploy(tmp_path: Path) -> None:
    result = bootstrap(tmp_path, REPO="acme/models", YES="1", FAKE_OWNER="Organization")
    assert result.returncode == 0, result.stderr
    bodies = [json.loads(b) for b in (tmp_path / "bodies").read_text().replace("}{", "}\n{").splitlines()]
    assert bodies[2]["prevent_self_review"] is True
    assert "each deploy waits for your review (self-review prevented)" in result.stdout

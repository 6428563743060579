"""The workflows pass zizmor, checkov and the GitHub schema, and have the structure that keeps them safe."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.checkers import checkov
from tests.workflows.conftest import BIN, REPO, SCRIPTS, WORKFLOWS, all_workflows, load, make_verbs, steps

PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d[\w.]*$")


def test_zizmor_offline_finds_nothing() -> None:
    result = subprocess.run(
        [BIN / "zizmor", "--offline", "--format", "plain", REPO / ".github"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_checkov_github_actions_checks_pass_with_one_justified_skip() -> None:
    report = checkov("-d", REPO / ".github", "--framework", "github_actions")
    assert report["summary"]["failed"] == 0, report["results"]
    skipped = report["results"]["skipped_checks"]
    assert [(c["check_id"], c["file_path"]) for c in skipped] == [("CKV_GHA_7", "/workflows/deploy.yml")]
    assert "rollback" in skipped[0]["check_result"]["suppress_comment"]


@pytest.mark.parametrize(
    ("schema", "pattern"),
    [("vendor.github-workflows", "workflows/*.yml"), ("vendor.dependabot", "dependabot.yml")],
)
def test_files_validate_against_githubs_schemas(schema: str, pattern: str) -> None:
    files = sorted((REPO / ".github").glob(pattern))
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", schema, *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_every_script() -> None:
    scripts = [*sorted(SCRIPTS.glob("*.sh")), REPO / ".ci" / "run"]
    result = subprocess.run([BIN / "shellcheck", *scripts], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
    assert all(os.access(s, os.X_OK) for s in scripts)


def test_triggers_and_never_pull_request_target() -> None:
    workflows = all_workflows()
    assert workflows["pull-request.yml"]["on"] == {"pull_request": {"branches": ["main"]}}
    assert set(workflows["deploy.yml"]["on"]) == {"push", "workflow_dispatch"}
    assert workflows["deploy.yml"]["on"]["push"] == {"branches": ["main"]}
    assert set(workflows["deploy-stack.yml"]["on"]) == {"workflow_call"}
    assert set(workflows["drift.yml"]["on"]) == {"schedule", "workflow_dispatch"}
    assert "pull_request_target" not in "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))


EXPECTED_PERMISSIONS = {
    ("pull-request.yml", "tools"): {"contents": "read"},
    ("pull-request.yml", "checks"): {"contents": "read"},
    ("pull-request.yml", "package"): {"contents": "read"},
    ("pull-request.yml", "plan"): {"contents": "read"},
    ("pull-request.yml", "fork-note"): {"contents": "read"},
    ("pull-request.yml", "preview"): {"contents": "read", "id-token": "write"},
    ("pull-request.yml", "comment"): {"contents": "read", "pull-requests": "write"},
    ("deploy.yml", "build"): {"contents": "read", "id-token": "write"},
    ("deploy.yml", "engine"): {"contents": "read"},
    ("deploy.yml", "dev"): {"contents": "read", "id-token": "write"},
    ("deploy.yml", "staging"): {"contents": "read", "id-token": "write"},
    ("deploy.yml", "prod"): {"contents": "read", "id-token": "write"},
    ("deploy.yml", "prod-held"): {"contents": "read"},
    ("deploy-stack.yml", "up"): {"contents": "read", "id-token": "write"},
    ("drift.yml", "environments"): {"contents": "read"},
    # The drift role's token, and one issue per environment while its drift lasts.
    ("drift.yml", "drift"): {"contents": "read", "id-token": "write", "issues": "write"},
}


def test_permissions_are_empty_at_the_top_and_least_per_job() -> None:
    found = {}
    for name, workflow in all_workflows().items():
        assert workflow["permissions"] == {}, name
        found |= {(name, job_id): job["permissions"] for job_id, job in workflow["jobs"].items()}
    assert found == EXPECTED_PERMISSIONS


def test_id_token_only_where_oidc_is_used() -> None:
    for name, workflow in all_workflows().items():
        for job_id, job in workflow["jobs"].items():
            uses_oidc = any("configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", []))
            calls_deploy = job.get("uses", "").endswith("deploy-stack.yml")
            assert (job["permissions"].get("id-token") == "write") == (uses_oidc or calls_deploy), (
                name,
                job_id,
            )


def test_every_action_is_pinned_by_sha_with_its_version() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:- )?uses: (.+)$", line)
            if match and not match.group(1).startswith("./"):
                assert PINNED.match(match.group(1)), f"{path.name}: {line.strip()}"


def test_checkouts_keep_no_credentials_and_every_job_has_a_timeout() -> None:
    for name, workflow in all_workflows().items():
        for step in steps(workflow):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
        for job_id, job in workflow["jobs"].items():
            assert "uses" in job or 0 < job["timeout-minutes"] <= 60, (name, job_id)


def test_every_run_is_a_make_verb_or_a_script_and_interpolates_nothing() -> None:
    verbs = make_verbs()
    for name, workflow in all_workflows().items():
        for step in steps(workflow):
            if "run" not in step:
                continue
            command = step["run"]
            assert "${{" not in command, f"{name}: {command}"
            words = command.split()
            # `exec`: the step's process becomes the script, so the runner's cancel reaches it.
            first = words[1] if words[0] == "exec" else words[0]
            if first == "make":
                verb = next(w for w in command.split()[1:] if not w.startswith("-"))
                assert verb in verbs, f"{name}: unknown verb in {command!r}"
            else:
                assert first.startswith(".github/scripts/"), f"{name}: {command!r}"
                assert (REPO / first).is_file(), f"{name}: {command!r}"


def test_pr_concurrency_cancels_older_runs_and_previews() -> None:
    pr = load("pull-request.yml")
    assert pr["concurrency"] == {
        "group": "pull-request-${{ github.event.pull_request.number }}",
        "cancel-in-progress": True,
    }
    preview = pr["jobs"]["preview"]
    assert preview["concurrency"]["cancel-in-progress"] is True
    assert "matrix.environment" in preview["concurrency"]["group"]
    # Never prod: a pull request's code gets no prod state, secrets, cluster or deploy token.
    assert preview["strategy"]["matrix"]["environment"] == ["dev", "staging"]
    assert preview["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_PREVIEW_ACCESS_TOKEN }}"
    assert "PROD" not in (WORKFLOWS / "pull-request.yml").read_text()
    assert "head.repo.full_name == github.repository" in preview["if"]
    assert "head.repo.full_name != github.repository" in pr["jobs"]["fork-note"]["if"]


def test_every_preview_and_up_runs_through_the_engine_script_with_the_policy_pack() -> None:
    """No pulumi/actions command: previews and ups are the scripts the real-engine tests run."""
    every = [s for w in all_workflows().values() for s in steps(w)]
    assert not [s for s in every if s.get("uses", "").startswith("pulumi/")]
    preview = (REPO / ".github" / "scripts" / "preview-stack.sh").read_text()
    assert "infra/.venv/bin/python infra/engine.py" in preview
    rollout = (REPO / ".github" / "scripts" / "rollout.sh").read_text()
    assert "exec infra/.venv/bin/python infra/delivery/rollout.py" in rollout  # the engine in process
    engine = (REPO / "infra" / "engine.py").read_text()
    assert "policy_packs=policy" in engine


CLI_USERS = ("preview-stack.sh", "rollout.sh", "deploy-order.sh")


def test_every_job_that_runs_the_cli_first_puts_the_one_built_from_checked_modules_on_its_path() -> None:
    """The cache of the `pulumi` group, restored under the key tools-cache.sh names, then pulumi-cli.sh
    (which builds on a miss): never pulumi/actions' unverified download."""
    users = 0
    for workflow in all_workflows().values():
        for job in workflow["jobs"].values():
            runs = [s.get("run", "") for s in job.get("steps", [])]
            first_use = next((i for i, r in enumerate(runs) if any(u in r for u in CLI_USERS)), None)
            if first_use is None:
                continue
            users += 1
            installed = runs.index(".github/scripts/pulumi-cli.sh")
            assert installed < first_use
            (key,) = [
                s for s in job["steps"] if s.get("run", "").startswith(".github/scripts/tools-cache.sh")
            ]
            assert key["env"]["TOOLS_GROUP"] == "pulumi"
            (restore,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/cache/restore@")]
            assert restore["with"] == {
                "path": f"${{{{ steps.{key['id']}.outputs.path }}}}",
                "key": f"${{{{ steps.{key['id']}.outputs.key }}}}",
            }
    assert users == 2  # the preview job and the reusable deploy job


def test_the_cli_is_built_and_cached_before_the_jobs_that_restore_it() -> None:
    workflows = all_workflows()
    deploy = workflows["deploy.yml"]["jobs"]
    engine = deploy["engine"]
    assert engine["env"]["TOOLS_GROUP"] == "pulumi"
    assert [s.get("run") for s in engine["steps"] if "run" in s][-1] == ".github/scripts/pulumi-cli.sh"
    assert any(s.get("uses", "").startswith("actions/cache@") for s in engine["steps"])
    assert "engine" in deploy["dev"]["needs"]  # staging and prod come after dev
    assert engine["if"] == deploy["build"]["if"]
    preview = workflows["pull-request.yml"]["jobs"]["preview"]
    assert "tools" in preview["needs"]


def test_forks_and_dependabot_get_the_note_and_no_live_preview() -> None:
    jobs = all_workflows()["pull-request.yml"]["jobs"]
    assert "github.event.pull_request.user.login != 'dependabot[bot]'" in jobs["preview"]["if"]
    assert "github.event.pull_request.user.login == 'dependabot[bot]'" in jobs["fork-note"]["if"]


def test_deploys_go_dev_staging_prod_one_at_a_time_and_never_cancel() -> None:
    deploy = load("deploy.yml")["jobs"]
    assert deploy["dev"]["needs"] == ["build", "engine"]
    assert deploy["staging"]["needs"] == ["build", "dev"]
    assert deploy["prod"]["needs"] == ["build", "staging"]
    assert [deploy[e]["with"]["environment"] for e in ("dev", "staging", "prod")] == [
        "dev",
        "staging",
        "prod",
    ]
    up = load("deploy-stack.yml")["jobs"]["up"]
    assert up["environment"].startswith("${{ vars.DEPLOY_ENVIRONMENTS != 'false' && inputs.environment")
    assert up["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False}
    # Every up, smoke test and bake is the rollout (the script the real-engine tests run); a cancelled
    # run discards a canary it left, and a rollback is all at once.
    rollout = [s for s in up["steps"] if "rollout.sh" in s.get("run", "")]
    assert [(s.get("if"), s["run"]) for s in rollout] == [
        (None, 'exec .github/scripts/rollout.sh run "$STACK" "$IMAGE"'),
        ("cancelled()", 'exec .github/scripts/rollout.sh abort "$STACK" "$IMAGE"'),
    ]
    assert rollout[0]["env"] == rollout[1]["env"]
    assert rollout[0]["env"]["STRATEGY"] == "${{ inputs.rollback && 'all-at-once' || 'settings' }}"
    assert up["timeout-minutes"] == 60  # settings refuse bakes longer than 45 minutes
    # Each environment assumes its own deploy role and uses its own secrets key.
    (credentials,) = [s for s in up["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    assert credentials["with"]["role-to-assume"] == "${{ inputs.deploy_role }}"
    for env in ("dev", "staging", "prod"):
        called = deploy[env]["with"]
        assert called["deploy_role"] == f"${{{{ vars.AWS_DEPLOY_ROLE_ARN_{env.upper()} }}}}"
        assert called["secrets_provider"] == f"${{{{ vars.PULUMI_SECRETS_PROVIDER_{env.upper()} }}}}"


def test_the_template_never_deploys_and_aws_is_reached_only_through_oidc() -> None:
    build = load("deploy.yml")["jobs"]["build"]
    assert "github.repository != 'twinserve/twinserve'" in build["if"]
    assert "vars.DEPLOY_ENABLED == 'true'" in build["if"]
    text = "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))
    assert "AWS_SECRET_ACCESS_KEY" not in text
    assert "aws-access-key-id" not in text


def test_re_running_failed_jobs_conflicts_with_nothing() -> None:
    """An artifact re-uploaded by a re-run replaces its first upload; the image is tagged by content."""
    uploads = [
        s
        for w in all_workflows().values()
        for s in steps(w)
        if s.get("uses", "").startswith("actions/upload-artifact@")
    ]
    assert uploads
    assert all(s["with"].get("overwrite") is True for s in uploads)
    (push,) = [s for s in steps(all_workflows()["deploy.yml"]) if s.get("id") == "push"]
    assert push["with"]["tags"] == "${{ vars.ECR_REPOSITORY_URL }}:${{ steps.inputs.outputs.tag }}"
    assert "steps.existing.outputs.exists != 'true'" in push["if"]


def test_a_rollback_redeploys_both_runtimes_from_one_earlier_commit() -> None:
    """The dispatch input is a commit: the build checks it out (zips rebuilt bit-identical, the image
    found by its content tag) and every stack deploys from that same checkout."""
    deploy = all_workflows()["deploy.yml"]
    assert set(deploy["on"]["workflow_dispatch"]["inputs"]) == {"ref", "prod", "promote_now"}
    for env in ("dev", "staging", "prod"):
        assert deploy["jobs"][env]["with"]["promote_now"] == "${{ inputs.promote_now == true }}"
    build = deploy["jobs"]["build"]
    checkout = build["steps"][0]
    assert checkout["with"]["ref"] == "${{ inputs.ref || github.sha }}"
    assert checkout["with"]["fetch-depth"] == 0
    assert build["steps"][1] == {"id": "ref", "run": '.github/scripts/deploy-ref.sh >> "$GITHUB_OUTPUT"'}
    for env in ("dev", "staging", "prod"):
        assert deploy["jobs"][env]["with"]["ref"] == "${{ needs.build.outputs.ref }}"
    stack_checkout = all_workflows()["deploy-stack.yml"]["jobs"]["up"]["steps"][0]
    assert stack_checkout["with"]["ref"] == "${{ inputs.ref }}"
    assert "inputs.image" not in (WORKFLOWS / "deploy.yml").read_text()


def test_the_image_is_built_for_both_architectures_labelled_with_the_deployed_commit() -> None:
    """One index for Kubernetes nodes of either architecture; its per-architecture manifests, resolved
    after the push (or reuse), are what a Lambda image function receives, per stack."""
    deploy = all_workflows()["deploy.yml"]
    build = deploy["jobs"]["build"]
    assert build["env"]["PLATFORMS"] == "linux/amd64,linux/arm64"
    (push,) = [s for s in build["steps"] if s.get("id") == "push"]
    assert push["with"]["platforms"] == "${{ env.PLATFORMS }}"
    assert "REVISION=${{ steps.ref.outputs.ref }}" in push["with"]["build-args"]  # the commit deployed
    (qemu,) = [s for s in build["steps"] if s.get("uses", "").startswith("docker/setup-qemu-action@")]
    assert qemu["if"] == push["if"]
    ids = [s.get("id") for s in build["steps"]]
    assert ids.index("platforms") > ids.index("image")
    for arch in ("arm64", "x86_64"):
        output = f"lambda_image_{arch}"
        assert build["outputs"][output] == f"${{{{ steps.platforms.outputs.{output} }}}}"
        for env in ("dev", "staging", "prod"):
            assert deploy["jobs"][env]["with"][output] == f"${{{{ needs.build.outputs.{output} }}}}"
    up = all_workflows()["deploy-stack.yml"]["jobs"]["up"]
    (step, _) = [s for s in up["steps"] if "rollout.sh" in s.get("run", "")]
    assert step["env"]["LAMBDA_IMAGE_ARM64"] == "${{ inputs.lambda_image_arm64 }}"
    assert step["env"]["LAMBDA_IMAGE_X86_64"] == "${{ inputs.lambda_image_x86_64 }}"


def test_deploy_runs_apply_one_at_a_time_newest_waiting_and_never_backwards() -> None:
    deploy = all_workflows()["deploy.yml"]
    assert deploy["concurrency"] == {"group": "deploy", "cancel-in-progress": False}
    for env in ("dev", "staging", "prod"):
        rollback = deploy["jobs"][env]["with"]["rollback"]
        assert rollback == "${{ github.event_name == 'workflow_dispatch' && inputs.ref != '' }}"
    up = all_workflows()["deploy-stack.yml"]["jobs"]["up"]
    assert up["steps"][0]["with"]["fetch-depth"] == 0
    runs = [s.get("run", "") for s in up["steps"]]
    order = next(i for i, r in enumerate(runs) if r.startswith(".github/scripts/deploy-order.sh"))
    assert order == next(i for i, r in enumerate(runs) if "rollout.sh run" in r) - 1
    assert up["steps"][order]["env"]["ROLLBACK"] == "${{ inputs.rollback }}"
    assert up["steps"][order + 1]["env"]["COMMIT"] == "${{ inputs.ref }}"


def test_prod_is_never_ungated_whatever_the_plan() -> None:
    """Required reviewers where the plan has them; else (PROD_GATE=manual) a merge stops at staging,
    the run's summary says how to promote, and only a dispatch with prod=true deploys prod."""
    deploy = all_workflows()["deploy.yml"]
    assert deploy["on"]["workflow_dispatch"]["inputs"]["prod"]["default"] is False
    assert deploy["jobs"]["prod"]["if"] == "vars.PROD_GATE != 'manual' || inputs.prod"
    held = deploy["jobs"]["prod-held"]
    assert held["if"] == "vars.PROD_GATE == 'manual' && !inputs.prod"
    assert held["needs"] == ["build", "staging"]
    assert held["steps"][-1]["run"] == '.github/scripts/prod-held.sh >> "$GITHUB_STEP_SUMMARY"'
    up = all_workflows()["deploy-stack.yml"]["jobs"]["up"]
    assert up["environment"] == "${{ vars.DEPLOY_ENVIRONMENTS != 'false' && inputs.environment || '' }}"

"""Each workflow script, run here as the workflows run it; GitHub's and AWS's CLIs are stand-ins on PATH."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.workflows.conftest import REPO, SCRIPTS

DIGEST = "sha256:" + "ab" * 32


def run(
    script: str, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPTS / script, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ["PATH"], **(env or {})},
    )


def stand_in(directory: Path, name: str, body: str) -> None:
    """A fake CLI that records its arguments (and stdin) to <name>.log and then runs `body`."""
    path = directory / name
    path.write_text(f'#!/usr/bin/env bash\necho "$*" >> "{directory}/{name}.log"\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize(
    ("env", "expected", "code"),
    [
        (
            {"ECR_REPOSITORY_URL": "1.dkr.ecr.eu-west-1.amazonaws.com/twinserve", "PUSHED_DIGEST": DIGEST},
            f"image=1.dkr.ecr.eu-west-1.amazonaws.com/twinserve@{DIGEST}\n",
            0,
        ),
        (
            {"ROLLBACK_IMAGE": f"reg/twinserve@{DIGEST}", "ECR_REPOSITORY_URL": "x", "PUSHED_DIGEST": ""},
            f"image=reg/twinserve@{DIGEST}\n",
            0,
        ),
        ({"ROLLBACK_IMAGE": "reg/twinserve:latest", "ECR_REPOSITORY_URL": "x", "PUSHED_DIGEST": ""}, "", 1),
    ],
)
def test_image_reference_is_always_by_digest(env: dict[str, str], expected: str, code: int) -> None:
    result = run("image-reference.sh", env=env)
    assert (result.returncode, result.stdout) == (code, expected)
    if code:
        assert "is not by digest" in result.stderr


def test_cluster_access_writes_a_private_kubeconfig_and_exports_it(tmp_path: Path) -> None:
    github_env = tmp_path / "env"
    result = run(
        "cluster-access.sh",
        env={
            "KUBECONFIG_CONTENT": "apiVersion: v1",
            "RUNNER_TEMP": str(tmp_path),
            "GITHUB_ENV": str(github_env),
        },
    )
    assert result.returncode == 0, result.stderr
    config = tmp_path / "kubeconfig"
    assert config.read_text() == "apiVersion: v1\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert github_env.read_text() == f"KUBECONFIG={config}\n"
    assert run("cluster-access.sh", env={"RUNNER_TEMP": str(tmp_path)}).returncode == 0


def test_deployed_image_reads_the_stack_output(tmp_path: Path) -> None:
    stand_in(tmp_path, "pulumi", f'[ "$5" = "dev" ] && echo "reg/twinserve@{DIGEST}" || exit 255')
    path = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    assert run("deployed-image.sh", "dev", env=path).stdout == f"exists=true\nimage=reg/twinserve@{DIGEST}\n"
    assert run("deployed-image.sh", "prod", env=path).stdout == "exists=false\n"
    assert (
        tmp_path / "pulumi.log"
    ).read_text() == "stack output image --stack dev\nstack output image --stack prod\n"


def test_preview_comments_are_edited_in_place_by_marker(tmp_path: Path) -> None:
    previews = tmp_path / "previews"
    for env in ("dev", "prod"):
        result = run(
            "write-preview.sh", env, str(previews), env={"PREVIEW_OUTPUT": f"+ 1 to create in {env}"}
        )
        assert result.returncode == 0, result.stderr
    assert (
        (previews / "dev.md")
        .read_text()
        .startswith("<!-- twinserve-preview:dev -->\n### `pulumi preview`: dev")
    )
    # The PR already has dev's comment (id 7) but not prod's.
    stand_in(
        tmp_path, "gh", 'if [[ "$*" == *"--jq"* && "$*" == *"twinserve-preview:dev"* ]]; then echo 7; fi'
    )
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "REPOSITORY": "acme/models",
        "PR_NUMBER": "12",
        "GH_TOKEN": "t",
    }
    result = run("pr-comment.sh", str(previews), env=env)
    assert result.returncode == 0, result.stderr
    calls = [c for c in (tmp_path / "gh.log").read_text().splitlines() if "--method" in c]
    assert calls == [
        f"api --method PATCH repos/acme/models/issues/comments/7 -F body=@{previews}/dev.md",
        f"api --method POST repos/acme/models/issues/12/comments -F body=@{previews}/prod.md",
    ]


def test_ecr_login_uses_the_registry_host_and_stdin(tmp_path: Path) -> None:
    stand_in(tmp_path, "aws", "echo secret-token")
    stand_in(tmp_path, "docker", 'cat > "$(dirname "$0")/docker.stdin"')
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "AWS_REGION": "eu-west-1",
        "ECR_REPOSITORY_URL": "1.dkr.ecr.eu-west-1.amazonaws.com/twinserve",
    }
    assert run("ecr-login.sh", env=env).returncode == 0
    assert (tmp_path / "aws.log").read_text() == "ecr get-login-password --region eu-west-1\n"
    assert (tmp_path / "docker.log").read_text() == (
        "login --username AWS --password-stdin 1.dkr.ecr.eu-west-1.amazonaws.com\n"
    )
    assert (tmp_path / "docker.stdin").read_text() == "secret-token\n"


def test_deploy_summary_lists_duration_and_outputs(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "outputs-dev.json").write_text(
        '{"lambdaEndpoint": "https://x.on.aws/", "modelVersion": 1}'
    )
    (tmp_path / "infra" / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "infra" / ".venv" / "bin" / "python").symlink_to(REPO / "infra" / ".venv" / "bin" / "python")
    result = run("deploy-summary.sh", env={"ENVIRONMENT": "dev", "STARTED_AT": "0"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### dev: deployed in ")
    assert "| lambdaEndpoint | `https://x.on.aws/` |" in result.stdout


def test_fork_note_and_start_mark() -> None:
    assert "no cloud credentials" in run("fork-note.sh").stdout
    assert run("mark-start.sh").stdout.startswith("at=")


def test_base_plan_of_a_base_without_the_verb_is_empty(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "Makefile").write_text("test:\n\ttrue\n")
    result = run("base-plan.sh", str(base), str(tmp_path / "plan-base"))
    assert result.returncode == 0, result.stderr
    assert "every resource will show as added" in result.stderr
    assert list((tmp_path / "plan-base").iterdir()) == []


def test_compare_is_skipped_when_nothing_it_reads_changed() -> None:
    result = run("compare-if-changed.sh", str(REPO))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No change to environments")

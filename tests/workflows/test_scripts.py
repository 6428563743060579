"""Each workflow script, run here as the workflows run it; GitHub's and AWS's CLIs are stand-ins on PATH."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.tool_paths import tool
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
        ({"ECR_REPOSITORY_URL": "reg/twinserve", "PUSHED_DIGEST": ""}, "", 1),
        ({"ECR_REPOSITORY_URL": "reg/twinserve", "PUSHED_DIGEST": "latest"}, "", 1),
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


def test_cluster_access_masks_each_credential_of_the_kubeconfig_before_writing_it(tmp_path: Path) -> None:
    """GitHub masks a YAML secret as a whole: a token or key printed on its own would show. Each
    credential (and a key's PEM lines, which a tool may print decoded) is masked alone; the cluster's
    address and the exec plugin's command are not credentials."""
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPrivateLineOne\nAwEHoUQDQgAELineTwo\n"
    pem += "-----END EC PRIVATE KEY-----\n"
    key = base64.b64encode(pem.encode()).decode()
    kubeconfig = {
        "apiVersion": "v1",
        "clusters": [
            {"name": "eks", "cluster": {"server": "https://10.0.0.1", "certificate-authority-data": "Q0E="}}
        ],
        "users": [
            {"name": "ci", "user": {"token": "t0k%en", "client-key-data": key}},
            {
                "name": "sso",
                "user": {"auth-provider": {"name": "oidc", "config": {"refresh-token": "r3fresh"}}},
            },
            {
                "name": "eks",
                "user": {"exec": {"command": "aws", "env": [{"name": "AWS_PROFILE", "value": "deployer"}]}},
            },
        ],
    }
    env = {
        "KUBECONFIG_CONTENT": yaml.safe_dump(kubeconfig),
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_ENV": str(tmp_path / "env"),
    }
    result = run("cluster-access.sh", env=env)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.splitlines()) == {
        "::add-mask::t0k%25en",  # the runner reads %25 back as %
        f"::add-mask::{key}",
        "::add-mask::MHcCAQEEIPrivateLineOne",
        "::add-mask::AwEHoUQDQgAELineTwo",
        "::add-mask::r3fresh",
        "::add-mask::deployer",
    }
    assert yaml.safe_load((tmp_path / "kubeconfig").read_text()) == kubeconfig


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("users: [{name: ci, user: {token: s3cret", "the kubeconfig secret is not valid YAML (line "),
        ("s3cret", "it is not a kubeconfig (a mapping with a `users` list)"),
    ],
)
def test_a_secret_that_is_not_a_kubeconfig_stops_the_job_without_echoing_it(
    tmp_path: Path, content: str, said: str
) -> None:
    env = {"KUBECONFIG_CONTENT": content, "RUNNER_TEMP": str(tmp_path), "GITHUB_ENV": str(tmp_path / "env")}
    result = run("cluster-access.sh", env=env)
    assert result.returncode == 1
    assert said in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert not (tmp_path / "kubeconfig").exists()
    assert not (tmp_path / "env").exists()


FAKE_PULUMI = r"""
[ "$1" != preview ] || { echo "KUBECONFIG=${KUBECONFIG:-} $(cat "${KUBECONFIG:-/dev/null}")"; \
  [ -z "${KUBECONFIG:-}" ] || stat -c %a "$KUBECONFIG"; }
case "$1 $2" in
  "login "*|"login ") [ -z "$LOGIN_ERROR" ] || { echo "$LOGIN_ERROR" >&2; exit 255; } ;;
  "stack output") [ -z "$OUTPUT_ERROR" ] || { echo "$OUTPUT_ERROR" >&2; exit 255; }; echo "$DEPLOYED" ;;
esac
"""


def preview(tmp_path: Path, **fake: str) -> tuple[subprocess.CompletedProcess, str, list[str]]:
    """preview-stack.sh for dev with a stand-in CLI; the comment it wrote and the CLI calls it made."""
    stand_in(tmp_path, "pulumi", FAKE_PULUMI)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "LOGIN_ERROR": "", "OUTPUT_ERROR": ""}
    env |= {"AWS_REGION": "us-east-1", **fake}
    result = run("preview-stack.sh", "acme/dev", "dev", str(tmp_path / "out"), env=env)
    comment = (tmp_path / "out" / "dev.md").read_text()
    log = tmp_path / "pulumi.log"
    return result, comment, log.read_text().splitlines() if log.exists() else []


def test_a_stack_that_does_not_exist_is_said_so_and_passes(tmp_path: Path) -> None:
    result, comment, calls = preview(tmp_path, OUTPUT_ERROR="error: no stack named 'acme/dev' found")
    assert result.returncode == 0
    assert "No stack named 'acme/dev' yet, so nothing to preview" in comment
    assert not any(c.startswith("preview") for c in calls)


def test_a_missing_region_is_named_before_anything_runs(tmp_path: Path) -> None:
    result, comment, calls = preview(tmp_path, AWS_REGION="")
    assert result.returncode == 1
    assert "AWS_REGION is not set, so nothing was previewed" in comment
    assert calls == []


@pytest.mark.parametrize(
    ("fake", "said"),
    [
        ({"LOGIN_ERROR": "error: problem logging in: AccessDenied"}, "pulumi login failed"),
        (
            {"OUTPUT_ERROR": "error: [403] Forbidden: organization 'acme'"},
            "Reading the stack's deployed image failed",
        ),
    ],
)
def test_every_other_failure_fails_the_job_and_the_comment_says_what(
    tmp_path: Path, fake: dict[str, str], said: str
) -> None:
    result, comment, _ = preview(tmp_path, **fake)
    assert result.returncode == 1
    assert said in comment
    assert next(iter(fake.values())) in comment
    assert "No stack" not in comment


def pinned_cli_version() -> str:
    versions = (REPO / "tests" / "tools" / "versions.env").read_text()
    return next(line.split("=")[1] for line in versions.splitlines() if line.startswith("PULUMI_VERSION="))


def test_the_cli_version_is_the_one_the_engine_tests_run_and_not_older_than_the_sdk() -> None:
    sdk = next(
        line.split("==")[1].split()[0]
        for line in (REPO / "infra" / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi==")
    )
    assert tuple(map(int, pinned_cli_version().split("."))) >= tuple(map(int, sdk.split(".")))


def test_the_jobs_cli_is_the_one_built_from_checked_modules_never_one_already_on_path(tmp_path: Path) -> None:
    """A runner's own `pulumi` of the same version (a stand-in here) is not what goes on the PATH."""
    tested = pinned_cli_version()
    stand_in(tmp_path, "pulumi", f"echo v{tested}")
    github_path = tmp_path / "github-path"
    env = {
        "HOME": os.environ["HOME"],
        "GITHUB_PATH": str(github_path),
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
    }
    result = run("pulumi-cli.sh", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"v{tested}\n"
    cli = tool("PULUMI")
    assert cli.parent != tmp_path
    assert github_path.read_text() == f"{cli.parent}\n"


@pytest.mark.parametrize(
    ("unchecked", "said"),
    [
        ({"GOSUMDB": "off"}, "GOSUMDB=off: the modules the CLI is built from would not be checked"),
        ({"GONOSUMDB": "github.com/pulumi"}, "GONOSUMDB is set, so some modules would not be checked"),
        ({"GOINSECURE": "*"}, "GOINSECURE is set"),
    ],
)
def test_the_cli_is_never_built_from_unchecked_modules(
    tmp_path: Path, unchecked: dict[str, str], said: str
) -> None:
    github_path = tmp_path / "github-path"
    result = run(
        "pulumi-cli.sh", env={"HOME": os.environ["HOME"], "GITHUB_PATH": str(github_path), **unchecked}
    )
    assert result.returncode == 1
    assert said in result.stderr
    assert not github_path.exists()


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
    # The PR has dev's comment (id 7) by the workflow, and a stranger's comment with prod's marker (id 3),
    # posted first; the stand-in lists them as `gh api --paginate` does, and the script filters with jq.
    comments = [
        {"id": 3, "user": {"login": "mallory"}, "body": "<!-- twinserve-preview:prod -->\nfake"},
        {"id": 7, "user": {"login": "github-actions[bot]"}, "body": "<!-- twinserve-preview:dev -->\nold"},
    ]
    (tmp_path / "comments.json").write_text(json.dumps(comments))
    stand_in(
        tmp_path,
        "gh",
        f'if [ "$2" = "--paginate" ]; then cat "{tmp_path}/comments.json"; fi',
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


def test_a_preview_cannot_close_its_code_block_or_forge_a_marker(tmp_path: Path) -> None:
    """The preview's output is the pull request's own (its program, its messages): a fence longer than
    any backtick run keeps it inside the code block; the comment job takes only a well-formed marker."""
    previews = tmp_path / "previews"
    hostile = "```\n</details><img src=x onerror=alert(1)>\n````` and more"
    result = run("write-preview.sh", "dev", str(previews), env={"PREVIEW_OUTPUT": hostile})
    assert result.returncode == 0, result.stderr
    lines = (previews / "dev.md").read_text().splitlines()
    fence = lines[5]
    assert fence == "`" * 6
    assert lines[-2] == fence  # the one closing fence, after the hostile text
    assert sum(line.startswith(fence) for line in lines) == 2  # nothing inside can close it
    forged = previews / "forged.md"
    forged.write_text('<!-- twinserve-preview:dev" or true -->\nx\n')
    (previews / "dev.md").unlink()
    stand_in(tmp_path, "gh", "")
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "REPOSITORY": "a/b", "PR_NUMBER": "1", "GH_TOKEN": "t"}
    refused = run("pr-comment.sh", str(previews), env=env)
    assert refused.returncode == 1
    assert "no preview marker" in refused.stderr
    assert not (tmp_path / "gh.log").exists()  # refused before any call


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


def image_tree(root: Path, model: bytes = b"tflite", readme: str = "a") -> Path:
    """The files an image build copies in, and one it does not (the README)."""
    for name, content in {
        "serving/Dockerfile": "FROM x",
        "serving/app.py": "print()",
        "serving/requirements-http.txt": "uvicorn==1",
        "README.md": readme,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    (root / "build/models/iris/1").mkdir(parents=True, exist_ok=True)
    (root / "build/models/iris/1/model.tflite").write_bytes(model)
    return root


def test_the_image_tag_follows_its_inputs_only(tmp_path: Path) -> None:
    first = run("image-inputs.sh", cwd=image_tree(tmp_path / "a")).stdout
    readme_only = run("image-inputs.sh", cwd=image_tree(tmp_path / "b", readme="changed")).stdout
    new_model = run("image-inputs.sh", cwd=image_tree(tmp_path / "c", model=b"retrained")).stdout
    assert first.startswith("tag=inputs-")
    assert len(first.strip()) == len("tag=inputs-") + 40
    assert readme_only == first
    assert new_model != first
    amd64_only = run("image-inputs.sh", cwd=image_tree(tmp_path / "d"), env={"PLATFORMS": "linux/amd64"})
    assert amd64_only.stdout != first  # an image built for other platforms gets a tag of its own
    missing = run("image-inputs.sh", cwd=tmp_path, env={"MODEL_NAME": "digits"})
    assert missing.returncode == 1
    assert "build/models/digits/1 is missing: run `make model` first" in missing.stderr


@pytest.mark.parametrize(
    ("aws", "expected", "code"),
    [
        (f'echo "{DIGEST}"', f"exists=true\ndigest={DIGEST}\n", 0),
        ('echo "An error occurred (ImageNotFoundException) when calling DescribeImages" >&2; exit 254',
         "exists=false\n", 0),
        ('echo "An error occurred (AccessDeniedException)" >&2; exit 254', "", 1),
    ],
)  # fmt: skip
def test_an_image_already_pushed_is_reused_and_only_a_missing_one_is_built(
    tmp_path: Path, aws: str, expected: str, code: int
) -> None:
    stand_in(tmp_path, "aws", aws)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "ECR_REPOSITORY_URL": "1.dkr.ecr.x/twinserve",
           "TAG": "inputs-abc"}  # fmt: skip
    result = run("existing-image.sh", env=env)
    assert (result.stdout, result.returncode) == (expected, code)
    assert (
        (tmp_path / "aws.log")
        .read_text()
        .startswith("ecr describe-images --repository-name twinserve --image-ids imageTag=inputs-abc")
    )


def git(repo: Path, *args: str) -> str:
    who = {f"GIT_{role}_{field}": value for role in ("AUTHOR", "COMMITTER") for field, value in
           (("NAME", "t"), ("EMAIL", "t@t"))}  # fmt: skip
    env = {"PATH": os.environ["PATH"], "HOME": str(repo), **who}
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def test_a_rollback_deploys_only_commits_of_main(tmp_path: Path) -> None:
    """Main has two commits; a branch has one more that was never merged."""
    git(tmp_path, "init", "-q", "-b", "main")
    for message in ("first", "second"):
        git(tmp_path, "commit", "-q", "--allow-empty", "-m", message)
    first = git(tmp_path, "rev-parse", "HEAD~1").strip()
    git(tmp_path, "checkout", "-q", "-b", "unreviewed")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "not merged")
    unmerged = git(tmp_path, "rev-parse", "HEAD").strip()
    env = {"MAIN_REF": "main"}
    git(tmp_path, "checkout", "-q", first)
    assert run("deploy-ref.sh", env=env, cwd=tmp_path).stdout == f"ref={first}\n"
    git(tmp_path, "checkout", "-q", unmerged)
    refused = run("deploy-ref.sh", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert f"commit {unmerged} is not in main's history" in refused.stderr


REPOSITORY = "1.dkr.ecr.eu-west-1.amazonaws.com/twinserve"
ARM64, AMD64, ATTESTATION = "sha256:" + "a1" * 32, "sha256:" + "a2" * 32, "sha256:" + "a3" * 32


def oci_index(*platforms: tuple[str, str]) -> str:
    """What `docker buildx imagetools inspect --raw` prints for a pushed multi-platform build."""
    manifests = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
         "platform": {"os": "linux", "architecture": arch}}
        for arch, digest in platforms
    ] + [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ATTESTATION,
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
    ]  # fmt: skip
    return json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})


@pytest.mark.parametrize(
    ("raw", "expected", "error"),
    [
        (
            oci_index(("amd64", AMD64), ("arm64", ARM64)),
            f"lambda_image_arm64={REPOSITORY}@{ARM64}\nlambda_image_x86_64={REPOSITORY}@{AMD64}\n",
            "",
        ),
        (oci_index(("amd64", AMD64)), "", "has no linux manifest for ['arm64']: Lambda could not run it"),
        (
            json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}),
            "",
            "is one manifest, not a multi-platform index",
        ),
    ],
)
def test_lambda_gets_its_architectures_manifest_never_the_index(
    tmp_path: Path, raw: str, expected: str, error: str
) -> None:
    (tmp_path / "index.json").write_text(raw)
    stand_in(tmp_path, "docker", f'cat "{tmp_path}/index.json"')
    image = f"{REPOSITORY}@{DIGEST}"
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "IMAGE": image}
    result = run("image-platforms.sh", env=env)
    assert result.stdout == expected
    assert (result.returncode, error in result.stderr) == ((1, True) if error else (0, True))
    assert (tmp_path / "docker.log").read_text() == f"buildx imagetools inspect --raw {image}\n"


def git_history(root: Path) -> tuple[str, str]:
    """A repository with two commits on main: the older and the newer."""
    root.mkdir()
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    git = ["git", "-C", str(root), "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True, env={**os.environ, **env})
    commits = []
    for message in ("older", "newer"):
        subprocess.run(
            [*git, "commit", "-q", "--allow-empty", "-m", message], check=True, env={**os.environ, **env}
        )
        commits.append(
            subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        )
    return commits[0], commits[1]


@pytest.mark.parametrize(
    ("deployed", "deploying", "rollback", "code", "said"),
    [
        ("newer", "older", "false", 1, "already runs {newer}, which is newer than this run's {older}"),
        ("newer", "older", "true", 0, "rollback to {older}: an older commit is intended"),
        ("older", "newer", "false", 0, "deploying {newer} over {older}"),
        ("newer", "newer", "false", 0, "deploying {newer} (it runs {newer})"),
        ("", "older", "false", 0, "deploying {older}"),
    ],
)
def test_deploys_apply_in_commit_order_and_only_a_rollback_goes_back(
    tmp_path: Path, deployed: str, deploying: str, rollback: str, code: int, said: str
) -> None:
    older, newer = git_history(tmp_path / "repo")
    commits = {"older": older, "newer": newer, "": ""}
    output = (
        f'echo "{commits[deployed]}"' if deployed else "echo \"error: no stack named 'dev'\" >&2; exit 255"
    )
    stand_in(tmp_path, "pulumi", f'[ "$1 $2 $3" != "stack output commit" ] || {{ {output}; }}')
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "ROLLBACK": rollback}
    result = subprocess.run(
        [SCRIPTS / "deploy-order.sh", "dev", commits[deploying]],
        cwd=tmp_path / "repo", capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert said.format(older=older, newer=newer) in result.stdout + result.stderr


def test_a_held_prod_says_what_passed_staging_and_how_to_promote_it() -> None:
    commit = "c0" * 20
    result = run("prod-held.sh", env={"COMMIT": commit, "REPOSITORY": "acme/models"})
    assert result.returncode == 0
    assert f"gh workflow run deploy.yml --repo acme/models -f ref={commit} -f prod=true" in result.stdout


DRIFTED = "# Drift of iris v1\n\n**Drift**: 1 of 8 features moved past PSI 0.2: `features[2]`.\n"
CALM = "# Drift of iris v1\n\nNo drift: every feature within PSI 0.2.\n"
THIN = "# Drift of iris v1\n\nNot judged: 12 records of this version, fewer than the 100 a verdict needs.\n"


@pytest.mark.parametrize(
    ("report", "code", "open_issue", "gh_calls"),
    [
        (DRIFTED, 1, "", ["issue create --title Drift in prod --body-file build/drift/prod.md"]),
        (DRIFTED, 1, "7", ["issue comment 7 --body-file build/drift/prod.md"]),
        (CALM, 0, "7", ["issue close 7 --comment No drift in prod in the report of "]),
        (CALM, 0, "", []),
        (THIN, 0, "7", []),  # too few records: no verdict, the issue stays as it is
    ],
)
def test_the_drift_job_keeps_one_issue_open_while_drift_lasts(
    tmp_path: Path, report: str, code: int, open_issue: str, gh_calls: list[str]
) -> None:
    """`make drift` and `gh` stand in: the report as make writes it, the open issue as gh lists it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "report.md").write_text(report)
    stand_in(
        bin_dir, "make", f'mkdir -p build/drift && cp "{tmp_path}/report.md" build/drift/prod.md; exit {code}'
    )
    stand_in(bin_dir, "gh", f'[ "$1 $2" != "issue list" ] || echo "{open_issue}"')
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ENV": "prod",
        "LOG_GROUP": "/aws/lambda/twinserve-iris-prod",
    }
    result = run("drift.sh", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = (bin_dir / "make.log").read_text()
    assert made == "-s drift ENV=prod LOG_GROUP=/aws/lambda/twinserve-iris-prod\n"
    said = (bin_dir / "gh.log").read_text().splitlines()
    assert said[0].startswith('issue list --state open --search "Drift in prod" in:title')
    assert len(said[1:]) == len(gh_calls)
    assert all(line.startswith(call) for line, call in zip(said[1:], gh_calls, strict=True))
    assert ("::warning title=Drift in prod::" in result.stdout) == (report == DRIFTED)


def test_a_drift_report_that_could_not_be_made_fails_the_job_and_touches_no_issue(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in(bin_dir, "make", "echo 'error: log group x not found' >&2; exit 2")
    stand_in(bin_dir, "gh", "")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "ENV": "prod", "LOG_GROUP": "x"}
    result = run("drift.sh", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "error: no drift report for prod (make drift exited 2)" in result.stderr
    assert not (bin_dir / "gh.log").exists()

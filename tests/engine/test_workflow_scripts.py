"""The workflow's own scripts with the real CLI, as the jobs run them, on an S3 state backend with a KMS
secrets provider (served on loopback): the first preview of a missing stack, the first deploy (the
deploy job's `rollout.sh run`, smoke test included), then a preview and a deploy from a fresh checkout
on a new runner. Real servers of the model stand in for the pods (kwok's pods run no containers)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine.conftest import DIGEST, FACTS, IMAGE, REPO, AwsLocal, Runner, checkout, configure
from tests.engine.control_plane import ControlPlane
from tests.engine.state_requests import iam_calls
from tests.infra.iam import STATE_BUCKET, allows
from tests.model_servers import Server

REGION = "us-east-1"
COMMIT = "c0" * 20  # the commit of main the deploy is of
PLATFORM_IMAGES = {
    "LAMBDA_IMAGE_ARM64": "registry.example/twinserve@" + DIGEST.replace("ab", "a1"),
    "LAMBDA_IMAGE_X86_64": "registry.example/twinserve@" + DIGEST.replace("ab", "a2"),
}
SECOND_IMAGE = "registry.example/twinserve@" + DIGEST.replace("ab", "cd")
DEPLOYMENT = "/apis/apps/v1/namespaces/twinserve-dev/deployments/scorer"


@pytest.fixture(scope="module")
def job_env(aws_local: AwsLocal, cluster: ControlPlane) -> dict[str, str]:
    """What the jobs' `env:` and the repository variables give every step."""
    return {
        **aws_local.env,
        "PULUMI_BACKEND_URL": aws_local.backend,
        "PULUMI_SECRETS_PROVIDER": f"awskms://{aws_local.key_alias}?region=us-east-1",
        "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true",
        "KUBECONFIG": str(cluster.kubeconfig),
        "AWS_REGION": REGION,  # the bootstrap's region, not the template's eu-west-1
        **PLATFORM_IMAGES,  # the index's platform manifests, as image-platforms.sh resolves them
        "COMMIT": COMMIT,
    }


def runner_with_checkout(
    new_runner: Callable[..., Runner], job_env: dict[str, str], folder: Path
) -> tuple[Runner, Path]:
    """A runner of its own (PULUMI_HOME, no login) and a fresh checkout of its own, of a fork serving
    `scorer` on Kubernetes."""
    tree = checkout(folder, runtimes=["kubernetes"])
    configure(tree, {"twinserve:modelName": "scorer"})
    return new_runner(**job_env, RUNNER_TEMP=str(tree)), tree


def deploy(
    where: tuple[Runner, Path], image: str, server: Server, metadata: Path
) -> subprocess.CompletedProcess[str]:
    """The deploy job's step, `rollout.sh run dev IMAGE`: dev's settings (all at once), a smoke test of
    the model's own example, and a short bake of its metrics, `server` standing in for the pods."""
    return script(where, "rollout.sh", "run", "dev", image, "--metadata", str(metadata),
                  "--kubernetes-url", server.url, "--kubernetes-metrics-url", server.metrics_url,
                  "--interval", "0.5", "--wait-seconds", "30", "--bake-seconds", "1",
                  ENVIRONMENT="dev", GITHUB_STEP_SUMMARY=str(where[1] / "summary.md"))  # fmt: skip


@pytest.fixture(scope="module")
def first(
    new_runner: Callable[..., Runner], job_env: dict[str, str], tmp_path_factory
) -> tuple[Runner, Path]:
    """The first runner and its checkout."""
    return runner_with_checkout(new_runner, job_env, tmp_path_factory.mktemp("first-checkout"))


@pytest.fixture(scope="module")
def second(
    new_runner: Callable[..., Runner], job_env: dict[str, str], tmp_path_factory
) -> tuple[Runner, Path]:
    """A new runner and a fresh checkout: nothing of the first run's working tree or PULUMI_HOME."""
    return runner_with_checkout(new_runner, job_env, tmp_path_factory.mktemp("second-checkout"))


def script(where: tuple[Runner, Path], name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    runner, tree = where
    return subprocess.run(
        [str(tree / ".github" / "scripts" / name), *args],
        cwd=tree, env={**runner.env, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def comment(where: tuple[Runner, Path], environment: str = "dev") -> str:
    return (where[1] / "build" / "preview" / f"{environment}.md").read_text()


@pytest.fixture(scope="module")
def policies() -> dict[str, dict]:
    """The bootstrap's role policies, read under mocks in a process of their own (the SDK's mocks are
    process-global and leave event loops behind)."""
    code = "import json; from tests.infra.iam import role_policies; print(json.dumps(role_policies()))"
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def denied(requests: list[dict], bucket: str, policy: dict) -> list[tuple[str, str, dict]]:
    calls = iam_calls(requests, bucket)
    assert calls, "nothing was recorded"
    return [call for call in calls if not allows(policy, call)]


def test_on_an_uninitialised_bucket_the_first_preview_writes_what_its_role_may_not(
    first: tuple[Runner, Path], aws_local: AwsLocal, policies: dict[str, dict]
) -> None:
    """The defect the bootstrap's init fixes: the first login to an empty bucket writes its metadata."""
    bucket = aws_local.new_bucket("twinserve-state-fresh")
    with aws_local.recording() as requests:
        script(first, "preview-stack.sh", "dev", "dev", "build/preview",
               PULUMI_BACKEND_URL=aws_local.backend_of(bucket))  # fmt: skip
    assert ("s3:PutObject", f"{STATE_BUCKET}/.pulumi/meta.yaml", {}) in denied(
        requests, bucket, policies["preview"]
    )


def test_once_initialised_the_first_preview_needs_only_the_preview_role(
    first: tuple[Runner, Path], aws_local: AwsLocal, policies: dict[str, dict]
) -> None:
    init = subprocess.run(
        [str(REPO / "infra" / "bootstrap" / "init-state.sh"), aws_local.backend],
        env=first[0].env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    with aws_local.recording() as requests:
        result = script(first, "preview-stack.sh", "dev", "dev", "build/preview")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No stack named 'dev' yet, so nothing to preview" in comment(first)
    assert denied(requests, aws_local.bucket, policies["preview"]) == []
    FACTS.append(
        f"workflow: after init-state.sh, the first preview said 'No stack named' and its "
        f"{len(requests)} S3/KMS requests were all within the preview role"
    )


def test_the_first_deploy_creates_the_stack_on_s3_with_kms(
    first: tuple[Runner, Path],
    aws_local: AwsLocal,
    cluster: ControlPlane,
    policies: dict[str, dict],
    scorer_servers: dict[str, Server],
    scorer_metadata: Path,
) -> None:
    with aws_local.recording() as requests:
        result = deploy(first, IMAGE, scorer_servers["none"], scorer_metadata)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "**Deployed**" in (first[1] / "summary.md").read_text()
    assert denied(requests, aws_local.bucket, policies["deploy-dev"]) == []
    stack_file = (first[1] / "environments" / "Pulumi.dev.yaml").read_text()
    assert f"secretsprovider: awskms://{aws_local.key_alias}" in stack_file  # on this runner only
    assert f"aws:region: {REGION}" in stack_file  # the one region, from the repository variable
    assert f"twinserve:lambdaImageArm64: {PLATFORM_IMAGES['LAMBDA_IMAGE_ARM64']}" in stack_file
    assert f"twinserve:lambdaImageX8664: {PLATFORM_IMAGES['LAMBDA_IMAGE_X86_64']}" in stack_file
    order = script(first, "deploy-order.sh", "dev", COMMIT)  # what the next deploy checks first
    assert order.returncode == 0, order.stdout + order.stderr
    assert f"dev: deploying {COMMIT} (it runs {COMMIT})" in order.stdout  # the stack recorded its commit
    deployment = cluster.api.wait_for(DEPLOYMENT, lambda d: d["status"].get("availableReplicas", 0) >= 1)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    FACTS.append(
        "workflow: the first deploy (rollout.sh run) created dev on s3:// with an awskms secrets provider, "
        "smoke-tested and baked"
    )


def test_a_new_runner_without_the_fallback_cannot_open_the_stack(second: tuple[Runner, Path]) -> None:
    """What every deploy after the first hit: the committed stack file names no secrets provider."""
    runner, tree = second
    assert script(second, "pulumi-login.sh").returncode == 0
    env = {**runner.env, "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "false"}
    result = subprocess.run(
        ["pulumi", "config", "set", "--secret", "--stack", "dev", "probe", "x"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "passphrase must be set" in result.stderr


def test_a_fresh_checkout_on_a_new_runner_previews_and_deploys(
    second: tuple[Runner, Path],
    cluster: ControlPlane,
    aws_local: AwsLocal,
    policies: dict[str, dict],
    scorer_servers: dict[str, Server],
    scorer_metadata: Path,
) -> None:
    kubeconfig = cluster.kubeconfig.read_text()
    with aws_local.recording() as requests:
        preview = script(
            second,
            "preview-stack.sh",
            "dev",
            "dev",
            "build/preview",
            KUBECONFIG="",
            PREVIEW_KUBECONFIG_DEV=kubeconfig,
        )
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert denied(requests, aws_local.bucket, policies["preview"]) == []  # reads, decrypts, locks
    text = comment(second)
    assert "Policy Packs run:" in text
    assert "9 unchanged" in text
    assert "without the cluster" not in text
    written = second[1] / "preview-kubeconfig"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    up = deploy(second, SECOND_IMAGE, scorer_servers["none"], scorer_metadata)
    assert up.returncode == 0, up.stdout + up.stderr
    cluster.api.wait_for(
        DEPLOYMENT, lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"] == SECOND_IMAGE
    )
    FACTS.append(
        "workflow: a fresh checkout on a new runner previewed (9 unchanged) and deployed a new image"
    )


def test_a_preview_without_cluster_access_says_so_plainly(second: tuple[Runner, Path]) -> None:
    result = script(second, "preview-stack.sh", "dev", "dev", "build/preview", KUBECONFIG="/nonexistent")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no PREVIEW_KUBECONFIG_DEV secret, so the Kubernetes resources were previewed" in comment(second)


def test_destroy_from_the_new_runner(second: tuple[Runner, Path], cluster: ControlPlane) -> None:
    runner, tree = second
    result = subprocess.run(
        [str(tree / "infra" / ".venv" / "bin" / "python"), "infra/engine.py", "destroy", "--stack", "dev"],
        cwd=tree, env=runner.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    FACTS.append("workflow: destroy of dev from the new runner")

"""`make plan` and `make plan-diff`: the rendered stacks, checked by the real validators."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from offline import terraform_plan
from offline.mocks import Declared
from offline.plan import plain

from tests.checkers import checkov
from tests.infra.conftest import ENVS, IMAGE, REPO

# The oldest Kubernetes minor still in standard support on the big clouds, and the newest schema bundled.
KUBERNETES_VERSIONS = ["1.33", kubernetes_validate.latest_version()]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory, zip_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("plan")
    result = make("plan", "ENV=all", f"IMAGE={IMAGE}", f"DIST={zip_dir}", f"PLAN_DIR={out}")
    assert result.returncode == 0, result.stderr
    return out


def manifests(plans: Path, env: str) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((plans / env / "kubernetes").glob("*.yaml"))]


def test_every_environment_is_written(plans: Path, env: str) -> None:
    assert {p.name for p in (plans / env).iterdir()} == {"kubernetes", "aws", "outputs.json", "summary.md"}
    assert len(manifests(plans, env)) == 7 + 2 * (env == "prod")  # prod's shadow Service and its policy
    outputs = json.loads((plans / env / "outputs.json").read_text())
    assert outputs["functionName"] == f"twinserve-iris-{env}"
    assert (plans / env / "aws" / "function-serving-function.json").is_file()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_strictly_against_the_kubernetes_schemas(
    plans: Path, env: str, version: str
) -> None:
    for manifest in manifests(plans, env):
        # strict: unknown fields fail; a removed API has no schema and raises SchemaNotFoundError.
        kubernetes_validate.validate(manifest, version, strict=True)


def test_a_removed_api_or_unknown_field_fails_validation() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(
            {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget"}, "1.33", True
        )
    bad = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spek": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.33", strict=True)


def test_checkov_kubernetes_checks_all_pass(plans: Path, env: str) -> None:
    report = checkov("-d", plans / env / "kubernetes", "--framework", "kubernetes", "--quiet")
    assert (report["summary"]["failed"], report["summary"]["skipped"]) == (0, 0), report["results"]
    assert report["summary"]["passed"] > 80


def test_summary_states_exposure_and_counts(plans: Path) -> None:
    prod = (plans / "prod" / "summary.md").read_text()
    assert "LoadBalancer, internet-facing load balancer" in prod
    assert "Lambda Function URL: authorization AWS_IAM" in prod
    assert f"Image: `{IMAGE}`." in prod
    assert "| `kubernetes:apps/v1:Deployment` | 1 |" in prod
    assert "| `twinserve:kubernetesMinReplicas` | `3` |" in prod


def test_plan_diff_shows_what_a_change_does(plans: Path, zip_dir: Path, tmp_path: Path) -> None:
    unchanged = make("plan-diff", f"BASE_PLAN_DIR={plans}", f"PLAN_DIR={plans}")
    assert unchanged.returncode == 0, unchanged.stderr
    assert [f"### {env}: no change" in unchanged.stdout for env in ENVS] == [True] * 3
    # Planning again gives the same files: registration order never shows in a diff.
    assert (
        make(
            "plan", "ENV=prod", f"IMAGE={IMAGE}", f"DIST={zip_dir}", f"PLAN_DIR={tmp_path / 'again'}"
        ).returncode
        == 0
    )
    again = make("plan-diff", f"BASE_PLAN_DIR={plans}", f"PLAN_DIR={tmp_path / 'again'}").stdout
    assert "### prod: no change" in again
    other_image = IMAGE.replace("ab", "cd")
    result = make("plan", "ENV=dev", f"IMAGE={other_image}", f"DIST={zip_dir}", f"PLAN_DIR={tmp_path / 'pr'}")
    assert result.returncode == 0, result.stderr
    diff = make("plan-diff", f"BASE_PLAN_DIR={plans}", f"PLAN_DIR={tmp_path / 'pr'}").stdout
    assert "### dev: 0 added, 0 removed, 2 changed" in diff
    assert "changed <code>kubernetes/deployment-iris.yaml</code>" in diff
    assert f"+        image: {other_image}" in diff
    assert "### prod: not planned in this run" in diff


def test_a_bad_environment_fails_naming_the_key_and_writes_nothing(zip_dir: Path, tmp_path: Path) -> None:
    result = make(
        "plan", "ENV=dev", "IMAGE=registry/twinserve:latest", f"DIST={zip_dir}", f"PLAN_DIR={tmp_path}"
    )
    assert result.returncode != 0
    assert "twinserve:image: must be an image reference by digest" in result.stderr
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert not list(tmp_path.iterdir())


def checkov_aws(plan_file: Path) -> dict:
    return checkov("-f", plan_file, "--config-file", REPO / "infra" / "checkov-aws.yaml", "--quiet")


def test_checkov_aws_checks_pass_with_only_the_documented_skips(plans: Path, env: str) -> None:
    report = checkov_aws(plans / env / "aws" / "terraform-plan.json")
    assert report["summary"]["failed"] == 0, json.dumps(report["results"].get("failed_checks"), indent=1)[
        :3000
    ]
    assert report["summary"]["passed"] >= 20
    skips = yaml.safe_load((REPO / "infra" / "checkov-aws.yaml").read_text())["skip-check"]
    assert len(skips) == 7


def test_checkov_aws_checks_catch_a_public_function_url(run_stack, tmp_path: Path) -> None:
    public = run_stack("dev", lambdaFunctionUrlAuth="NONE")
    aws = [Declared(r.type, r.name, plain(r.inputs)) for r in public.resources if r.type.startswith("aws:")]
    plan_file = tmp_path / "terraform-plan.json"
    plan_file.write_text(json.dumps(terraform_plan.plan(aws)))
    failed = {c["check_id"] for c in checkov_aws(plan_file)["results"]["failed_checks"]}
    # "Lambda function URLs AuthType is not None", "AWS Lambda function is not publicly accessible"
    assert failed == {"CKV_AWS_258", "CKV_AWS_301"}


def test_a_model_without_a_zip_is_planned_on_the_image_and_says_why(tmp_path: Path) -> None:
    """What `make package` leaves for a model LiteRT cannot run reaches the plan's function and summary."""
    dist = tmp_path / "dist"
    dist.mkdir()
    reason = "the model has no model.tflite (string input 'text': LiteRT has no string tensors)"
    (dist / "lambda-package.json").write_text(
        json.dumps({"package": "image", "model": "x/1", "reason": reason})
    )
    result = subprocess.run(
        [sys.executable, "infra/offline/plan.py", "--env", "prod", "--out", str(tmp_path / "plan"),
         "--zip-dir", str(dist), "--image", IMAGE],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = (tmp_path / "plan" / "prod" / "summary.md").read_text()
    assert f"Lambda runs the model image: {reason}." in summary
    (function,) = (tmp_path / "plan" / "prod" / "aws").glob("function-*.json")
    assert json.loads(function.read_text())["packageType"] == "Image"


def test_checkov_aws_checks_pass_on_a_stack_that_archives_its_captures(run_stack, tmp_path: Path) -> None:
    archived = run_stack("prod", captureSampleRate="0.1", captureArchive="true")
    aws = [Declared(r.type, r.name, plain(r.inputs)) for r in archived.resources if r.type.startswith("aws:")]
    assert any(r.type.endswith("FirehoseDeliveryStream") for r in aws)
    plan_file = tmp_path / "terraform-plan.json"
    plan_file.write_text(json.dumps(terraform_plan.plan(aws)))
    report = checkov_aws(plan_file)
    assert report["summary"]["failed"] == 0, json.dumps(report["results"].get("failed_checks"), indent=1)[
        :3000
    ]

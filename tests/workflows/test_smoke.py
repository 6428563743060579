"""`infra/delivery/smoke.py`, the post-deploy check, against real servers standing in for each runtime:
the built model's own example is sent, and its answer checked, for Iris and the three example models."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_SOURCES
from tests.ports import free_port
from tests.serving.conftest import Server, start_server, stop_server
from tests.stand_ins import port_forwarding_kubectl
from tests.workflows.conftest import REPO

SMOKE = [str(REPO / "infra" / ".venv" / "bin" / "python"), str(REPO / "infra" / "delivery" / "smoke.py")]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "PATH": "/usr/bin:/bin"}


@pytest.fixture(scope="module")
def server(model_root: Path) -> Iterator[Server]:
    running = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0")
    yield running
    stop_server(running)


@pytest.fixture
def iris(model_root: Path) -> Path:
    return model_root / "iris" / "1" / "metadata.json"


def outputs(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "modelName": "iris",
                "runtimes": ["kubernetes", "lambda"],
                "kubernetesNamespace": "twinserve-dev",
                "functionArn": "arn:aws:lambda:eu-west-1:1:function:f",
                **values,
            }
        )
    )
    return path


def smoke(
    path: Path, metadata: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # The test's server stands in for the port-forward to the model's Service.
    given = json.loads(path.read_text()).get("kubernetesEndpoint")
    url = ["--kubernetes-url", given] if given and given.startswith("http://127.0.0.1") else []
    command = [*SMOKE, str(path), "--metadata", str(metadata), *url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_both_runtimes_pass(server: Server, iris: Path, tmp_path: Path) -> None:
    endpoints = {"kubernetesEndpoint": server.url, "lambdaEndpoint": server.url + "/"}
    path = outputs(tmp_path, **endpoints, lambdaAuth="NONE")
    result = smoke(path, iris)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"kubernetes: ready, metadata and the model's example answered as expected at {server.url}",
        f"lambda: ready, metadata and the model's example answered as expected at {server.url}",
    ]


@pytest.mark.parametrize("name", sorted(EXAMPLE_SOURCES))
def test_every_example_model_passes_with_its_own_example(
    examples_root: Path, tmp_path: Path, name: str
) -> None:
    """Images (UINT8), text (BYTES) and a multi-input model: on the TensorFlow runtime,
    through the Kubernetes path and a Function URL, plain and signed."""
    metadata = examples_root / name / "1" / "metadata.json"
    running = start_server(examples_root, TWINSERVE_MODEL_NAME=name, TWINSERVE_RUNTIME="tensorflow",
                           TWINSERVE_DRAIN_SECONDS="0")  # fmt: skip
    try:
        for auth, env in (("NONE", None), ("AWS_IAM", CREDENTIALS)):
            path = outputs(tmp_path, modelName=name, kubernetesEndpoint=running.url,
                           lambdaEndpoint=running.url, lambdaAuth=auth)  # fmt: skip
            result = smoke(path, metadata, env=env)
            assert result.returncode == 0, result.stderr
            assert len(result.stdout.splitlines()) == 2
    finally:
        stop_server(running)


def test_the_example_models_cover_images_and_text(examples_root: Path) -> None:
    """Booleans and every other dtype: tests/serving/test_dtypes.py."""
    datatypes = {
        t["datatype"]
        for name in EXAMPLE_SOURCES
        for t in json.loads((examples_root / name / "1" / "metadata.json").read_text())["example"]["inputs"]
    }
    assert {"BYTES", "UINT8", "FP32"} <= datatypes


def test_a_different_answer_fails_naming_the_output(server: Server, iris: Path, tmp_path: Path) -> None:
    metadata = json.loads(iris.read_text())
    output = metadata["example"]["outputs"][0]
    output["data"][0] += 0.5
    changed = tmp_path / "metadata.json"
    changed.write_text(json.dumps(metadata))
    result = smoke(outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=server.url), changed)
    assert result.returncode == 1
    assert f"kubernetes: the model's example got a different answer: output {output['name']!r}[0] is" in (
        result.stderr
    )


def test_a_stale_version_fails(server: Server, iris: Path, tmp_path: Path) -> None:
    metadata = json.loads(iris.read_text()) | {"version": 2}
    newer = tmp_path / "metadata.json"
    newer.write_text(json.dumps(metadata))
    result = smoke(outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=server.url), newer)
    assert result.returncode == 1
    assert "kubernetes: serves iris versions ['1'], not the built 2" in result.stderr


def test_iam_function_urls_are_called_signed(server: Server, iris: Path, tmp_path: Path) -> None:
    path = outputs(tmp_path, runtimes=["lambda"], lambdaEndpoint=server.url, lambdaAuth="AWS_IAM")
    assert smoke(path, iris, env=CREDENTIALS).returncode == 0
    unsigned = smoke(
        path,
        iris,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        },
    )
    assert unsigned.returncode == 1
    assert "needs AWS_IAM signing, but no AWS credentials are configured" in unsigned.stderr


def test_an_unreachable_runtime_fails_naming_it(iris: Path, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    path = outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=dead)
    result = smoke(path, iris, "--wait-seconds", "1")
    assert result.returncode == 1
    assert f"smoke test failed: kubernetes: {dead}/v2/health/ready answered unreachable" in result.stderr


def test_a_stack_serving_another_model_fails_before_any_request(iris: Path, tmp_path: Path) -> None:
    result = smoke(outputs(tmp_path, modelName="nope", runtimes=["kubernetes"], kubernetesEndpoint="x"), iris)
    assert result.returncode == 1
    assert "the stack serves 'nope', but the built model is 'iris'" in result.stderr


def test_missing_outputs_and_metadata_are_named(iris: Path, tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"runtimes": ["lambda"]}))
    result = smoke(path, iris)
    assert result.returncode == 1
    assert "smoke test failed: the stack outputs lack 'modelName'" in result.stderr
    missing = smoke(outputs(tmp_path), tmp_path / "none.json")
    assert "none.json not found: `make package` writes it beside the Lambda zips" in missing.stderr


def test_kubernetes_is_reached_through_a_port_forward_never_its_load_balancer(
    server: Server, iris: Path, tmp_path: Path
) -> None:
    """On EKS a LoadBalancer Service's NLB is internal unless annotated: the runner could not call it.
    The smoke test port-forwards to the model's Service whatever its endpoint says (a stand-in
    kubectl, which forwards to the test's server, records how it was asked)."""
    bin_dir = tmp_path / "bin"
    port_forwarding_kubectl(bin_dir, tmp_path / "kubectl.args", server.port)
    nlb = "http://k8s-twinserv-iris-0123456789.elb.eu-west-1.amazonaws.com"
    path = outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=nlb)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = smoke(path, iris, "--wait-seconds", "10", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kubectl.args").read_text().startswith("port-forward -n twinserve-dev svc/iris ")
    assert "kubernetes: ready, metadata and the model's example answered as expected" in result.stdout

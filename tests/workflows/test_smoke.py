"""`infra/delivery/smoke.py`, the post-deploy check, against real servers standing in for each runtime:
the built model's own example is sent, and its answer checked, for Iris and the three example models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.contract import GoldenSet, Metadata, golden_beside
from tests.conftest import EXAMPLE_SOURCES
from tests.ports import free_port
from tests.serving.conftest import Server, start_server, stop_server
from tests.stand_ins import port_forwarding_kubectl
from tests.workflows.conftest import REPO
from tests.workflows.faulty_models import built_iris

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
    golden = GoldenSet.read(golden_beside(iris), Metadata.read(iris))
    replayed = f"its golden set (30 rows, accuracy {golden.accuracy:.4f} ≥ 0.8500) answered as expected"
    assert result.stdout.splitlines() == [
        f"kubernetes: ready, metadata, the model's example and {replayed} at {server.url}",
        f"lambda: ready, metadata, the model's example and {replayed} at {server.url}",
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


def beside_its_golden_set(iris: Path, directory: Path, metadata: dict) -> Path:
    """`metadata` written as a metadata.json in `directory`, with Iris's golden set beside it."""
    shutil.copyfile(golden_beside(iris), golden_beside(directory / "metadata.json"))
    changed = directory / "metadata.json"
    changed.write_text(json.dumps(metadata))
    return changed


def test_a_different_answer_fails_naming_the_output(server: Server, iris: Path, tmp_path: Path) -> None:
    metadata = json.loads(iris.read_text())
    output = metadata["example"]["outputs"][0]
    output["data"][0] += 0.5
    changed = beside_its_golden_set(iris, tmp_path, metadata)
    result = smoke(outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=server.url), changed)
    assert result.returncode == 1
    assert f"kubernetes: the model's example got a different answer: output {output['name']!r}[0] is" in (
        result.stderr
    )


def test_a_stale_version_fails(server: Server, iris: Path, tmp_path: Path) -> None:
    metadata = json.loads(iris.read_text()) | {"version": 2}
    newer = beside_its_golden_set(iris, tmp_path, metadata)
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
    alone = tmp_path / "alone" / "model-metadata.json"
    alone.parent.mkdir()
    shutil.copyfile(iris, alone)
    without = smoke(outputs(tmp_path), alone)
    assert "model-golden.json not found: `make package` writes it beside the Lambda zips" in without.stderr


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
    assert "kubernetes: ready, metadata, the model's example and its golden set (30 rows" in result.stdout


@pytest.fixture(scope="module")
def swapped_root(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Iris with versicolor and virginica swapped, imported as iris v1 (tests/workflows/faulty_models.py)."""
    return built_iris(tmp_path_factory.mktemp("swapped"), model_root / "iris" / "1", "swapped")


def test_a_model_answering_two_classes_swapped_passes_its_example_and_fails_the_golden_set(
    swapped_root: Path, iris: Path, tmp_path: Path
) -> None:
    """Every answer a 200 and the example's (class 0) unchanged: only the golden set's other rows tell."""
    running = start_server(swapped_root, TWINSERVE_RUNTIME="tensorflow", TWINSERVE_DRAIN_SECONDS="0")
    try:
        result = smoke(outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=running.url), iris)
    finally:
        stop_server(running)
    assert result.returncode == 1
    assert "the model's example got a different answer" not in result.stderr
    assert "kubernetes: the golden set's request 1 of 4 got a different answer: output 'probabilities'[" in (
        result.stderr
    )


def test_a_litert_file_that_drifts_from_tensorflow_fails_on_litert_alone(
    swapped_root: Path, model_root: Path, iris: Path, tmp_path: Path
) -> None:
    """The built artifact, its model.tflite replaced by one that answers otherwise: TensorFlow serves it
    as exported, LiteRT does not, and the golden set says which."""
    drifted = tmp_path / "models"
    shutil.copytree(model_root / "iris", drifted / "iris")
    shutil.copyfile(swapped_root / "iris" / "1" / "model.tflite", drifted / "iris" / "1" / "model.tflite")
    verdicts = {}
    for runtime in ("tensorflow", "litert"):
        running = start_server(drifted, TWINSERVE_RUNTIME=runtime, TWINSERVE_DRAIN_SECONDS="0")
        try:
            path = outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=running.url)
            verdicts[runtime] = smoke(path, iris)
        finally:
            stop_server(running)
    assert verdicts["tensorflow"].returncode == 0, verdicts["tensorflow"].stderr
    assert verdicts["litert"].returncode == 1
    assert "the golden set's request 1 of 4 got a different answer" in verdicts["litert"].stderr


def test_a_golden_set_answered_below_its_gate_fails_naming_the_accuracy(
    server: Server, iris: Path, tmp_path: Path
) -> None:
    """Answers as recorded, but rows labelled otherwise (a stand-in for a model that lost its accuracy
    within the tolerance): the accuracy the served answers earn is judged too."""
    golden = json.loads(golden_beside(iris).read_text())
    golden["labels"] = [{0: 0, 1: 2, 2: 1}[label] for label in golden["labels"]]
    relabelled = tmp_path / "metadata.json"
    shutil.copyfile(iris, relabelled)
    golden_beside(relabelled).write_text(json.dumps(golden))
    result = smoke(outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=server.url), relabelled)
    assert result.returncode == 1
    assert "kubernetes: the golden set's accuracy 0." in result.stderr
    assert "on its 30 labelled rows, below the 0.8500 required" in result.stderr

"""`infra/smoke.py`, the post-deploy check, against a real server standing in for each deployed runtime."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.serving.conftest import Server, start_server, stop_server
from tests.workflows.conftest import REPO

SMOKE = [str(REPO / "infra" / ".venv" / "bin" / "python"), str(REPO / "infra" / "smoke.py")]


@pytest.fixture(scope="module")
def server(model_root: Path) -> Iterator[Server]:
    running = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0")
    yield running
    stop_server(running)


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


def smoke(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SMOKE, str(path), *args], capture_output=True, text=True, timeout=120, env=env)


def test_both_runtimes_pass(server: Server, tmp_path: Path) -> None:
    result = smoke(
        outputs(tmp_path, kubernetesEndpoint=server.url, lambdaEndpoint=server.url + "/", lambdaAuth="NONE")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"kubernetes: ready, metadata and one inference OK at {server.url}",
        f"lambda: ready, metadata and one inference OK at {server.url}",
    ]


def test_iam_function_urls_are_called_signed(server: Server, tmp_path: Path) -> None:
    credentials = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "PATH": "/usr/bin:/bin",
    }
    path = outputs(tmp_path, runtimes=["lambda"], lambdaEndpoint=server.url, lambdaAuth="AWS_IAM")
    assert smoke(path, env=credentials).returncode == 0
    unsigned = smoke(
        path,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        },
    )
    assert unsigned.returncode == 1
    assert "needs AWS_IAM signing, but no AWS credentials are configured" in unsigned.stderr


def test_an_unreachable_runtime_fails_naming_it(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = smoke(outputs(tmp_path, runtimes=["kubernetes"], kubernetesEndpoint=dead), "--wait-seconds", "1")
    assert result.returncode == 1
    assert f"smoke test failed: kubernetes: {dead}/v2/health/ready answered unreachable" in result.stderr


def test_a_wrong_model_fails_at_metadata(server: Server, tmp_path: Path) -> None:
    path = outputs(tmp_path, modelName="nope", runtimes=["kubernetes"], kubernetesEndpoint=server.url)
    result = smoke(path)
    assert result.returncode == 1
    assert "kubernetes: model metadata answered 404" in result.stderr


def test_missing_outputs_are_named(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"runtimes": ["lambda"]}))
    result = smoke(path)
    assert result.returncode == 1
    assert "smoke test failed: the stack outputs lack 'modelName'" in result.stderr

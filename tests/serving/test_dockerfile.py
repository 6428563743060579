"""serving/Dockerfile: both linters find nothing, and its final stage's contents serve on both entrypoints."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from serving.tools.packaging.image import (
    DOCKERFILE,
    LAMBDA_COMMAND,
    REPO,
    Image,
    bake_model,
    build,
    dockerfile,
)
from tests.checkers import checkov
from tests.serving.conftest import load_event, start_server, stop_server
from tests.serving.emulator import emulated

BIN = Path(sys.executable).parent


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([BIN / "hadolint", DOCKERFILE], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_checkov_dockerfile_checks_all_pass() -> None:
    summary = checkov("-f", DOCKERFILE, "--framework", "dockerfile", "--quiet")["summary"]
    assert (summary["failed"], summary["skipped"]) == (0, 0)
    assert summary["passed"] > 50


def test_final_stage_runs_nothing_and_drops_root() -> None:
    final = dockerfile().rsplit("\nFROM ", 1)[1]
    assert "\nRUN " not in final  # no package manager, compiler or build tool in the image that runs
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert "\nUSER 10001:10001\n" in final


def test_dockerignore_admits_only_code_locks_and_model() -> None:
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert rules == ["*", "!serving/*.py", "!serving/requirements-*.txt", "!build/models/"]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, artifact: Path) -> Image:
    built = build(tmp_path_factory.mktemp("image"))
    bake_model(built, artifact)
    return built


def test_image_venv_holds_the_cpu_build_of_tensorflow(image: Image) -> None:
    dists = metadata.distributions(path=[str(_site_packages(image))])
    found = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in dists}
    if platform.machine() == "x86_64":
        assert "tensorflow-cpu" in found
        assert "tensorflow" not in found
    assert not {name for name in found if name.startswith("nvidia")}
    assert {"uvicorn", "awslambdaric", "prometheus-client"} <= found
    assert "ai-edge-litert" not in found  # one runtime per image: this one is the SavedModel's


def _site_packages(image: Image) -> Path:
    return next((image.venv / "lib").glob("python3*/site-packages"))


@pytest.fixture(scope="module")
def image_server(image: Image) -> Iterator[str]:
    server = start_server(
        None, command=image.cmd, cwd=image.app, PATH=image.path, TWINSERVE_RUNTIME=image.runtime,
        TWINSERVE_DRAIN_SECONDS="0",
    )  # fmt: skip
    yield server.url
    stop_server(server)


def test_http_entrypoint_serves_the_baked_model(image_server: str) -> None:
    response = httpx.post(
        f"{image_server}/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}
    )
    assert response.status_code == 200
    assert max(range(3), key=response.json()["predictions"][0].__getitem__) == 0
    assert httpx.get(f"{image_server}/v2/models/iris").json()["platform"] == "tensorflow_savedmodel"


def test_lambda_entrypoint_answers_events_under_awss_runtime_interface_emulator(
    image: Image, tmp_path: Path
) -> None:
    """The image's Lambda command (awslambdaric calling the handler) under the emulator Lambda's own
    Runtime API behaves as: an HTTP API event and a Function URL event, each answered."""
    env = {"PATH": image.path, "TWINSERVE_RUNTIME": image.runtime, "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = tmp_path / "lambda.log"
    with emulated(list(LAMBDA_COMMAND), image.app, env, log) as invoke:
        first = invoke(load_event("http_api_predict"))
        second = invoke(load_event("function_url_infer"))
    assert first["statusCode"] == 200, log.read_text()
    assert len(json.loads(first["body"])["predictions"][0]) == 3
    assert second["statusCode"] == 200
    assert second["isBase64Encoded"] is False
    assert json.loads(second["body"])["model_name"] == "iris"


def test_what_the_image_ships_imports_only_what_it_ships() -> None:
    """The image copies serving/'s top-level modules; none may import the tools that stay behind."""
    from serving.tools.packaging.lambda_zip import _serving_imports

    shipped = {p.stem for p in (REPO / "serving").glob("*.py")}
    for module in sorted(shipped):
        missing = set(_serving_imports(REPO / "serving" / f"{module}.py")) - shipped
        assert not missing, f"serving/{module}.py imports serving.{sorted(missing)}, which does not ship"
    assert "quickstart" not in shipped

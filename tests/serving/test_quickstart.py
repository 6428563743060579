"""`make quickstart`'s last step on any model: it sends the model's own example to a real server and
checks the answer against TensorFlow's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.serving.conftest import REPO


def quickstart(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "serving.tools.quickstart",
        "--model-root",
        str(root),
        "--port",
        str(free_port()),
    ]
    return subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True, timeout=180)


def test_iris_is_answered_with_its_label(model_root: Path) -> None:
    result = quickstart(model_root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("POST http://127.0.0.1:")
    assert "/v2/models/iris/infer" in lines[0]
    assert json.loads(lines[1])["model_name"] == "iris"
    assert lines[2] == "  row 0: setosa (1.000)"
    assert "The answer is the one TensorFlow gave at export." in result.stdout


@pytest.mark.parametrize("name", ["digits", "reviews", "shop"])
def test_any_model_is_answered_as_tensorflow_answered_it(examples_root: Path, name: str) -> None:
    result = quickstart(examples_root, "--model-name", name)
    assert result.returncode == 0, result.stderr
    assert f"/v2/models/{name}/infer" in result.stdout.splitlines()[0]
    assert "The answer is the one TensorFlow gave at export." in result.stdout


def test_a_different_answer_fails_it(artifact: Path, tmp_path: Path) -> None:
    copy = tmp_path / "models" / "iris" / "1"
    shutil.copytree(artifact, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["example"]["outputs"][0]["data"] = [0.0, 0.0, 1.0]
    (copy / "metadata.json").write_text(json.dumps(metadata))
    result = quickstart(tmp_path / "models")
    assert result.returncode == 1
    assert "error: the answer differs from TensorFlow's at export: output 'probabilities'[0]" in result.stderr


def test_an_empty_model_root_is_named(tmp_path: Path) -> None:
    result = quickstart(tmp_path / "nothing")
    assert result.returncode == 1
    missing = tmp_path / "nothing"
    expected = f"error: model root not found: {missing} (run `make model` or set TWINSERVE_MODEL_ROOT)"
    assert result.stderr.strip() == expected

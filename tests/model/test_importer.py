"""`make model SOURCE=…`: an already-trained file becomes the artifact, or a refusal that writes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make, run_cli


def metadata(root: Path, name: str) -> dict:
    return json.loads((root / name / "1" / "metadata.json").read_text())


def test_each_example_gets_the_runtimes_it_can_run(examples_root: Path) -> None:
    digits, reviews, shop = (metadata(examples_root, n) for n in ("digits", "reviews", "shop"))
    assert digits["inputs"] == [{"name": "pixels", "datatype": "UINT8", "shape": [-1, 8, 8, 1]}]
    assert shop["inputs"] == [
        {"name": "features", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "category", "datatype": "INT64", "shape": [-1, 1]},
    ]
    assert [o["name"] for o in shop["outputs"]] == ["class_probabilities", "score"]
    assert {o["name"]: o["datatype"] for o in reviews["outputs"]} == {
        "probabilities": "FP32",
        "label_bytes": "BYTES",
    }
    assert digits["litert"] == shop["litert"] == {"available": True}
    assert reviews["litert"] == {
        "available": False,
        "reason": "string input 'text': LiteRT has no string tensors",
    }
    assert not (examples_root / "reviews" / "1" / "model.tflite").exists()
    assert digits["source"]["format"] == "keras"
    assert shop["source"]["format"] == "h5"
    assert reviews["source"]["format"] == "saved_model"
    for recorded in (digits, reviews, shop):
        assert recorded["evaluation"]["gate"] == "passed"
        assert recorded["metrics"]["accuracy"] > 0.8
        assert "fingerprint.pb" not in recorded["files"]


def test_without_an_evaluation_file_the_gate_is_skipped_and_says_so(
    example_files: Path, tmp_path: Path
) -> None:
    result = make(
        "model", f"SOURCE={example_files / 'digits.keras'}", "NAME=mnist-like", f"MODEL_ROOT={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    assert "no evaluation: give EVAL=path.npz" in result.stdout
    recorded = metadata(tmp_path, "mnist-like")
    assert recorded["evaluation"] == {"gate": "skipped: no evaluation file given (EVAL=path.npz)"}
    assert recorded["metrics"] == {}
    assert recorded["litert"] == {"available": True}


def test_the_same_source_twice_writes_nothing_the_second_time(example_files: Path, tmp_path: Path) -> None:
    source = example_files / "shop.h5"
    first = run_cli("--source", str(source), "--output", str(tmp_path))
    tree = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    second = run_cli("--source", str(source), "--output", str(tmp_path))
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "is up to date" in second.stdout
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == tree


def bad_eval(example_files: Path, tmp_path: Path) -> Path:
    path = tmp_path / "bad.npz"
    with np.load(example_files / "shop-eval.npz") as data:
        np.savez(path, features=data["features"], labels=data["labels"])
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "nowhere/model.keras"], "model file not found: nowhere/model.keras"),
        (["--source", "model/config.yaml"], "config.yaml: expected a .keras or .h5 file"),
        (["--source", "model"], "model is a directory without saved_model.pb"),
        (["--source", "{examples}/digits.keras", "--name", "Bad Name"], "model name 'Bad Name' must match"),
        (["--source", "{examples}/shop.h5", "--eval", "{tmp}/bad.npz"], "missing arrays ['category']"),
        (["--source", "{examples}/shop.h5", "--eval", "{tmp}/none.npz"], "EVAL file not found"),
        (["--source", "{examples}/shop.h5", "--eval", "{examples}/shop-eval.npz", "--min-accuracy", "0.999"],
         "evaluation gate refused the model: accuracy"),
        (["--source", "{examples}/digits.keras", "--eval", "{examples}/shop-eval.npz"], "arrays ['pixels']"),
    ],
    ids=["missing", "not-a-model", "not-a-savedmodel", "bad-name", "eval-missing-input", "eval-missing",
         "gate", "eval-of-another-model"],
)  # fmt: skip
def test_a_bad_source_or_evaluation_is_named_and_nothing_is_written(
    example_files: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    bad_eval(example_files, tmp_path)
    root = tmp_path / "models"
    filled = [a.format(examples=example_files, tmp=tmp_path) for a in args]
    result = run_cli(*filled, "--output", str(root))
    assert result.returncode == 1
    assert message in result.stderr
    assert not any(p.is_file() for p in root.rglob("*")) if root.exists() else True


def test_a_keras_file_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    result = run_cli("--source", str(broken), "--output", str(tmp_path / "models"))
    assert result.returncode == 1
    assert "cannot load broken.keras with Keras" in result.stderr


def test_a_savedmodel_without_a_serving_signature_is_named(tmp_path: Path) -> None:
    import tensorflow as tf

    module = tf.Module()
    module.double = tf.function(lambda x: x * 2, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(
        module, str(tmp_path / "plain"), signatures={"other": module.double.get_concrete_function()}
    )
    result = run_cli("--source", str(tmp_path / "plain"), "--output", str(tmp_path / "models"))
    assert result.returncode == 1
    assert "has no 'serving_default' signature; it has ['other']" in result.stderr


def test_make_package_gives_a_model_without_litert_no_zip_and_says_why(
    examples_root: Path, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "lambda-x86_64.zip").write_bytes(b"an earlier model's zip")
    result = subprocess.run(
        [sys.executable, "-m", "serving.tools.packaging", "--model-root", str(examples_root),
         "--model-name", "reviews", "--python-version", "3.11", "--arch", "x86_64", "--out", str(dist)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no Lambda zip: the model has no model.tflite (string input 'text'" in result.stdout
    assert sorted(p.name for p in dist.iterdir()) == [
        "lambda-package.json",
        "model-golden.json",
        "model-metadata.json",
    ]
    decision = json.loads((dist / "lambda-package.json").read_text())
    assert decision["package"] == "image"
    assert decision["model"] == "reviews/1"


def test_the_makefile_names_the_model_from_its_source(tmp_path: Path) -> None:
    shutil.copy(Path("model/config.yaml"), tmp_path / "My Model.keras")
    result = make("model-ref", f"SOURCE={tmp_path / 'My Model.keras'}", "VERSION=3")
    assert result.stdout.splitlines() == ["model_name=my-model", "model_version=3"]
    assert make("model-ref").stdout.splitlines() == ["model_name=iris", "model_version=1"]

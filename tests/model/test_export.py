"""The exported artifact as serving sees it: both formats agree, and the metadata tells the truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from model.config import load_config
from model.dataset import load_examples, split

TOLERANCE = 1e-5


def _test_split() -> np.ndarray:
    config = load_config(Path("model/config.yaml"))
    features, labels = load_examples(config.data)
    return split(features, labels, config.test_fraction, config.seed).test_x


def _litert_predict(path: Path, batch: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_path=str(path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


@pytest.mark.parametrize("batch_size", [1, 32])
def test_savedmodel_and_tflite_agree(artifact: Path, batch_size: int) -> None:
    rows = np.resize(_test_split(), (batch_size, 4)).astype(np.float32)
    serve = tf.saved_model.load(str(artifact)).signatures["serving_default"]
    expected = serve(features=tf.constant(rows))["probabilities"].numpy()
    actual = _litert_predict(artifact / "model.tflite", rows)
    assert expected.shape == actual.shape == (batch_size, 3)
    np.testing.assert_allclose(actual, expected, atol=TOLERANCE)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)


def test_signature_names_are_meaningful(artifact: Path) -> None:
    serve = tf.saved_model.load(str(artifact)).signatures["serving_default"]
    _, inputs = serve.structured_input_signature
    assert list(inputs) == ["features"]
    assert list(serve.structured_outputs) == ["probabilities"]


def test_metadata_matches_the_files(artifact: Path) -> None:
    metadata = json.loads((artifact / "metadata.json").read_text())
    files = {
        p.relative_to(artifact).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in artifact.rglob("*")
        if p.is_file() and p.name != "metadata.json"
    }
    assert metadata["files"] == files
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    assert metadata["labels"] == ["setosa", "versicolor", "virginica"]
    assert (metadata["name"], metadata["version"]) == ("iris", 1)
    data = Path("model/data/iris.csv").read_bytes()
    assert metadata["training_data"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert metadata["metrics"]["accuracy"] >= 0.85
    interpreter = Interpreter(model_path=str(artifact / "model.tflite"))
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 4]
    assert interpreter.get_output_details()[0]["shape"].tolist() == [1, 3]


def test_the_artifact_carries_an_example_request_and_the_answer_tensorflow_gives_it(artifact: Path) -> None:
    example = json.loads((artifact / "metadata.json").read_text())["example"]
    (request,) = example["inputs"]
    assert (request["name"], request["datatype"], request["shape"]) == ("features", "FP32", [1, 4])
    serve = tf.saved_model.load(str(artifact)).signatures["serving_default"]
    rows = np.array(request["data"], dtype=np.float32).reshape(1, 4)
    expected = serve(features=tf.constant(rows))["probabilities"].numpy()
    (answer,) = example["outputs"]
    assert (answer["name"], answer["datatype"], answer["shape"]) == ("probabilities", "FP32", [1, 3])
    np.testing.assert_allclose(answer["data"], expected.reshape(-1), rtol=1e-6)

"""The seam: the pipeline exports whatever network model/task.py builds, under the same contract."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from model import task
from model.pipeline import run


def test_task_model_matches_the_declared_contract() -> None:
    model = task.build_model(np.ones((4, len(task.FEATURES)), dtype=np.float32))
    assert model.input_shape == (None, len(task.FEATURES))
    assert model.output_shape == (None, len(task.LABELS))


def test_a_swapped_in_network_is_exported(
    monkeypatch: pytest.MonkeyPatch, write_config, tmp_path: Path
) -> None:
    def logistic_regression(train_x: np.ndarray) -> keras.Model:
        inputs = keras.Input(shape=(len(task.FEATURES),), name=task.INPUT_NAME)
        outputs = keras.layers.Dense(len(task.LABELS), activation="softmax")(inputs)
        return keras.Model(inputs, outputs, name="logistic")

    monkeypatch.setattr(task, "build_model", logistic_regression)
    config = write_config(gate={"min_accuracy": 0.5, "max_log_loss": 2.0}, epochs=50, version=7)
    target, _, written = run(config, tmp_path)
    assert written
    metadata = json.loads((target / "metadata.json").read_text())
    assert target == tmp_path / "iris" / "7"
    assert metadata["version"] == 7
    assert "model.tflite" in metadata["files"]

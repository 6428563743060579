"""golden.json, as the export writes it: the evaluation rows and TensorFlow's answers, with their labels,
for a trained model and for each imported example; generated rows without labels when there is no
evaluation data; and only as many rows as a request can reasonably carry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model import golden
from serving.contract import GOLDEN_FILE, GoldenSet, Metadata
from tests.conftest import make


def read(artifact: Path) -> tuple[Metadata, GoldenSet]:
    metadata = Metadata.read(artifact)
    return metadata, GoldenSet.read(artifact / GOLDEN_FILE, metadata)


def test_a_trained_model_carries_its_whole_test_split_labelled(artifact: Path) -> None:
    metadata, golden_set = read(artifact)
    test_rows = int(metadata.record["metrics"]["test_examples"])
    assert golden_set.source == "evaluation"
    assert golden_set.rows == len(golden_set.labels) == test_rows == 30
    assert [request.rows() for request in golden_set.requests] == [8, 8, 8, 6]
    assert golden_set.scored_output == "probabilities"
    # The same rows the gate scored: the same accuracy, and the gate's threshold beside it.
    assert golden_set.accuracy == pytest.approx(metadata.record["metrics"]["accuracy"])
    assert golden_set.min_accuracy == 0.85
    assert golden_set.requests[0].inputs[0].data[:4] == metadata.example.inputs[0].data
    assert golden_set.requests[0].outputs[0].data[:3] == metadata.example.outputs[0].data
    assert GOLDEN_FILE in metadata.record["files"]  # hashed with the rest of the artifact


@pytest.mark.parametrize(
    ("name", "scored"),
    [("digits", "probabilities"), ("reviews", "probabilities"), ("shop", "class_probabilities")],
)
def test_an_imported_model_with_evaluation_data_carries_its_first_rows_labelled(
    examples_root: Path, name: str, scored: str
) -> None:
    _metadata, golden_set = read(examples_root / name / "1")
    assert golden_set.source == "evaluation"
    assert golden_set.rows == len(golden_set.labels) == golden.MAX_ROWS
    assert all(request.rows() <= golden.ROWS_PER_REQUEST for request in golden_set.requests)
    assert golden_set.scored_output == scored
    assert golden_set.accuracy is not None
    assert golden_set.accuracy > 0.7
    assert golden_set.min_accuracy == 0.0  # MIN_ACCURACY's default: the gate's threshold as given


def test_without_evaluation_data_the_rows_are_generated_and_unlabelled(
    example_files: Path, tmp_path: Path
) -> None:
    result = make("model", f"SOURCE={example_files / 'shop.h5'}", f"MODEL_ROOT={tmp_path}")
    assert result.returncode == 0, result.stderr
    _, golden_set = read(tmp_path / "shop" / "1")
    assert golden_set.source == "generated"
    assert golden_set.rows == 4
    assert golden_set.labels == ()
    assert golden_set.required_accuracy is None
    reference = json.loads((tmp_path / "shop" / "1" / "reference.json").read_text())
    assert reference["source"] == "generated"  # the rows it describes say so too


def test_image_sized_rows_stop_at_a_request_of_about_a_megabyte() -> None:
    inputs = [{"name": "image", "datatype": "FP32", "shape": [-1, 224, 224, 3]}]
    images = {"image": np.full((5, 224, 224, 3), 0.123456789, dtype=np.float32)}
    assert golden._rows_that_fit(images, inputs) == 1  # never none: the first row, however large
    small = {"image": np.zeros((50, 2, 2, 3), dtype=np.float32)}
    assert golden._rows_that_fit(small, inputs) == golden.MAX_ROWS

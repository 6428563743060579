"""The shipped data loads; a missing or corrupt file is refused with the line and column named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.dataset import load_examples, split
from model.errors import PipelineError

DATA = Path("model/data/iris.csv")
HEADER = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n"


def test_shipped_data_loads() -> None:
    features, labels = load_examples(DATA)
    assert features.shape == (150, 4)
    assert features.dtype == np.float32
    assert np.bincount(labels).tolist() == [50, 50, 50]


def test_split_is_stratified_and_reproducible() -> None:
    features, labels = load_examples(DATA)
    first = split(features, labels, 0.2, seed=7)
    second = split(features, labels, 0.2, seed=7)
    assert np.array_equal(first.test_x, second.test_x)
    assert np.bincount(first.test_y).tolist() == [10, 10, 10]
    assert len(first.train_y) == 120


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER + "5.1,3.5,abc,0.2,setosa\n", ":2: column 'petal_length_cm' is not a number: 'abc'"),
        (HEADER + "5.1,3.5,1.4,0.2,rose\n", ":2: column 'species' has unknown label 'rose'"),
        (
            HEADER + "5.1,3.5,1.4,0.2,setosa\n5.1,nan,1.4,0.2,setosa\n",
            ":3: column 'sepal_width_cm' is not finite",
        ),
        (HEADER + "5.1,3.5\n", ":2: column 'petal_length_cm' is not a number: None"),
        ("a,b,c\n1,2,3\n", "missing columns ['sepal_length_cm'"),
        (HEADER, "no data rows"),
        ("", "missing columns"),
    ],
)
def test_corrupt_data_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(PipelineError) as caught:
        load_examples(path)
    assert message in str(caught.value)


def test_missing_data_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"data file not found: .*missing\.csv"):
        load_examples(tmp_path / "missing.csv")

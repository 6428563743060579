"""Reads the training CSV into arrays, refusing bad rows by name, and splits it reproducibly."""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import task
from model.errors import PipelineError


@dataclass(frozen=True)
class Split:
    """Training and held-out arrays (features float32, labels as class indices)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_row(row: dict[str, str], line: int, path: Path) -> tuple[list[float], int]:
    values = []
    for column in task.FEATURES:
        text = row.get(column)
        try:
            value = float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise PipelineError(f"{path}:{line}: column {column!r} is not a number: {text!r}") from None
        if not math.isfinite(value):
            raise PipelineError(f"{path}:{line}: column {column!r} is not finite: {text!r}")
        values.append(value)
    label = row.get(task.LABEL_COLUMN)
    if label not in task.LABELS:
        raise PipelineError(
            f"{path}:{line}: column {task.LABEL_COLUMN!r} has unknown label {label!r}; "
            f"expected one of {list(task.LABELS)}"
        )
    return values, task.LABELS.index(label)


def load_examples(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All rows of the CSV as (features, label indices)."""
    if not path.is_file():
        raise PipelineError(f"data file not found: {path}")
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        header = reader.fieldnames or []
        missing = [c for c in (*task.FEATURES, task.LABEL_COLUMN) if c not in header]
        if missing:
            raise PipelineError(f"{path}: missing columns {missing}; header is {header}")
        parsed = [_parse_row(row, n, path) for n, row in enumerate(reader, start=2)]
    if not parsed:
        raise PipelineError(f"{path}: no data rows")
    features = np.asarray([p[0] for p in parsed], dtype=np.float32)
    labels = np.asarray([p[1] for p in parsed], dtype=np.int64)
    return features, labels


def split(features: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int) -> Split:
    """Stratified split: each class keeps its share in the held-out set, the same for a seed."""
    rng = np.random.default_rng(seed)
    test_rows: list[int] = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        test_rows.extend(rows[: max(1, round(len(rows) * test_fraction))].tolist())
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_rows] = True
    if is_test.all():
        raise PipelineError("test_fraction leaves no rows to train on")
    return Split(features[~is_test], labels[~is_test], features[is_test], labels[is_test])

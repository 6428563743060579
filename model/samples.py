"""The rows an export checks and describes the model on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.litert import Arrays


@dataclass(frozen=True)
class Samples:
    """Rows of the model's inputs LiteRT is checked on, the example and golden set are drawn from and,
    without training rows, reference.json describes; with their true classes when they are labelled."""

    arrays: Arrays
    labels: np.ndarray | None = None  # each row's class, aligned with the arrays' rows
    min_accuracy: float | None = None  # the evaluation gate's threshold for these labels
    source: str = "evaluation"  # or "generated": made up for the signature's dtypes and shapes

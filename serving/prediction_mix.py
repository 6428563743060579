"""The prediction mix: how many answered rows each class topped, for the canary analysis to compare
between the new model and the stable one (a model collapsed onto one class, or whose answers moved
between classes, answers 200 and passes every latency and error signal).

Only a classifier has a mix: its first output of floats shaped `[-1, classes]` with 2 to
MIX_MAX_CLASSES classes (more would make the comparison need more answers than a bake sees, and
the metric too many series). A class is its column (`class`, what two models are compared on: an
imported model may know no names) and its name in metadata.json's labels when they match (`label`,
for people; else the column again). Counting costs one argmax and one counter increment per class
in the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from serving.artifact import ModelSpec
from serving.contract import MIX_MAX_CLASSES


class PredictionMix:
    """Counts the top class of each row of one output, through `count(output, column, label, rows)`."""

    def __init__(self, spec: ModelSpec, count: Callable[[str, str, str, int], None]) -> None:
        self.output, self.classes = classifier(spec)
        self.columns = tuple(str(index) for index in range(len(self.classes)))
        self._count = count

    @property
    def counts_anything(self) -> bool:
        return self.output is not None

    def add(self, outputs: Mapping[str, np.ndarray] | None) -> None:
        if self.output is None or outputs is None or self.output not in outputs:
            return
        scores = outputs[self.output]
        if scores.ndim != 2 or scores.shape[1] != len(self.classes) or not scores.shape[0]:
            return
        if scores.shape[0] == 1:  # most requests: one row, one count
            index = int(scores.argmax())
            self._count(self.output, self.columns[index], self.classes[index], 1)
            return
        tops = np.bincount(np.argmax(scores, axis=1), minlength=len(self.classes))
        for index in np.flatnonzero(tops):
            self._count(self.output, self.columns[index], self.classes[index], int(tops[index]))


def classifier(spec: ModelSpec) -> tuple[str | None, tuple[str, ...]]:
    """The output whose top class is counted and its classes' names; (None, ()) for a model with none."""
    for output in spec.outputs:
        width = output.shape[1] if len(output.shape) == 2 else 0
        if output.datatype.startswith("FP") and 2 <= width <= MIX_MAX_CLASSES:
            names = spec.labels if len(spec.labels) == width else tuple(str(i) for i in range(width))
            return output.name, names
    return None, ()

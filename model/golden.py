"""The golden set an artifact carries (golden.json): a few rows and TensorFlow's answers to them, with
each row's true class when the export has labelled data, which every smoke test replays through the
runtime it deployed (infra/delivery/smoke.py).

The rows are the evaluation split's first (or the samples LiteRT was checked on), at most MAX_ROWS
and about MAX_BYTES of JSON, never fewer than one: an image model's golden set is its first row.
Each request holds at most ROWS_PER_REQUEST rows, well inside any runtime's limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from model import gate
from model.samples import Samples
from model.signature import v2_tensors
from serving import contract

MAX_ROWS = 32
MAX_BYTES = 1_000_000
ROWS_PER_REQUEST = 8


def _rows_that_fit(samples: Mapping[str, np.ndarray], inputs: list[dict]) -> int:
    available = min(len(array) for array in samples.values())
    one_row = len(json.dumps(v2_tensors({k: v[:1] for k, v in samples.items()}, inputs)))
    return max(1, min(available, MAX_ROWS, MAX_BYTES // max(one_row, 1)))


def golden_set(
    signature: tf.types.experimental.ConcreteFunction,
    inputs: list[dict],
    outputs: list[dict],
    drawn: Samples,
) -> contract.GoldenSet:
    """The first rows of the samples (and of their labels), answered by `signature`."""
    samples, labels, source = drawn.arrays, drawn.labels, drawn.source
    rows = _rows_that_fit(samples, inputs)
    requests, answers = [], {}
    for start in range(0, rows, ROWS_PER_REQUEST):
        chunk = {name: array[start : min(start + ROWS_PER_REQUEST, rows)] for name, array in samples.items()}
        answer = {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in chunk.items()}).items()}
        for name, array in answer.items():
            answers.setdefault(name, []).append(array)
        raw = {"inputs": v2_tensors(chunk, inputs), "outputs": v2_tensors(answer, outputs)}
        requests.append(contract.Example(_tensors(raw["inputs"]), _tensors(raw["outputs"])))
    if labels is None:
        return contract.GoldenSet(tuple(requests), source=source)
    kept = labels[:rows].astype(np.int64)
    scored = gate.scored_output(outputs, {k: np.concatenate(v) for k, v in answers.items()}, kept)
    if scored is None:  # no output scores every class: the answers are still replayed, the labels unused
        return contract.GoldenSet(tuple(requests), source=source)
    scores = np.concatenate(answers[scored])
    accuracy = float(np.mean(np.argmax(scores, axis=1) == kept))
    return contract.GoldenSet(
        tuple(requests), tuple(int(v) for v in kept), scored, accuracy, drawn.min_accuracy, source
    )


def _tensors(described: list[dict]) -> tuple[contract.Tensor, ...]:
    return tuple(
        contract.Tensor(t["name"], t["datatype"], tuple(t["shape"]), tuple(t["data"])) for t in described
    )

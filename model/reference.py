"""The reference distributions a drift report compares production with, written into the artifact.

At export, from the evaluation rows (or the generated ones when there are none) and TensorFlow's
answers to them: per input feature, quantile bins of its numbers (or of a string's length), and per
output, the bins of each value and the share of each top class. What a feature is and how its
value is read from a V2 tensor is the contract's (`serving/contract.py`, `Reference`), so the writer
here and the reader in `infra/drift/` agree by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving import contract

BINS = 10  # deciles of the reference: each bin holds about a tenth of it
MAX_CLASSES = 1000  # an output this wide or narrower, two or more, also reports its top class


def _edges(values: np.ndarray) -> list[float]:
    """Inner edges at the reference's quantiles, repeated ones dropped (a constant feature has none)."""
    quantiles = np.quantile(values.astype(np.float64), np.linspace(0, 1, BINS + 1)[1:-1])
    return sorted({float(q) for q in quantiles})


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [round(float(c) / total, 6) for c in counts]


def _numeric(name: str, tensor: str, group: str, index: int | None, values: np.ndarray, reads: str) -> dict:
    edges = _edges(values)
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return {"name": name, "group": group, "tensor": tensor, "index": index, "reads": reads,
            "edges": edges, "shares": _shares(counts)}  # fmt: skip


def _category(name: str, tensor: str, group: str, index: int | None, values: list[str]) -> dict:
    kinds, counts = np.unique(np.array(values, dtype=object).astype(str), return_counts=True)
    shares = dict(zip((str(k) for k in kinds), _shares(counts), strict=True))
    return {"name": name, "group": group, "tensor": tensor, "index": index,
            "reads": contract.READS_CATEGORY, "shares": shares}  # fmt: skip


def _texts(array: np.ndarray) -> list[str]:
    return [bytes(v).decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array]


def _feature(
    name: str, tensor: str, group: str, index: int | None, values: np.ndarray, datatype: str
) -> dict:
    """A category when the values are strings or integers of few kinds, else quantile bins (of a
    string's length when strings are many)."""
    categorical = datatype == "BYTES" or datatype.startswith(("INT", "UINT", "BOOL"))
    if categorical and len(set(values.tolist())) <= contract.MAX_CATEGORIES:
        return _category(name, tensor, group, index, _texts(values))
    if datatype == "BYTES":
        lengths = np.array([len(v) for v in values], dtype=np.float64)
        return _numeric(f"{name}:length", tensor, group, index, lengths, contract.READS_LENGTH)
    return _numeric(name, tensor, group, index, values.astype(np.float64), contract.READS_VALUE)


def _tensor_features(spec: dict, group: str, array: np.ndarray) -> list[dict]:
    """One feature per value of a row when a row holds few (`features[2]`), else one for them all."""
    name, datatype = spec["name"], spec["datatype"]
    flat = array.reshape(array.shape[0], -1)
    if flat.shape[1] <= contract.MAX_FEATURES_PER_TENSOR:
        return [_feature(f"{name}[{i}]", name, group, i, flat[:, i], datatype) for i in range(flat.shape[1])]
    return [_feature(f"{name}[*]", name, group, None, flat.reshape(-1), datatype)]


def _top_class(spec: dict, array: np.ndarray, labels: list[str]) -> dict | None:
    if spec["datatype"] not in {"FP16", "FP32", "FP64"} or array.ndim != 2:
        return None
    classes = array.shape[1]
    if not 2 <= classes <= MAX_CLASSES:
        return None
    names = labels if len(labels) == classes else [str(i) for i in range(classes)]
    counts = np.bincount(array.argmax(axis=1), minlength=classes)
    return {"name": f"{spec['name']}:top", "group": "outputs", "tensor": spec["name"], "index": None,
            "reads": contract.READS_TOP_CLASS, "classes": names,
            "shares": dict(zip(names, _shares(counts), strict=True))}  # fmt: skip


def reference(
    inputs: list[dict],
    outputs: list[dict],
    labels: list[str],
    samples: dict[str, np.ndarray],
    answers: dict[str, np.ndarray],
    source: str,
) -> dict[str, Any]:
    """reference.json's document; `source` says whether the rows were the evaluation data or generated."""
    features = [
        f for spec in inputs for f in _tensor_features(spec, "inputs", np.asarray(samples[spec["name"]]))
    ]
    for spec in outputs:
        array = np.asarray(answers[spec["name"]])
        features += _tensor_features(spec, "outputs", array)
        top = _top_class(spec, array, labels)
        if top is not None:
            features.append(top)
    rows = int(np.asarray(next(iter(samples.values()))).shape[0])
    return {"schema": contract.REFERENCE_SCHEMA, "source": source, "rows": rows, "features": features}

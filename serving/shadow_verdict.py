"""The shadow's answers judged against the stable ones, for both runtimes' mirrors (serving/shadow.py on
the HTTP server, serving/lambda_shadow.py on Lambda): the request a shadow is asked, its answer read
back, and the comparison: every output within the contract's tolerance, and for a classifier the top
class of each row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from serving.artifact import ModelSpec
from serving.contract import ATOL, RTOL
from serving.jsonio import dumps, parse_json, v2_data
from serving.tensors import NUMPY_TYPES, Inputs


@dataclass(frozen=True)
class Verdict:
    """One comparison: whether every output was within tolerance, and each row's top-class agreement."""

    within_tolerance: bool
    rows_agreed: int
    rows_disagreed: int


def compare(
    spec: ModelSpec, scored: str | None, stable: Mapping[str, np.ndarray], shadow: Mapping[str, np.ndarray]
) -> Verdict:
    """The shadow's outputs against the stable ones: every output within RTOL/ATOL (strings equal), and
    for the classifier's output (`scored`, serving/prediction_mix.py's) the top class of each row."""
    within = True
    for output in spec.outputs:
        ours, theirs = stable.get(output.name), shadow.get(output.name)
        if ours is None or theirs is None or ours.shape != theirs.shape:
            within = False
        elif ours.dtype.kind in "fiub":
            expected = ours.astype(np.float64)
            gap = np.abs(theirs.astype(np.float64) - expected)
            within = within and bool(np.all(gap <= ATOL + RTOL * np.abs(expected)))  # np.allclose's rule
        else:
            within = within and bool(np.array_equal(theirs, ours))
    if (
        scored is None
        or scored not in stable
        or scored not in shadow
        or stable[scored].shape != shadow[scored].shape
    ):
        return Verdict(within, 0, 0)
    agreed = int(np.sum(np.argmax(stable[scored], axis=1) == np.argmax(shadow[scored], axis=1)))
    return Verdict(within, agreed, len(stable[scored]) - agreed)


def request_body(spec: ModelSpec, inputs: Inputs) -> bytes | None:
    """The inputs as a V2 JSON request; None when one holds bytes that are not text (V2 JSON cannot)."""
    tensors = []
    for tensor in spec.inputs:
        data = v2_data(inputs[tensor.name])
        if tensor.datatype == "BYTES" and any(isinstance(value, dict) for value in data):
            return None
        tensors.append({"name": tensor.name, "datatype": tensor.datatype,
                        "shape": list(inputs[tensor.name].shape), "data": data})  # fmt: skip
    return dumps({"inputs": tensors})


def answer_outputs(spec: ModelSpec, body: bytes) -> dict[str, np.ndarray]:
    """A V2 answer's outputs as arrays of the declared dtypes and shapes."""
    declared = {t.name: t.datatype for t in spec.outputs}
    arrays = {}
    for output in parse_json(body, "the shadow's answer").get("outputs", []):
        name = output.get("name")
        if name in declared:
            dtype = NUMPY_TYPES[declared[name]]
            array = np.asarray(output["data"], dtype=object if dtype is np.object_ else dtype)
            arrays[name] = array.reshape(output["shape"])
    return arrays


def outputs_json(outputs: Mapping[str, np.ndarray]) -> list[dict]:
    """The stable answer's outputs as a V2 answer holds them, for `answer_outputs` to read back."""
    return [
        {"name": name, "shape": list(array.shape), "data": v2_data(array)} for name, array in outputs.items()
    ]

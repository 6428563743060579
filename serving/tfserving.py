"""TensorFlow Serving REST codec: predict requests to batches, outputs to responses, model descriptions.

Follows https://www.tensorflow.org/tfx/serving/api_rest: row (`instances`) and columnar
(`inputs`) formats; the response mirrors the request's format.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.artifact import ModelSpec, TensorSpec
from serving.errors import BadRequest
from serving.tensors import batch_from_json

DTYPES = {"FP32": "DT_FLOAT", "FP64": "DT_DOUBLE", "INT32": "DT_INT32", "INT64": "DT_INT64"}


def _unwrap(value: Any, spec: TensorSpec, where: str) -> Any:
    """A tensor is sent bare or as an object keyed by the input name."""
    if not isinstance(value, dict):
        return value
    if set(value) != {spec.name}:
        raise BadRequest(f"{where}: expected the key {spec.name!r}, got {sorted(value)}")
    return value[spec.name]


def decode_predict(payload: Any, model: ModelSpec) -> tuple[np.ndarray, bool]:
    """The batch and whether the client used the row format (which shapes the response)."""
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object with 'instances' or 'inputs'")
    unknown = set(payload) - {"instances", "inputs", "signature_name"}
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}; expected 'instances' or 'inputs'")
    signature = payload.get("signature_name", model.signature_name)
    if signature != model.signature_name:
        raise BadRequest(f"signature_name {signature!r} not found; available: [{model.signature_name!r}]")
    if ("instances" in payload) == ("inputs" in payload):
        raise BadRequest("send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    spec = model.inputs[0]
    if "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise BadRequest("'instances' must be a list with one entry per example")
        rows = [_unwrap(row, spec, f"instances[{i}]") for i, row in enumerate(instances)]
        return batch_from_json(rows, spec, "instances"), True
    return batch_from_json(_unwrap(payload["inputs"], spec, "inputs"), spec, "inputs"), False


def encode_predict(outputs: dict[str, np.ndarray], rows: bool) -> dict[str, Any]:
    """Row format: `predictions` per instance; columnar: `outputs` per tensor."""
    if len(outputs) == 1:
        (only,) = outputs.values()
        return {"predictions": only.tolist()} if rows else {"outputs": only.tolist()}
    if rows:
        count = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(count)]}
    return {"outputs": {k: v.tolist() for k, v in outputs.items()}}


def version_status(model: ModelSpec) -> dict[str, Any]:
    return {
        "model_version_status": [
            {
                "version": model.version,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def _tensor_info(spec: TensorSpec, prefix: str) -> dict[str, Any]:
    return {
        "dtype": DTYPES.get(spec.datatype, "DT_INVALID"),
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in spec.shape], "unknown_rank": False},
        "name": f"{prefix}{spec.name}:0",
    }


def metadata(model: ModelSpec) -> dict[str, Any]:
    """GetModelMetadata's JSON: the signature_def with names, dtypes and shapes."""
    signature = {
        "inputs": {t.name: _tensor_info(t, f"{model.signature_name}_") for t in model.inputs},
        "outputs": {t.name: _tensor_info(t, "") for t in model.outputs},
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": model.version},
        "metadata": {"signature_def": {"signature_def": {model.signature_name: signature}}},
    }

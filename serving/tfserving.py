"""TensorFlow Serving REST codec: predict requests to named input arrays, outputs to responses, metadata.

Follows https://www.tensorflow.org/tfx/serving/api_rest: the row format (`instances`,
one object per example when the model has several inputs) and the columnar format
(`inputs`, one object of tensors); `{"b64": …}` for binary strings, and outputs whose
name ends in `_bytes` always base64-encoded. The response mirrors the request's format.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.artifact import ModelSpec, TensorSpec
from serving.contract import DATATYPES
from serving.errors import BadRequest
from serving.json_tensors import NumericData
from serving.jsonio import json_floats
from serving.tensors import Inputs, check_shape, numeric_tensor, output_strings, same_rows, tensor_from_json

DTYPES = {d.v2: d.tf_serving for d in DATATYPES}


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _named(value: Any, model: ModelSpec, where: str) -> dict[str, Any]:
    """Values keyed by input name. One input may also come bare (a `{"b64": …}` is a bare value)."""
    names = [t.name for t in model.inputs]
    if len(names) == 1 and (not isinstance(value, dict) or (_is_b64(value) and names != ["b64"])):
        return {names[0]: value}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: the model has inputs {names}; send an object keyed by them")
    if set(value) != set(names):
        missing, unknown = sorted(set(names) - set(value)), sorted(set(value) - set(names))
        detail = "; ".join(
            part for part in (missing and f"missing {missing}", unknown and f"unknown {unknown}") if part
        )
        raise BadRequest(f"{where}: expected the key{'s' if len(names) > 1 else ''} {names}: {detail}")
    return value


def _where(model: ModelSpec, part: str, spec: TensorSpec) -> str:
    return part if len(model.inputs) == 1 else f"{part} {spec.name!r}"


def _rows(instances: Any, model: ModelSpec) -> Inputs:
    if isinstance(instances, NumericData):
        only = model.inputs[0] if len(model.inputs) == 1 else None
        array = numeric_tensor(instances, only, "instances") if only else None
        if array is not None:
            return {only.name: check_shape(array, only, "instances")}  # type: ignore[union-attr]
        instances = instances.values()  # rows of named inputs, or values to check one by one
    if not isinstance(instances, list):
        raise BadRequest("'instances' must be a list with one entry per example")
    if len(model.inputs) == 1 and not any(isinstance(row, dict) for row in instances):
        return {model.inputs[0].name: tensor_from_json(instances, model.inputs[0], "instances")}
    named = [_named(row, model, f"instances[{i}]") for i, row in enumerate(instances)]
    return {
        spec.name: tensor_from_json([row[spec.name] for row in named], spec, _where(model, "instances", spec))
        for spec in model.inputs
    }


def _columns(inputs: Any, model: ModelSpec) -> Inputs:
    named = _named(inputs, model, "inputs")
    return {
        spec.name: tensor_from_json(named[spec.name], spec, _where(model, "inputs", spec))
        for spec in model.inputs
    }


def decode_predict(payload: Any, model: ModelSpec) -> tuple[Inputs, bool]:
    """The inputs by name and whether the client used the row format (which shapes the response)."""
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
    if "instances" in payload:
        return same_rows(_rows(payload["instances"], model)), True
    return same_rows(_columns(payload["inputs"], model)), False


def _json_values(name: str, array: np.ndarray) -> np.ndarray | list[Any]:
    if array.dtype == np.object_:
        return output_strings(array, base64_all=name.endswith("_bytes"))
    return json_floats(array)


def encode_predict(outputs: dict[str, np.ndarray], rows: bool) -> dict[str, Any]:
    """Row format: `predictions` per instance; columnar: `outputs`, an object when there are several."""
    values = {name: _json_values(name, array) for name, array in outputs.items()}
    if len(values) == 1:
        (only,) = values.values()
        return {"predictions": only} if rows else {"outputs": only}
    if rows:
        count = len(next(iter(values.values())))
        return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(count)]}
    return {"outputs": values}


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

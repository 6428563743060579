"""Open Inference Protocol V2 codec (KServe, Triton, MLServer), with Triton's binary tensor extension.

Requests are JSON, or JSON followed by raw tensor bytes when the header
`Inference-Header-Content-Length` gives the JSON part's length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.artifact import ModelSpec, TensorSpec
from serving.errors import BadRequest
from serving.tensors import check_shape, numbers, parse_json, to_float32

NUMPY_TYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}  # fmt: skip
BINARY_HEADER = "inference-header-content-length"


@dataclass(frozen=True)
class InferRequest:
    """A decoded infer call: the batch, the id to echo, which outputs and how to send them."""

    batch: np.ndarray
    request_id: str | None
    outputs: tuple[str, ...]
    binary_outputs: frozenset[str]


def split_binary(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    """The JSON part and the binary tail (empty without the extension header)."""
    if header_length is None:
        return parse_json(body), b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length!r} is not a length within the body")
    size = int(header_length)
    return parse_json(body[:size], "inference header"), body[size:]


def _binary_tensor(raw: dict[str, Any], tail: bytes, offset: int, where: str) -> tuple[np.ndarray, int]:
    size = raw["parameters"]["binary_data_size"]
    if not isinstance(size, int) or size < 0 or offset + size > len(tail):
        raise BadRequest(f"{where}: binary_data_size {size!r} overruns the {len(tail)} bytes sent")
    dtype = np.dtype(NUMPY_TYPES[raw["datatype"]]).newbyteorder("<")
    if size % dtype.itemsize:
        raise BadRequest(f"{where}: binary_data_size {size} is not a multiple of {dtype.itemsize}")
    return np.frombuffer(tail, dtype=dtype, count=size // dtype.itemsize, offset=offset), offset + size


def _check_header(raw: Any, spec: TensorSpec, where: str) -> list[int]:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object with name, shape, datatype and data")
    missing = [k for k in ("name", "shape", "datatype") if k not in raw]
    if missing:
        raise BadRequest(f"{where}: missing {missing}")
    if raw["name"] != spec.name:
        raise BadRequest(f"{where}: unknown input {raw['name']!r}; the model's input is {spec.name!r}")
    if raw["datatype"] != spec.datatype:
        raise BadRequest(
            f"{where}: datatype {raw['datatype']!r} does not match the model's {spec.datatype!r}"
        )
    shape = raw["shape"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    return shape


def _has_binary(raw: dict[str, Any]) -> bool:
    parameters = raw.get("parameters")
    return isinstance(parameters, dict) and "binary_data_size" in parameters


def _decode_input(raw: Any, spec: TensorSpec, tail: bytes, where: str) -> np.ndarray:
    shape = _check_header(raw, spec, where)
    if _has_binary(raw):
        flat, _ = _binary_tensor(raw, tail, 0, where)
        flat = to_float32(flat, where)
    elif "data" in raw:
        flat = numbers(raw["data"], where).reshape(-1)
    else:
        raise BadRequest(f"{where}: missing 'data' (or binary_data_size for binary data)")
    if int(np.prod(shape)) != flat.size:
        raise BadRequest(f"{where}: shape {shape} needs {int(np.prod(shape))} values, got {flat.size}")
    return check_shape(flat.reshape(shape), spec, where)


def _requested_outputs(payload: dict[str, Any], model: ModelSpec) -> tuple[tuple[str, ...], frozenset[str]]:
    known = [o.name for o in model.outputs]
    everything_binary = bool((payload.get("parameters") or {}).get("binary_data_output"))
    requested = payload.get("outputs")
    if requested is None:
        return tuple(known), frozenset(known if everything_binary else ())
    if not isinstance(requested, list) or not all(isinstance(o, dict) and "name" in o for o in requested):
        raise BadRequest("outputs must be a list of objects with a 'name'")
    names, binary = [], set()
    for output in requested:
        if output["name"] not in known:
            raise BadRequest(f"unknown output {output['name']!r}; the model's outputs are {known}")
        names.append(output["name"])
        if (output.get("parameters") or {}).get("binary_data", everything_binary):
            binary.add(output["name"])
    return tuple(names), frozenset(binary)


def decode_infer(body: bytes, header_length: str | None, model: ModelSpec) -> InferRequest:
    payload, tail = split_binary(body, header_length)
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object with 'inputs'")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != len(model.inputs):
        raise BadRequest(
            f"'inputs' must be a list of {len(model.inputs)} tensor(s): {model.inputs[0].name!r}"
        )
    batch = _decode_input(inputs[0], model.inputs[0], tail, "inputs[0]")
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    names, binary = _requested_outputs(payload, model)
    return InferRequest(batch, request_id, names, binary)


def encode_infer(
    model: ModelSpec, request: InferRequest, outputs: dict[str, np.ndarray]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON part's length when binary outputs follow it."""
    datatypes = {o.name: o.datatype for o in model.outputs}
    tensors, blobs = [], []
    for name in request.outputs:
        array = np.ascontiguousarray(outputs[name])
        tensor: dict[str, Any] = {"name": name, "datatype": datatypes[name], "shape": list(array.shape)}
        if name in request.binary_outputs:
            blob = array.astype(array.dtype.newbyteorder("<")).tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = array.reshape(-1).tolist()
        tensors.append(tensor)
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if request.request_id is not None:
        response["id"] = request.request_id
    response["outputs"] = tensors
    header = json.dumps(response, separators=(",", ":")).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def model_metadata(model: ModelSpec, platform: str) -> dict[str, Any]:
    def describe(t: TensorSpec) -> dict[str, Any]:
        return {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}

    return {
        "name": model.name,
        "versions": [model.version],
        "platform": platform,
        "inputs": [describe(t) for t in model.inputs],
        "outputs": [describe(t) for t in model.outputs],
    }

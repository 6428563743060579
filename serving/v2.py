"""Open Inference Protocol V2 codec (KServe, Triton, MLServer), with Triton's binary tensor extension.

Requests are JSON, or JSON followed by raw tensor bytes when the header
`Inference-Header-Content-Length` gives the JSON part's length. Binary tensors
follow in the order of the inputs that declare `binary_data_size`; BYTES elements
are each prefixed by their length as 4 little-endian bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.artifact import ModelSpec, TensorSpec
from serving.errors import BadRequest
from serving.json_tensors import parse_v2
from serving.jsonio import dumps, json_floats
from serving.tensors import (
    NUMPY_TYPES,
    Inputs,
    check_shape,
    finite,
    from_json,
    output_strings,
    rows_of,
    same_rows,
)

BINARY_HEADER = "inference-header-content-length"
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class InferRequest:
    """A decoded infer call: the inputs, the id to echo, which outputs and how to send them."""

    inputs: Inputs
    request_id: str | None
    outputs: tuple[str, ...]
    binary_outputs: frozenset[str]

    @property
    def rows(self) -> int:
        return rows_of(self.inputs)


def decimal(text: str) -> int | None:
    """A length header's value: ASCII digits only (str.isdigit() accepts superscripts and other
    scripts' digits, which int() refuses or reads), at most 18 of them; else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def split_binary(body: bytes, header_length: str | None, max_items: int | None = None) -> tuple[Any, bytes]:
    """The JSON part and the binary tail (empty without the extension header)."""
    if header_length is None:
        return parse_v2(body, max_items=max_items), b""
    size = decimal(header_length)
    if size is None or size > len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length!r} is not a length within the body")
    return parse_v2(body[:size], "inference header", max_items), body[size:]


def _split_strings(blob: bytes, count: int, where: str) -> np.ndarray:
    """Triton's serialized BYTES: `count` elements, each a 4-byte little-endian length and its bytes."""
    items, offset = [], 0
    for _ in range(count):
        if offset + 4 > len(blob):
            raise BadRequest(f"{where}: binary BYTES data ends before element {len(items)}'s length")
        (size,) = _LENGTH.unpack_from(blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise BadRequest(f"{where}: binary BYTES element {len(items)} overruns the data")
        items.append(blob[offset : offset + size])
        offset += size
    if offset != len(blob):
        extra = len(blob) - offset
        raise BadRequest(f"{where}: binary BYTES data holds {extra} bytes beyond {count} elements")
    array = np.empty(count, dtype=np.object_)
    array[:] = items
    return array


def _binary_tensor(blob: bytes, spec: TensorSpec, count: int, where: str) -> np.ndarray:
    if spec.datatype == "BYTES":
        return _split_strings(blob, count, where)
    dtype = np.dtype(NUMPY_TYPES[spec.datatype]).newbyteorder("<")
    if len(blob) != count * dtype.itemsize:
        raise BadRequest(
            f"{where}: binary_data_size {len(blob)} does not hold {count} {spec.datatype} values"
        )
    if spec.datatype == "BOOL" and blob.translate(None, b"\x00\x01"):
        raise BadRequest(f"{where}: BOOL bytes must be 0 or 1")
    return finite(np.frombuffer(blob, dtype=dtype).astype(dtype.newbyteorder("=")), where)


def _check_header(raw: Any, model: ModelSpec, where: str) -> tuple[TensorSpec, list[int]]:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object with name, shape, datatype and data")
    missing = [k for k in ("name", "shape", "datatype") if k not in raw]
    if missing:
        raise BadRequest(f"{where}: missing {missing}")
    specs = model.inputs_by_name
    if not isinstance(raw["name"], str) or raw["name"] not in specs:
        raise BadRequest(f"{where}: unknown input {raw['name']!r}; the model's inputs are {list(specs)}")
    spec = specs[raw["name"]]
    if raw["datatype"] != spec.datatype:
        sent = raw["datatype"]
        raise BadRequest(
            f"{where} {spec.name!r}: datatype {sent!r} does not match the model's {spec.datatype!r}"
        )
    shape = raw["shape"]
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    if len(shape) != len(spec.shape):
        raise BadRequest(
            f"{where}: shape has {len(shape)} dimensions; {spec.name!r} has "
            f"{len(spec.shape)} {list(spec.shape)}"
        )
    return spec, shape


def _binary_size(raw: dict[str, Any], where: str) -> int | None:
    parameters = raw.get("parameters")
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}: 'parameters' must be an object")
    size = parameters.get("binary_data_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise BadRequest(f"{where}: binary_data_size must be a non-negative integer, got {size!r}")
    return size


def _decode_input(
    raw: Any, model: ModelSpec, tail: bytes, offset: int, where: str
) -> tuple[str, np.ndarray, int]:
    """One input's name, array, and where the next binary tensor starts."""
    spec, shape = _check_header(raw, model, where)
    where = f"{where} {spec.name!r}"
    count = math.prod(shape)  # exact: numpy's product wraps past int64 (2**32 * 2**32 * 4 is 0)
    size = _binary_size(raw, where)
    if size is not None:
        if offset + size > len(tail):
            raise BadRequest(f"{where}: binary_data_size {size} overruns the {len(tail)} bytes sent")
        flat, offset = _binary_tensor(tail[offset : offset + size], spec, count, where), offset + size
    elif "data" in raw:
        flat = from_json(raw["data"], spec, where).reshape(-1)
    else:
        raise BadRequest(f"{where}: missing 'data' (or binary_data_size for binary data)")
    if count != flat.size:
        raise BadRequest(f"{where}: shape {shape} needs {count} values, got {flat.size}")
    return spec.name, check_shape(flat.reshape(shape), spec, where), offset


def _decode_inputs(raw_inputs: Any, model: ModelSpec, tail: bytes) -> Inputs:
    names = [t.name for t in model.inputs]
    if not isinstance(raw_inputs, list) or len(raw_inputs) != len(names):
        raise BadRequest(f"'inputs' must be a list of {len(names)} tensor(s): {names}")
    inputs, offset = {}, 0
    for i, raw in enumerate(raw_inputs):
        name, array, offset = _decode_input(raw, model, tail, offset, f"inputs[{i}]")
        if name in inputs:
            raise BadRequest(f"inputs[{i}]: input {name!r} is sent twice")
        inputs[name] = array
    if offset != len(tail):
        raise BadRequest(f"the binary data holds {len(tail) - offset} bytes no input claims")
    return same_rows(inputs)


def _flag(parameters: Any, key: str, default: bool, where: str) -> bool:
    if parameters is None:
        return default
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}: 'parameters' must be an object")
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{where}: {key} must be true or false")
    return value


def _requested_outputs(payload: dict[str, Any], model: ModelSpec) -> tuple[tuple[str, ...], frozenset[str]]:
    known = [o.name for o in model.outputs]
    everything_binary = _flag(payload.get("parameters"), "binary_data_output", False, "request")
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
        if _flag(output.get("parameters"), "binary_data", everything_binary, f"output {output['name']!r}"):
            binary.add(output["name"])
    return tuple(names), frozenset(binary)


def decode_infer(
    body: bytes, header_length: str | None, model: ModelSpec, max_items: int | None = None
) -> InferRequest:
    payload, tail = split_binary(body, header_length, max_items)
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object with 'inputs'")
    inputs = _decode_inputs(payload.get("inputs"), model, tail)
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    names, binary = _requested_outputs(payload, model)
    return InferRequest(inputs, request_id, names, binary)


def _blob(array: np.ndarray) -> bytes:
    if array.dtype == np.object_:
        return b"".join(_LENGTH.pack(len(item)) + bytes(item) for item in array.reshape(-1))
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _json_data(array: np.ndarray) -> np.ndarray | list[Any]:
    """BYTES as text, the form JSON clients read; bytes that are not UTF-8 have no JSON form but base64."""
    if array.dtype != np.object_:
        return json_floats(array.reshape(-1))
    return output_strings(array.reshape(-1), base64_all=False)


def encode_infer(
    model: ModelSpec, request: InferRequest, outputs: dict[str, np.ndarray]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON part's length when binary outputs follow it."""
    datatypes = {o.name: o.datatype for o in model.outputs}
    tensors, blobs = [], []
    for name in request.outputs:
        array = outputs[name]
        tensor: dict[str, Any] = {"name": name, "datatype": datatypes[name], "shape": list(array.shape)}
        if name in request.binary_outputs:
            blob = _blob(array)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = _json_data(array)
        tensors.append(tensor)
    response: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if request.request_id is not None:
        response["id"] = request.request_id
    response["outputs"] = tensors
    header = dumps(response)
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

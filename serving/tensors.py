"""Turns decoded request values into validated arrays of each input's dtype; every refusal names the problem.

One set of rules for both protocols: integers must be integers within the dtype's
range, floats must be finite in the dtype, booleans are JSON booleans, and BYTES
are strings or `{"b64": …}` objects. Nothing is wrapped, truncated or coerced silently.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from serving.artifact import TensorSpec
from serving.contract import DATATYPES
from serving.errors import BadRequest
from serving.json_tensors import NumericData

NUMPY_TYPES: dict[str, type] = {d.v2: np.dtype(d.numpy).type for d in DATATYPES}  # BYTES: np.object_
Inputs = dict[str, np.ndarray]


def _describe_kind(array: np.ndarray) -> str:
    kinds = {"b": "booleans", "U": "strings", "f": "non-integer numbers", "O": "mixed or out-of-range values"}
    return kinds.get(array.dtype.kind, f"dtype {array.dtype}")


def _nested(value: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except OverflowError:
        raise BadRequest(f"{where}: integers out of range for any dtype") from None
    except (ValueError, TypeError, RecursionError):
        raise BadRequest(f"{where}: ragged or mixed nested lists; every row needs the same length") from None


def finite(array: np.ndarray, where: str) -> np.ndarray:
    """Floats (sent as JSON or raw bytes) must be finite once in the input's dtype."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BadRequest(f"{where}: values must be finite {array.dtype.name} numbers")
    return array


def _floats(raw: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    if raw.dtype.kind not in "iuf":
        raise BadRequest(f"{where}: expected numbers for {spec.datatype}, got {_describe_kind(raw)}")
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.ascontiguousarray(raw, dtype=NUMPY_TYPES[spec.datatype])
    if not np.isfinite(array).all():  # JSON has no NaN or Infinity: a number too large for the dtype
        largest = np.finfo(array.dtype).max
        raise BadRequest(
            f"{where}: values must be finite {array.dtype.name} numbers: out-of-range for {spec.datatype}, "
            f"whose largest is ±{largest:g}"
        )
    return array


def _integers(value: Any, raw: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """numpy turns ints beyond int64 (or a mix of signs past it) into floats or objects: such values are
    taken again as exact Python ints, and anything else is refused."""
    limits = np.iinfo(NUMPY_TYPES[spec.datatype])
    if not raw.size:  # no values (numpy types an empty list float64): the shape check names it
        return np.empty(raw.shape, dtype=NUMPY_TYPES[spec.datatype])
    if raw.dtype.kind in "fO":
        exact = np.asarray(value, dtype=object)
        others = [item for item in exact.flat if type(item) is not int]
        if others and all(_beyond_64_bits(item) for item in others):
            raise _out_of_range(spec, limits, where)
        if others:
            raise BadRequest(f"{where}: expected integers for {spec.datatype}, got {_describe_kind(raw)}")
        raw = exact
    elif raw.dtype.kind not in "iu":
        raise BadRequest(f"{where}: expected integers for {spec.datatype}, got {_describe_kind(raw)}")
    if raw.size and (int(raw.min()) < limits.min or int(raw.max()) > limits.max):
        raise _out_of_range(spec, limits, where)
    return np.ascontiguousarray(raw, dtype=NUMPY_TYPES[spec.datatype])


def _out_of_range(spec: TensorSpec, limits: np.iinfo, where: str) -> BadRequest:
    return BadRequest(f"{where}: values must be within {spec.datatype}'s range [{limits.min}, {limits.max}]")


def _beyond_64_bits(item: Any) -> bool:
    """An integer past uint64 or below int64, as the JSON parser hands it over (a whole float)."""
    return type(item) is float and item.is_integer() and not -(2**63) < item < 2**64


def _booleans(raw: np.ndarray, where: str) -> np.ndarray:
    if raw.dtype.kind != "b":
        raise BadRequest(f"{where}: expected true or false for BOOL, got {_describe_kind(raw)}")
    return np.ascontiguousarray(raw)


def one_string(value: Any, where: str) -> bytes:
    """A BYTES element: text as UTF-8, or binary as TF Serving's `{"b64": …}`."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{where}: 'b64' holds invalid base64") from None
    got = type(value).__name__
    raise BadRequest(f"{where}: expected strings or {{'b64': ...}} objects for BYTES, got {got}")


def _strings(value: Any, where: str) -> np.ndarray:
    """Nested lists of strings to an object array of bytes, with the nesting checked like numbers'."""

    def convert(item: Any) -> Any:
        return [convert(v) for v in item] if isinstance(item, list) else one_string(item, where)

    try:
        converted = convert(value)
    except RecursionError:
        raise BadRequest(f"{where}: nested too deeply") from None
    shape = _nested(_shape_probe(converted), where).shape
    array = np.empty(shape, dtype=np.object_)
    array[...] = converted
    return array


def _shape_probe(value: Any) -> Any:
    """The same nesting with every leaf replaced by 0, so numpy finds the shape without touching bytes."""
    return [_shape_probe(v) for v in value] if isinstance(value, list) else 0


# How simdjson reads each dtype's V2 data without Python numbers (BOOL and BYTES: as values).
_BUFFER_KINDS = {"FP16": "d", "FP32": "d", "FP64": "d", "INT8": "i", "INT16": "i", "INT32": "i", "INT64": "i",
                 "UINT8": "u", "UINT16": "u", "UINT32": "u", "UINT64": "u"}  # fmt: skip


def numeric_tensor(data: NumericData, spec: TensorSpec, where: str) -> np.ndarray | None:
    """The array simdjson holds, in the input's dtype and checked (finite, in range), when its values are
    all numbers of the dtype's kind in a regular block; None to read them as values instead."""
    kind = _BUFFER_KINDS.get(spec.datatype)
    numbers = data.numbers(kind) if kind else None
    if numbers is None:
        return None
    return _floats(numbers, spec, where) if kind == "d" else _integers(None, numbers, spec, where)


def from_json(value: Any, spec: TensorSpec, where: str) -> np.ndarray:
    """Any nesting of JSON values to an array of the input's dtype (shape is checked separately);
    an array simdjson holds is read straight into one when its values allow."""
    if isinstance(value, NumericData):
        array = numeric_tensor(value, spec, where)
        if array is not None:
            return array
        value = value.values()
    if spec.datatype == "BYTES":
        return _strings(value, where)
    raw = _nested(value, where)
    if spec.datatype == "BOOL":
        return _booleans(raw, where)
    if raw.dtype.kind in "iuf" and _holds_booleans(value):  # numpy reads true as 1: JSON does not
        wanted = "numbers" if spec.datatype.startswith("FP") else "integers"
        raise BadRequest(f"{where}: expected {wanted} for {spec.datatype}, got true or false among them")
    if spec.datatype.startswith("FP"):
        return _floats(raw, spec, where)
    return _integers(value, raw, spec, where)


def _holds_booleans(value: Any) -> bool:
    if type(value) is not list:
        return type(value) is bool
    # Exact types, and a call only for a nested list: every value of a request passes here.
    return any(type(item) is bool or (type(item) is list and _holds_booleans(item)) for item in value)


def check_shape(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """`[rows >= 1, *the input's shape]`, where a -1 in the model's shape takes any length."""
    expected = spec.shape[1:]
    fits = array.ndim == len(spec.shape) and (
        array.shape[1:] == expected
        or all(want in (-1, got) for want, got in zip(expected, array.shape[1:], strict=True))
    )
    if not fits:
        wanted = ["rows", *expected]
        raise BadRequest(f"{where}: shape {list(array.shape)} does not match {spec.name!r} {wanted}")
    if array.shape[0] == 0:
        raise BadRequest(f"{where}: empty batch; send at least one row")
    return array


def tensor_from_json(value: Any, spec: TensorSpec, where: str) -> np.ndarray:
    return check_shape(from_json(value, spec, where), spec, where)


def same_rows(inputs: Inputs) -> Inputs:
    """Every input of one request describes the same examples, so their batch sizes must agree."""
    rows = {name: array.shape[0] for name, array in inputs.items()}
    if len(set(rows.values())) > 1:
        raise BadRequest(f"inputs differ in rows {rows}; every input needs one entry per example")
    return inputs


def rows_of(inputs: Inputs) -> int:
    return next(iter(inputs.values())).shape[0]


def output_strings(array: np.ndarray, base64_all: bool) -> list[Any]:
    """BYTES outputs for JSON: text when it is UTF-8 (and not asked as base64), else `{"b64": …}`."""

    def encode(item: bytes) -> Any:
        if not base64_all:
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(item).decode()}

    def walk(item: Any) -> Any:
        return [walk(v) for v in item] if isinstance(item, list) else encode(bytes(item))

    return walk(array.tolist())


def json_items_budget(inputs: tuple[TensorSpec, ...], max_rows: int) -> int | None:
    """The most JSON items a request for these inputs can need at `max_rows` rows, in either
    protocol's form (values, the arrays nesting them, a row's object, `{"b64": …}`), with room for
    the envelope; None when an input has a dimension of any length (nothing to bound it by)."""
    per_row = 0
    for spec in inputs:
        if any(d < 0 for d in spec.shape[1:]):
            return None
        values = math.prod(spec.shape[1:])
        per_row += values * (3 if spec.datatype == "BYTES" else 1) + values + 4
    return max_rows * per_row + 256

"""Turns decoded JSON values into validated float batches; every refusal names the problem."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from serving.artifact import TensorSpec
from serving.errors import BadRequest

NUMERIC_KINDS = "iuf"


def _reject_constant(name: str) -> float:
    raise BadRequest(f"{name} is not allowed in JSON; send finite numbers")


def parse_json(body: bytes, what: str = "request body") -> Any:
    """Strict JSON: no NaN/Infinity literals, bounded nesting, UTF-8 only."""
    if not body:
        raise BadRequest(f"{what} is empty; expected a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    except ValueError:  # Python's guard against quadratic int parsing (CVE-2020-10735)
        limit = sys.get_int_max_str_digits()
        raise BadRequest(f"{what} holds an integer longer than {limit} digits") from None


def _as_array(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RecursionError):
        raise BadRequest(f"{where}: ragged or mixed nested lists; every row needs the same length") from None
    if array.dtype.kind not in NUMERIC_KINDS:
        raise BadRequest(f"{where}: expected numbers, got {_describe_kind(array)}")
    return array


def _describe_kind(array: np.ndarray) -> str:
    return {"b": "booleans", "U": "strings", "O": "mixed or out-of-range values"}.get(
        array.dtype.kind, f"dtype {array.dtype}"
    )


def to_float32(array: np.ndarray, where: str) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        batch = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(batch).all():
        raise BadRequest(f"{where}: values must be finite float32 numbers")
    return batch


def check_shape(batch: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """The batch must be [rows >= 1, *the model's feature shape]."""
    expected = list(spec.shape[1:])
    if batch.ndim != len(spec.shape) or list(batch.shape[1:]) != expected:
        wanted = ["rows", *expected]
        raise BadRequest(f"{where}: shape {list(batch.shape)} does not match {spec.name!r} {wanted}")
    if batch.shape[0] == 0:
        raise BadRequest(f"{where}: empty batch; send at least one row")
    return batch


def numbers(value: Any, where: str) -> np.ndarray:
    """Any nesting of JSON numbers to a finite float32 array."""
    return to_float32(_as_array(value, where), where)


def batch_from_json(value: Any, spec: TensorSpec, where: str) -> np.ndarray:
    """Nested JSON lists to a float32 batch of the spec's shape."""
    return check_shape(numbers(value, where), spec, where)

"""Tensors in JSON read straight into arrays: simdjson (SIMD, in C) parses a request, and each numeric
array of it becomes one float64, int64 or uint64 buffer with no Python number made on the way.

A 3 MB image's values take ~4 ms so, where building them as Python floats and lists takes ~30 ms
(TF Serving's nested form is ~50,000 lists). The rest of the body is read as plain values, and so is
a whole body under 4 KiB (Iris's), where simdjson's setup costs more than the values (3x on Iris).

- V2's `data` arrays are flat: the `[` in the whole body are counted against the envelope's, since
  simdjson's buffer would flatten `[[5.1], 3.5, …]` without a word.
- TF Serving's `instances` and `inputs` arrays nest: each is checked to be a regular block (every row
  the same length, at every depth) by its skeleton, the brackets and commas left when its numbers are
  taken out, which must be exactly the skeleton of the block its first row at each depth describes.

Data that is not all such numbers (booleans, strings, a float for an integer input), an irregular
nesting, and any body this reading does not cover (a key given twice, which simdjson reads as its
first value and JSON parsers as its last; text simdjson refuses; a body of another shape) go the
plain way (`serving.jsonio`), so every tensor and every refusal is the same either way.
"""

from __future__ import annotations

import math
import re
import typing
from typing import Any

import numpy as np
import simdjson

from serving.jsonio import SMALL_BODY_BYTES, admit, count_byte_up_to, parse_admitted

_KINDS = {"d": np.float64, "i": np.int64, "u": np.uint64}
_SKELETON = b'[],"\\'
_NOT_SKELETON = bytes(c for c in range(256) if c not in _SKELETON)
_STRING_SKELETON = re.compile(rb'"[^"]*"')
PREDICT_FIELDS = frozenset({"instances", "inputs", "signature_name"})


class Skeletons:
    """Where each numeric array of one body sits in its skeleton. Computed at the first array asked for
    (one pass over the body), for every array in the body's order: each one's skeleton must start where
    the last one's ended, after a `[`-free stretch of envelope (keys, strings, commas)."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._arrays: list[simdjson.Array] = []  # not the NumericData: no cycle to outlive the request
        self._regular: int | None = None

    def add(self, array: simdjson.Array) -> NumericData:
        self._arrays.append(array)
        return NumericData(array, (self, len(self._arrays) - 1))

    def regular(self, index: int) -> bool:
        """Whether the `index`th array added is a regular block of its `dims`."""
        if self._regular is None:
            self._regular = self._match()
        return index < self._regular

    def _match(self) -> int:
        """How many arrays, from the first, are regular blocks where they are expected."""
        skeleton = self._body.translate(None, _NOT_SKELETON)
        if b"\\" in skeleton:  # an escape in a string: where strings end is not a plain `"` (rare)
            return 0
        skeleton = _STRING_SKELETON.sub(b"", skeleton)
        at = 0
        for index, array in enumerate(self._arrays):
            expected = block_skeleton(dims_of(array))
            at = skeleton.find(b"[", at)
            if at < 0 or not skeleton.startswith(expected, at):
                return index  # irregular: this array, and any after it, read as values
            at += len(expected)
        return len(self._arrays)


def block_skeleton(dims: tuple[int, ...]) -> bytes:
    """The brackets and commas of a regular block of these dims, numbers left out: (2, 3) → `[[,,],[,,]]`."""
    *outer, last = dims
    block = b"[" + b"," * (last - 1) + b"]" if last else b"[]"
    for size in reversed(outer):
        block = b"[" + b",".join([block] * size) + b"]"
    return block


def dims_of(array: simdjson.Array) -> tuple[int, ...]:
    """The lengths along the first element at each depth: the block's shape, if it is regular."""
    dims, node = [], array
    while isinstance(node, simdjson.Array):
        dims.append(len(node))
        node = node[0] if len(node) else None
    return tuple(dims)


class NumericData:
    """A JSON array as simdjson holds it, until the input's dtype says how to read it."""

    def __init__(self, array: simdjson.Array, place: tuple[Skeletons, int] | None = None) -> None:
        self._array = array
        self._place = place  # None: V2 data, known to be flat

    def numbers(self, kind: str) -> np.ndarray | None:
        """The values as one float64 ('d'), int64 ('i') or uint64 ('u') array in the JSON's shape; None
        unless every value is such a number (in range), in a regular block."""
        try:
            buffer = self._array.as_buffer(of_type=kind)
        except (TypeError, ValueError, RuntimeError):
            return None
        flat = np.frombuffer(buffer, dtype=_KINDS[kind])
        if self._place is None:
            return flat if flat.size == len(self._array) else None
        dims = dims_of(self._array)
        skeletons, index = self._place
        if flat.size != math.prod(dims) or not skeletons.regular(index):
            return None
        return flat.reshape(dims)

    def values(self) -> list[Any]:
        """The values as JSON gives them, nesting kept, for the checks of any other data."""
        return self._array.as_list()


_IDLE_PARSERS: list[simdjson.Parser] = []
MAX_IDLE_PARSERS = 2


def _parse(body: bytes) -> Any:
    """simdjson's parse on a parser kept from an earlier request, so its buffers (~3x the body) are
    reused instead of allocated and faulted in afresh. A parser whose last document is still referenced
    refuses (RuntimeError): a new one parses instead, and so does a body simdjson refuses on either."""
    try:
        parser = _IDLE_PARSERS.pop()  # atomic under the GIL: inference threads share the pool
    except IndexError:
        parser = simdjson.Parser()
    try:
        return parser.parse(body)
    except RuntimeError:
        parser = simdjson.Parser()
        return parser.parse(body)
    finally:
        if len(_IDLE_PARSERS) < MAX_IDLE_PARSERS:
            _IDLE_PARSERS.append(parser)


def _document(body: bytes) -> simdjson.Object | None:
    """The body as a simdjson object with no key given twice; None for anything else, a refusal, or a
    body under `SMALL_BODY_BYTES` (read plainly: faster there)."""
    if len(body) < SMALL_BODY_BYTES:
        return None
    try:
        document = _parse(body)
    except (ValueError, RuntimeError):  # simdjson's refusals (a big integer is a RuntimeError)
        return None
    return document if isinstance(document, simdjson.Object) and _keys(document) is not None else None


def parse_v2(body: bytes, what: str = "request body", max_items: int | None = None) -> Any:
    """A V2 request's JSON, as `parse_json` reads it, but each input's `data` left as NumericData."""
    admit(body, what, max_items)
    document = _document(body)
    inputs = document.get("inputs") if document is not None else None
    items = list(inputs) if isinstance(inputs, simdjson.Array) else None
    if items is None or any(isinstance(i, simdjson.Object) and _keys(i) is None for i in items):
        return parse_admitted(body, what)
    payload = {key: _plain(document[key]) for key in document.keys() if key != "inputs"}  # type: ignore[union-attr]  # noqa: SIM118
    payload["inputs"] = [_input(item) for item in items]
    brackets = _brackets(payload)
    if brackets is None or count_byte_up_to(body, b"[", brackets + 1) != brackets:  # data holds arrays
        payload["inputs"] = [_as_values(item) for item in payload["inputs"]]
    return payload


def parse_predict(body: bytes, what: str = "request body", max_items: int | None = None) -> Any:
    """A TF Serving predict request's JSON, as `parse_json` reads it, but `instances`, `inputs` and each
    array of an `inputs` object left as NumericData. Only bodies whose every array is one of those are
    read so (an array anywhere else would stand between them in the skeleton)."""
    admit(body, what, max_items)
    document = _document(body)
    if document is None or not set(document.keys()) <= PREDICT_FIELDS:
        return parse_admitted(body, what)
    skeletons, payload = Skeletons(body), {}
    for key in document.keys():  # noqa: SIM118 - a simdjson Object, not a dict
        value = document[key]
        if isinstance(value, simdjson.Array) and key != "signature_name":
            payload[key] = skeletons.add(value)
        elif isinstance(value, simdjson.Object) and key == "inputs" and _keys(value) is not None:
            fields = {name: value[name] for name in value.keys()}  # noqa: SIM118
            if any(isinstance(v, simdjson.Object) for v in fields.values()):
                return parse_admitted(body, what)
            payload[key] = {
                name: skeletons.add(v) if isinstance(v, simdjson.Array) else v for name, v in fields.items()
            }
        elif isinstance(value, simdjson.Array | simdjson.Object):
            return parse_admitted(body, what)
        else:
            payload[key] = value
    return payload


def _brackets(value: Any) -> int | None:
    """The `[` the payload's text holds if every data array is flat: one per list and per data array;
    None when a string holds one (the count could not tell it from a nested array)."""
    if isinstance(value, NumericData | list):
        inner = [] if isinstance(value, NumericData) else [_brackets(v) for v in value]
        return None if None in inner else 1 + sum(typing.cast(list[int], inner))
    if isinstance(value, dict):
        inner = [_brackets(part) for pair in value.items() for part in pair]
        return None if None in inner else sum(typing.cast(list[int], inner))
    if isinstance(value, str):
        return None if "[" in value else 0
    return 0


def _as_values(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("data"), NumericData):
        return {**item, "data": item["data"].values()}
    return item


def _keys(node: simdjson.Object) -> list[str] | None:
    """The object's keys in order; None when one is given twice."""
    keys = list(node.keys())
    return keys if len(keys) == len(set(keys)) else None


def _plain(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _input(item: Any) -> Any:
    """One input's object with its `data` as NumericData; anything else as plain values."""
    if not isinstance(item, simdjson.Object):
        return _plain(item)
    fields = {}
    for key in item.keys():  # noqa: SIM118 - a simdjson Object, not a dict
        value = item[key]
        fields[key] = (
            NumericData(value) if key == "data" and isinstance(value, simdjson.Array) else _plain(value)
        )
    return fields

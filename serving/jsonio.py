"""Strict JSON in and out at the model's speed: orjson parses bodies and writes every answer, the standard
library's strict parser is the fallback that names what is wrong. (Tensors read straight into arrays:
`serving.json_tensors`.)

orjson (RFC 8259, in C) reads several times faster than `json`, and writes numpy arrays without lists.
What it refuses — NaN or Infinity, a number that overflows a double, an integer of more than 4300
digits, bad UTF-8, nesting past 1024 — goes through `json.loads` as before, so every refusal keeps its
message; the few texts only `json` accepts (a lone surrogate in a string) are still accepted. The one
thing orjson reads differently is an integer beyond 64 bits, which it reads as a float:
`serving.tensors` refuses those for integer inputs as out of range, as it refused the exact integer.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from serving.errors import BadRequest, PayloadTooLarge

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
SMALL_BODY_BYTES = 4096  # a body this small parses in microseconds, into a few hundred objects at most
_NOTHING = contextlib.nullcontext()


class _CollectorPause:
    """The cyclic garbage collector held off while a request is decoded, in any number of threads.

    A 3 MB image request in TF Serving's nested form is ~50,000 lists; building them triggers the
    collector's passes over every object the process holds (TensorFlow's are many), which took longer
    than the parse itself. Decoded JSON has no cycles (its lists are freed by reference counting),
    so nothing is lost by collecting after. The last thread out turns the collector back on, only
    if it was on when the first came in. A body under `SMALL_BODY_BYTES` builds too few objects to
    matter, and is decoded without the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._was_enabled = False

    def __call__(self, body_bytes: int) -> contextlib.AbstractContextManager[None]:
        return self._paused() if body_bytes >= SMALL_BODY_BYTES else _NOTHING

    @contextlib.contextmanager
    def _paused(self) -> Iterator[None]:
        with self._lock:
            if self._inside == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0 and self._was_enabled:
                    gc.enable()


collector_paused = _CollectorPause()


def _reject_constant(name: str) -> float:
    raise BadRequest(f"{name} is not allowed in JSON; send finite numbers")


def json_items(body: bytes) -> int:
    """How many arrays, objects and values the JSON text holds, counted without parsing it: a parse
    costs ~60 bytes of Python objects per item (`[[],[],…]` grows a worker ~40x its size). Two
    byte counts bound it from above; only a body over a budget is counted exactly (strings removed,
    since brackets and commas inside them are not structure)."""
    return body.count(b"[") + body.count(b"{") + body.count(b",") + 1


def count_byte_up_to(data: bytes, byte: bytes, limit: int) -> int:
    """How often one byte occurs, counting no further than `limit`: each `find` is a memchr, ~5x
    numpy's vectorised compare on megabytes where the byte is rare (the `[` of a flat V2 body)."""
    count = at = 0
    while count < limit:
        at = data.find(byte, at) + 1
        if not at:
            break
        count += 1
    return count


def exact_json_items(body: bytes) -> int:
    structure = _STRING.sub(b'""', body)
    return structure.count(b"[") + structure.count(b"{") + structure.count(b",") + 1


def admit(body: bytes, what: str, max_items: int | None) -> None:
    """A body to parse: not empty, and (with `max_items`) with no more arrays, objects and values than
    the model can take, refused before any is built."""
    if not body:
        raise BadRequest(f"{what} is empty; expected a JSON object")
    if (
        max_items is not None
        and len(body) >= max_items  # json_items is at most len + 1: no count needed below that
        and json_items(body) > max_items
        and (items := exact_json_items(body)) > max_items
    ):
        raise PayloadTooLarge(
            f"{what} holds {items} JSON arrays, objects and values; the model takes at most {max_items} "
            "in one request (TWINSERVE_MAX_BATCH_ROWS rows of its inputs)"
        )


def parse_json(body: bytes, what: str = "request body", max_items: int | None = None) -> Any:
    """Strict JSON: no NaN/Infinity literals, bounded nesting, UTF-8 only, and a bounded item count."""
    admit(body, what, max_items)
    return parse_admitted(body, what)


def parse_admitted(body: bytes, what: str) -> Any:
    """orjson's parse, or the strict one's refusal or value for what orjson refuses."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _strict_parse(body, what)


def _strict_parse(body: bytes, what: str) -> Any:
    """The standard library's parse, for what orjson refused: the refusal named, or the value."""
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


def _fallback(value: Any) -> Any:
    """What orjson does not write itself: arrays it cannot take as they are (not C-contiguous, or of a
    dtype it lacks), as lists."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(payload: Any) -> bytes:
    """Compact JSON, numpy arrays written directly. A NaN or an infinity is written as null (JSON has
    neither); float16 and float32 arrays should come in as float64 (`json_floats`), so each number is
    written as the exact value the model computed, as `json` wrote it."""
    return orjson.dumps(payload, default=_fallback, option=_NUMPY)


def json_floats(array: np.ndarray) -> np.ndarray:
    """An output array ready for `dumps`: narrower floats widened to float64, so 0.1 in float32 is
    written as 0.10000000149011612 (the value the model holds) and reads back to it in any client."""
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        return array.astype(np.float64)
    return np.ascontiguousarray(array)


def v2_data(array: np.ndarray) -> Any:
    """Flat, as V2 sends it: numbers as numbers, BYTES as text (base64 object when not UTF-8)."""
    flat = array.reshape(-1)
    if flat.dtype != np.object_:
        return json_floats(flat)
    values = []
    for item in flat.tolist():
        raw = bytes(item)
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            values.append({"b64": base64.b64encode(raw).decode()})
    return values

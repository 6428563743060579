"""The `.tflite` twin of a serving signature, kept only when LiteRT runs it and agrees with TensorFlow.

A model LiteRT cannot serve (string tensors, ops it lacks, different answers) gets no
`.tflite` and a reason in metadata.json: it is served by TensorFlow, and on Lambda by image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from model.signature import NUMPY_TYPES, SIGNATURE

RTOL, ATOL = 1e-3, 1e-5
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Conversion:
    """The `.tflite` bytes, or None and why not."""

    content: bytes | None
    reason: str = ""

    def record(self) -> dict[str, Any]:
        return {"available": self.content is not None, **({"reason": self.reason} if self.reason else {})}


def generated_inputs(inputs: list[dict], rows: int = 4, seed: int = 0) -> Arrays:
    """Random inputs of every input's dtype and shape (a free dimension taken as 3); small integers, as ids
    index embeddings; full-range bytes for UINT8, as pixels are; words for strings."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for tensor in inputs:
        shape = (rows, *(3 if d == -1 else d for d in tensor["shape"][1:]))
        dtype = NUMPY_TYPES[tensor["datatype"]]
        if tensor["datatype"].startswith("FP"):
            arrays[tensor["name"]] = rng.normal(size=shape).astype(dtype)
        elif tensor["datatype"] == "BOOL":
            arrays[tensor["name"]] = rng.integers(0, 2, size=shape).astype(bool)
        elif tensor["datatype"] == "BYTES":
            words = np.array(["an", "example", "of", "text"], dtype=object)
            arrays[tensor["name"]] = words[rng.integers(0, len(words), size=shape)]
        else:
            high = 256 if tensor["datatype"] == "UINT8" else 2
            arrays[tensor["name"]] = rng.integers(0, high, size=shape).astype(dtype)
    return arrays


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    wanted = [line for line in lines if "op" in line.lower() and "not supported" in line.lower()]
    return (wanted or lines or [type(error).__name__])[0][:300]


def _litert_answers(content: bytes, inputs: Arrays) -> Arrays:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner()
    return {name: np.asarray(value) for name, value in runner(**inputs).items()}


def _disagreement(expected: Arrays, actual: Arrays) -> str:
    missing = sorted(set(expected) - set(actual))
    if missing:
        return f"LiteRT's model has no outputs {missing}"
    for name, want in expected.items():
        got = actual[name]
        if want.shape != got.shape:
            return f"output {name!r}: LiteRT gives shape {list(got.shape)}, TensorFlow {list(want.shape)}"
        close = (
            np.allclose(got, want, rtol=RTOL, atol=ATOL)
            if want.dtype.kind == "f"
            else np.array_equal(got, want)
        )
        if not close:
            return (
                f"output {name!r}: LiteRT's answers differ from TensorFlow's beyond rtol {RTOL}, atol {ATOL}"
            )
    return ""


def convert(loaded: Any, inputs: list[dict], samples: Arrays) -> Conversion:
    """Convert the written SavedModel's signature (`loaded` from its directory), then compare LiteRT with
    TensorFlow on the samples.

    From the loaded signature and not `from_saved_model` or the live Keras function: those two keep
    resource-variable reads that LiteRT answers with NaN; this keeps the signature's names too.
    """
    strings = [t["name"] for t in inputs if t["datatype"] == "BYTES"]
    if strings:
        return Conversion(None, f"string input {strings[0]!r}: LiteRT has no string tensors")
    signature = loaded.signatures[SIGNATURE]
    try:
        content = tf.lite.TFLiteConverter.from_concrete_functions([signature], loaded).convert()
    except Exception as error:  # the converter raises several types, all meaning "cannot convert"
        return Conversion(None, f"conversion failed: {_first_line(error)}")
    try:
        actual = _litert_answers(content, samples)
    except Exception as error:  # e.g. an op LiteRT's runtime lacks
        return Conversion(None, f"LiteRT cannot run it: {_first_line(error)}")
    expected = signature(**{name: tf.constant(array) for name, array in samples.items()})
    reason = _disagreement({k: np.asarray(v) for k, v in expected.items()}, actual)
    return Conversion(None, reason) if reason else Conversion(content)

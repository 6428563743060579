"""The fast JSON paths decide exactly as the plain parse does: any V2 body, decoded with simdjson's
arrays and with orjson's values alone, gives the same tensors or the same refusal; and the garbage
collector held off while requests decode comes back on, however many threads decoded at once."""

from __future__ import annotations

import gc
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving import jsonio, v2
from serving.artifact import ModelSpec
from serving.contract import Example, TensorSpec
from serving.errors import BadRequest


def model(*inputs: TensorSpec) -> ModelSpec:
    """A model's signature, as the routes see it (no artifact behind it: decoding needs none)."""
    outputs = (TensorSpec("y", "FP32", (-1, 1)),)
    return ModelSpec("m", "1", Path("."), inputs, outputs, (), "serving_default", Example((), ()))


SPEC = model(
    TensorSpec("f", "FP32", (-1, 2)), TensorSpec("i", "INT16", (-1, 2)), TensorSpec("u", "UINT64", (-1, 2))
)
SCALARS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.sampled_from(["x", "[", None]),
)
DATA = st.lists(st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), max_size=5)


def decoded(body: bytes) -> object:
    try:
        request = v2.decode_infer(body, None, SPEC)
    except BadRequest as error:
        return ("refused", str(error))
    return {name: (array.dtype.str, array.tolist()) for name, array in request.inputs.items()}


@settings(max_examples=400, deadline=None)
@given(f=DATA, i=DATA, u=DATA, request_id=st.sampled_from(["a", "[b", None]))
def test_simdjson_arrays_decide_as_the_plain_parse(f: list, i: list, u: list, request_id: str | None) -> None:
    tensors = (("f", "FP32", f), ("i", "INT16", i), ("u", "UINT64", u))
    payload: dict = {
        "inputs": [
            {"name": n, "shape": [len(d) // 2 or 1, 2], "datatype": t, "data": d} for n, t, d in tensors
        ]
    }
    if request_id is not None:
        payload["id"] = request_id
    body = json.dumps(payload).encode()
    fast = decoded(body)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(v2, "parse_v2", jsonio.parse_json)
        plain = decoded(body)
    assert fast == plain


def test_an_image_s_worth_of_numbers_is_read_exactly() -> None:
    values = np.random.default_rng(7).random(224 * 224 * 3).astype(np.float32)
    spec = model(TensorSpec("x", "FP32", (-1, 224, 224, 3)))
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 224, 224, 3], "datatype": "FP32",
                                   "data": values.tolist()}]}).encode()  # fmt: skip
    array = v2.decode_infer(body, None, spec).inputs["x"]
    assert array.dtype == np.float32
    assert np.array_equal(array.reshape(-1), values)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_comes_back_as_it_was_after_concurrent_decodes(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        start = threading.Barrier(8)

        def decode() -> None:
            start.wait()
            for _ in range(200):
                with jsonio.collector_paused():
                    assert not gc.isenabled()

        threads = [threading.Thread(target=decode) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()

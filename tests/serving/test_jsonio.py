"""The fast JSON paths decide exactly as the plain parse does: any V2 or TF Serving body, decoded with
simdjson's arrays and with orjson's values alone, gives the same tensors or the same refusal; and the
garbage collector held off while requests decode comes back on, however many threads decoded at once."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving import json_tensors, jsonio, tfserving, v2
from serving.artifact import ModelSpec
from serving.contract import Example, TensorSpec
from serving.errors import BadRequest


@pytest.fixture(autouse=True, scope="module")
def simdjson_for_every_body() -> Iterator[None]:
    """Small bodies are read plainly in service; here every body takes simdjson's path, to compare."""
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(json_tensors, "SMALL_BODY_BYTES", 0)
        yield


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


PREDICT_SPEC = model(TensorSpec("f", "FP32", (-1, 2, 2)), TensorSpec("i", "INT8", (-1, 2)))
ONE_INPUT = model(TensorSpec("f", "FP64", (-1, 2, 2)))
NESTED = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=12)
PAIRS = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=2, max_size=2)
BLOCKS = st.lists(st.lists(PAIRS, min_size=2, max_size=2), max_size=3)  # regular [rows, 2, 2] blocks


def predicted(body: bytes, spec: ModelSpec) -> object:
    try:
        inputs, rows = tfserving.decode_predict(json_tensors.parse_predict(body), spec)
    except BadRequest as error:
        return ("refused", str(error))
    return rows, {name: (array.dtype.str, array.tolist()) for name, array in inputs.items()}


def plainly_predicted(body: bytes, spec: ModelSpec) -> object:
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(json_tensors, "parse_predict", jsonio.parse_json)
        return predicted(body, spec)


@settings(max_examples=400, deadline=None)
@given(
    f=st.one_of(BLOCKS, NESTED),
    i=st.one_of(NESTED, st.lists(st.lists(st.integers(-200, 200), min_size=2, max_size=2), max_size=3)),
    form=st.sampled_from(["instances", "inputs", "inputs-bare", "named-rows"]),
    signature=st.sampled_from([None, "serving_default", "a[b", 'q\\"[']),
)
def test_simdjson_blocks_decide_as_the_plain_parse(
    f: object, i: object, form: str, signature: str | None
) -> None:
    spec = ONE_INPUT if form in ("instances", "inputs-bare") else PREDICT_SPEC
    if form == "instances":
        payload: dict = {"instances": f}
    elif form == "inputs-bare":
        payload = {"inputs": f}
    elif form == "inputs":
        payload = {"inputs": {"i": i, "f": f}}
    else:
        payload = {"instances": [{"f": f, "i": i}]}
    if signature is not None:
        payload["signature_name"] = signature
    body = json.dumps(payload).encode()
    assert predicted(body, spec) == plainly_predicted(body, spec)


@pytest.mark.parametrize(
    "instances",
    [
        "[[1], []]", "[[], [1]]", "[[1], [2, 3]]", "[[1, 2], [3, 4, 5], [6]]", "[[[1, 2]], [[3], [4]]]",
        "[[1, 2], 3]", "[3, [1, 2]]", "[[1, [2]], [3, 4]]", "[[[]], [[1]]]",
    ],
)  # fmt: skip
def test_irregular_blocks_are_refused_as_the_plain_parse_refuses_them(instances: str) -> None:
    spec = model(TensorSpec("x", "FP32", (-1, -1)))
    body = b'{"signature_name": "serving_default", "instances": ' + instances.encode() + b"}"
    refused = predicted(body, spec)
    assert refused == plainly_predicted(body, spec)
    assert refused[0] == "refused"  # type: ignore[index]


def test_an_image_s_worth_of_numbers_is_read_exactly_in_either_format() -> None:
    values = np.random.default_rng(7).random((2, 224, 224, 3)).astype(np.float32)
    spec = model(TensorSpec("x", "FP32", (-1, 224, 224, 3)))
    for payload in ({"instances": values.tolist()}, {"inputs": {"x": values.tolist()}}):
        inputs, _ = tfserving.decode_predict(json_tensors.parse_predict(json.dumps(payload).encode()), spec)
        assert inputs["x"].dtype == np.float32
        assert np.array_equal(inputs["x"], values)


def test_a_parser_still_referenced_is_not_reused() -> None:
    first = json_tensors.parse_predict(b'{"instances": [[1.5, 2.5]]}')
    second = json_tensors.parse_predict(b'{"instances": [[3.5, 4.5]]}')
    assert first["instances"].numbers("d").tolist() == [[1.5, 2.5]]
    assert second["instances"].numbers("d").tolist() == [[3.5, 4.5]]


def test_threads_sharing_the_parsers_each_read_their_own_body() -> None:
    start, wrong = threading.Barrier(8), []

    def decode(worker: int) -> None:
        start.wait()
        for n in range(50):
            rows = [[float(worker), float(n)]] * 300  # ~4 KiB and more: simdjson's path
            payload = json_tensors.parse_predict(json.dumps({"instances": rows}).encode())
            got = payload["instances"].numbers("d")
            if got is None or got.tolist() != rows:
                wrong.append((worker, n))

    threads = [threading.Thread(target=decode, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


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
                with jsonio.collector_paused(jsonio.SMALL_BODY_BYTES):
                    assert not gc.isenabled()

        threads = [threading.Thread(target=decode) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert gc.isenabled() is enabled
        with jsonio.collector_paused(jsonio.SMALL_BODY_BYTES - 1):
            assert gc.isenabled() is enabled  # a small body is decoded without pausing it
    finally:
        (gc.enable if was else gc.disable)()


@pytest.mark.parametrize(
    ("data", "limit", "expected"),
    [(b"", 3, 0), (b"[1]", 3, 1), (b"[[", 3, 2), (b"[[[[[[", 3, 3), (b"a[b[c", 0, 0), (b"[" * 10_000, 5, 5)],
)
def test_a_byte_is_counted_up_to_the_limit(data: bytes, limit: int, expected: int) -> None:
    assert jsonio.count_byte_up_to(data, b"[", limit) == expected

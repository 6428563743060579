"""Models teams bring, imported by `make model SOURCE=…` and served by `python -m serving`: an image CNN
(uint8), a text model (a string in, a string out) and a model of two inputs and two outputs. Every
protocol and client answers what Keras (or the SavedModel's own signature) answers on the same inputs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import EXAMPLE_SOURCES
from tests.serving.conftest import REPO, Server, load_event, start_server, stop_server
from tests.serving.events import TEMPLATE

# LiteRT's and Keras' float kernels differ in the last bits.
RTOL, ATOL = 1e-4, 1e-5
# The Lambda side: the zip runs LiteRT; a model without a .tflite runs the image, on TensorFlow.
SERVED = [("digits", "litert"), ("digits", "tensorflow"), ("shop", "litert"), ("shop", "tensorflow"),
          ("reviews", "tensorflow")]  # fmt: skip
LAMBDA_RUNTIME = {"digits": "litert", "shop": "litert", "reviews": "tensorflow"}


def inputs_of(example_files: Path, name: str, rows: int = 3) -> dict[str, np.ndarray]:
    with np.load(example_files / f"{name}-eval.npz") as data:
        arrays = {k: data[k][:rows] for k in data.files if k != "labels"}
    return {k: v.astype(object) if v.dtype.kind == "S" else v for k, v in arrays.items()}


def reference(example_files: Path, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keras `predict` on the file the team brought; a SavedModel's own serving signature."""
    import keras
    import tensorflow as tf

    source = example_files / EXAMPLE_SOURCES[name]
    if source.is_dir():
        signature = tf.saved_model.load(str(source)).signatures["serving_default"]
        return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    model = keras.models.load_model(source, compile=False)
    arrays = [inputs[t.name.split(":")[0]] for t in model.inputs]
    predictions = model.predict(arrays if len(arrays) > 1 else arrays[0], verbose=0)
    predictions = predictions if isinstance(predictions, list) else [predictions]
    return dict(zip(model.output_names, (np.asarray(p) for p in predictions), strict=True))


def assert_same(actual: dict[str, object], expected: dict[str, np.ndarray]) -> None:
    assert set(actual) == set(expected)
    for name, want in expected.items():
        got = np.asarray(actual[name])
        if want.dtype == object:
            assert [bytes(x) if isinstance(x, bytes) else str(x).encode() for x in got.reshape(-1)] == list(
                want.reshape(-1)
            ), name
        else:
            np.testing.assert_allclose(got.reshape(want.shape), want, rtol=RTOL, atol=ATOL, err_msg=name)


def json_values(array: np.ndarray) -> list:
    if array.dtype == object:
        return [x.decode() for x in array.reshape(-1)] if array.ndim == 1 else [json_values(r) for r in array]
    return array.tolist()


def as_array(output: dict) -> np.ndarray:
    dtype = object if output["datatype"] == "BYTES" else None
    return np.asarray(output["data"], dtype=dtype).reshape(output["shape"])


def from_tf_serving(value: object, name: str) -> object:
    """`_bytes` outputs come back as `{"b64": …}`, as TF Serving sends them."""
    if name.endswith("_bytes"):
        return [base64.b64decode(v["b64"]) for v in value]  # type: ignore[union-attr]
    return value


@pytest.fixture(scope="module", params=SERVED, ids=lambda p: f"{p[0]}-{p[1]}")
def served(request: pytest.FixtureRequest, examples_root: Path) -> Iterator[tuple[str, Server]]:
    name, runtime = request.param
    server = start_server(
        examples_root, TWINSERVE_MODEL_NAME=name, TWINSERVE_RUNTIME=runtime, TWINSERVE_DRAIN_SECONDS="0"
    )
    yield name, server
    stop_server(server)


def test_tf_serving_row_and_columnar_formats_answer_like_keras(
    served: tuple[str, Server], example_files: Path
) -> None:
    name, server = served
    inputs = inputs_of(example_files, name)
    expected = reference(example_files, name, inputs)
    columns = {k: json_values(v) for k, v in inputs.items()}
    single = len(columns) == 1
    rows = [
        next(iter(columns.values()))[i] if single else {k: v[i] for k, v in columns.items()} for i in range(3)
    ]
    with server.client() as client:
        by_row = client.post(f"/v1/models/{name}:predict", json={"instances": rows})
        by_column = client.post(f"/v1/models/{name}:predict", json={"inputs": columns})
    assert by_row.status_code == by_column.status_code == 200, by_row.text + by_column.text
    predictions, outputs = by_row.json()["predictions"], by_column.json()["outputs"]
    if len(expected) == 1:
        (output,) = expected
        predictions, outputs = {output: predictions}, {output: outputs}
    else:
        predictions = {k: [p[k] for p in predictions] for k in expected}
    assert_same({k: from_tf_serving(v, k) for k, v in predictions.items()}, expected)
    assert_same({k: from_tf_serving(v, k) for k, v in outputs.items()}, expected)


def test_v2_json_answers_like_keras(served: tuple[str, Server], example_files: Path) -> None:
    name, server = served
    inputs = inputs_of(example_files, name)
    expected = reference(example_files, name, inputs)
    with server.client() as client:
        metadata = {t["name"]: t for t in client.get(f"/v2/models/{name}").json()["inputs"]}
    payload = {
        "inputs": [
            {"name": k, "shape": list(v.shape), "datatype": metadata[k]["datatype"], "data": json_values(v)}
            for k, v in reversed(inputs.items())  # any order
        ]
    }
    with server.client() as client:
        response = client.post(f"/v2/models/{name}/infer", json=payload)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: as_array(o) for o in response.json()["outputs"]}
    assert_same(outputs, expected)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_answers_like_keras(
    served: tuple[str, Server], example_files: Path, binary: bool
) -> None:
    name, server = served
    inputs = inputs_of(example_files, name)
    expected = reference(example_files, name, inputs)
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        metadata = client.get_model_metadata(name)
        datatypes = {t["name"]: t["datatype"] for t in metadata["inputs"]}
        requests = []
        for input_name, array in inputs.items():
            tensor = triton.InferInput(input_name, list(array.shape), datatypes[input_name])
            tensor.set_data_from_numpy(array, binary_data=binary)
            requests.append(tensor)
        outputs = [triton.InferRequestedOutput(o["name"], binary_data=binary) for o in metadata["outputs"]]
        result = client.infer(name, requests, outputs=outputs)
        assert_same({o["name"]: result.as_numpy(o["name"]) for o in metadata["outputs"]}, expected)
    finally:
        client.close()


def test_both_metadata_endpoints_describe_the_whole_signature(
    served: tuple[str, Server], examples_root: Path
) -> None:
    name, server = served
    recorded = json.loads((examples_root / name / "1" / "metadata.json").read_text())
    with server.client() as client:
        v2 = client.get(f"/v2/models/{name}").json()
        tf_serving = client.get(f"/v1/models/{name}/metadata").json()
    assert v2["inputs"] == recorded["inputs"]
    assert v2["outputs"] == recorded["outputs"]
    signature = tf_serving["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sorted(signature["inputs"]) == sorted(t["name"] for t in recorded["inputs"])
    assert sorted(signature["outputs"]) == sorted(t["name"] for t in recorded["outputs"])
    assert "DT_INVALID" not in json.dumps(signature)


BAD_INPUTS = {
    "digits": [
        ({"instances": [[[[256]] * 8] * 8]}, "within UINT8's range [0, 255]"),
        ({"instances": [[[[1.5]] * 8] * 8]}, "expected integers for UINT8"),
        ({"instances": [[[[1]] * 8] * 7]}, "does not match 'pixels'"),
        ({"instances": [[[[-1]] * 8] * 8]}, "within UINT8's range"),
    ],
    "shop": [
        ({"instances": [{"features": [1, 2, 3, 4]}]}, "missing ['category']"),
        (
            {"instances": [{"features": [1, 2, 3, 4], "category": [2.5]}]},
            "'category': expected integers for INT64",
        ),
        (
            {"inputs": {"features": [["a", 2, 3, 4]], "category": [[1]]}},
            "'features': expected numbers for FP32",
        ),
        ({"inputs": {"features": [[1, 2, 3, 4]], "category": [[1], [2]]}}, "inputs differ in rows"),
        ({"inputs": {"features": [[1, 2, 3, 4]], "category": [[2**64]]}}, "'category'"),
    ],
    "reviews": [
        ({"instances": [5]}, "expected strings or {'b64': ...} objects for BYTES"),
        ({"instances": [{"b64": "not base64!"}]}, "'b64' holds invalid base64"),
        ({"instances": [["a", "b"]]}, "does not match 'text'"),
    ],
}


def test_bad_inputs_of_every_dtype_get_a_400_naming_the_problem(served: tuple[str, Server]) -> None:
    name, server = served
    with server.client() as client:
        for payload, fragment in BAD_INPUTS[name]:
            response = client.post(f"/v1/models/{name}:predict", json=payload)
            assert response.status_code == 400, (payload, response.text)
            assert fragment in response.json()["error"], (payload, response.text)
        assert client.get("/v2/health/ready").status_code == 200


# Lambda's init phase and invocations, in a fresh interpreter as the runtime starts one.
INVOKE = """
import json, sys
from serving.lambda_handler import handler
print(json.dumps([handler(event, None) for event in json.load(sys.stdin)]))
"""


def invoke_lambda(root: Path, name: str, runtime: str, events: list[dict]) -> list[dict]:
    env = {**os.environ, "TWINSERVE_MODEL_ROOT": str(root), "TWINSERVE_MODEL_NAME": name,
           "TWINSERVE_RUNTIME": runtime, "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", INVOKE], input=json.dumps(events), cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", sorted(EXAMPLE_SOURCES))
def test_the_lambda_handler_answers_real_events_with_the_server_s_bytes(
    name: str, examples_root: Path, example_files: Path
) -> None:
    runtime = LAMBDA_RUNTIME[name]
    inputs = inputs_of(example_files, name)
    columnar = json.dumps({"inputs": {k: json_values(v) for k, v in inputs.items()}}).encode()
    recorded = json.loads((examples_root / name / "1" / "metadata.json").read_text())
    datatypes = {t["name"]: t["datatype"] for t in recorded["inputs"]}
    v2 = json.dumps({"inputs": [{"name": k, "shape": list(v.shape), "datatype": datatypes[k],
                                 "data": json_values(v)} for k, v in inputs.items()]}).encode()  # fmt: skip
    http_api = dict(
        TEMPLATE, rawPath=f"/v1/models/{name}:predict", body=columnar.decode(), isBase64Encoded=False
    )
    function_url = dict(load_event("function_url_infer"), rawPath=f"/v2/models/{name}/infer",
                        body=base64.b64encode(v2).decode(), isBase64Encoded=True)  # fmt: skip
    server = start_server(examples_root, TWINSERVE_MODEL_NAME=name, TWINSERVE_RUNTIME=runtime,
                          TWINSERVE_DRAIN_SECONDS="0")  # fmt: skip
    try:
        results = invoke_lambda(examples_root, name, runtime, [http_api, function_url])
        with server.client() as client:
            for result, path, body in (
                (results[0], http_api["rawPath"], columnar),
                (results[1], function_url["rawPath"], v2),
            ):
                expected = client.post(path, content=body, headers={"content-type": "application/json"})
                assert result["statusCode"] == expected.status_code == 200, result["body"]
                assert result["body"].encode() == expected.content
    finally:
        stop_server(server)

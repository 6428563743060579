"""Every dtype of both protocols through a real server: a SavedModel that echoes one input of each dtype,
imported with `python -m model --source`. Values come back exactly; out-of-range values are refused."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from serving.contract import DATATYPES
from tests.serving.conftest import REPO, Server, import_signature, start_server, stop_server

DTYPES = {d.v2: np.dtype(d.numpy).type for d in DATATYPES}


def sample(datatype: str, text_only: bool = False) -> np.ndarray:
    """Two rows of three, reaching each dtype's extremes (JSON carries only UTF-8 strings)."""
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if datatype == "BYTES":
        odd = b"plain" if text_only else b"\xff\x00binary"
        return np.array([[b"text", odd, b""], [b"caf\xc3\xa9", b"x", b"y"]], dtype=object)
    dtype = DTYPES[datatype]
    info = np.finfo(dtype) if datatype.startswith("FP") else np.iinfo(dtype)
    return np.array([[info.min, 0, info.max], [1, 2, 3]], dtype=dtype)


@pytest.fixture(scope="module")
def echo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that returns each of the 13 dtypes' input as it came, imported by the CLI."""
    import tensorflow as tf

    source = tmp_path_factory.mktemp("echo") / "echo"
    specs = [tf.TensorSpec([None, 3], tf.as_dtype(d if d is not np.object_ else tf.string), name=name.lower())
             for name, d in DTYPES.items()]  # fmt: skip

    @tf.function(input_signature=specs)
    def serve(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        return {f"{spec.name}_out": tf.identity(t) for spec, t in zip(specs, tensors, strict=True)}

    root, said = import_signature(serve, source)
    assert "TensorFlow only" in said
    return root


@pytest.fixture(scope="module")
def echo_server(echo_root: Path) -> Iterator[Server]:
    server = start_server(echo_root, TWINSERVE_RUNTIME="tensorflow", TWINSERVE_DRAIN_SECONDS="0")
    yield server
    stop_server(server)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_every_dtype_round_trips_through_tritonclient(echo_server: Server, binary: bool) -> None:
    client = triton.InferenceServerClient(echo_server.url.removeprefix("http://"))
    try:
        inputs = []
        for datatype in DTYPES:
            tensor = triton.InferInput(datatype.lower(), [2, 3], datatype)
            tensor.set_data_from_numpy(sample(datatype, text_only=not binary), binary_data=binary)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput(f"{d.lower()}_out", binary_data=True) for d in DTYPES]
        result = client.infer("echo", inputs, outputs=outputs)
        for datatype in DTYPES:
            echoed = result.as_numpy(f"{datatype.lower()}_out")
            np.testing.assert_array_equal(echoed, sample(datatype, text_only=not binary), err_msg=datatype)
            assert result.get_output(f"{datatype.lower()}_out")["datatype"] == datatype
    finally:
        client.close()


def test_tf_serving_sends_binary_strings_as_b64_and_echoes_text(echo_server: Server) -> None:
    strings = sample("BYTES")
    columns = {d.lower(): sample(d).tolist() for d in DTYPES if d != "BYTES"}
    columns["bytes"] = [[{"b64": base64.b64encode(s).decode()} for s in row] for row in strings]
    with echo_server.client() as client:
        response = client.post("/v1/models/echo:predict", json={"inputs": columns})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    # Text that is UTF-8 comes back as text; bytes that are not have only the b64 form.
    assert outputs["bytes_out"] == [["text", {"b64": "/wBiaW5hcnk="}, ""], ["café", "x", "y"]]
    for datatype in DTYPES:
        if datatype != "BYTES":
            np.testing.assert_array_equal(np.array(outputs[f"{datatype.lower()}_out"]), sample(datatype))


OUT_OF_RANGE = [
    ("uint8", 256, "within UINT8's range [0, 255]"),
    ("uint8", -1, "within UINT8's range"),
    ("uint16", 65536, "within UINT16's range"),
    ("uint32", 2**32, "within UINT32's range"),
    ("uint64", -1, "within UINT64's range"),
    ("int8", 128, "within INT8's range [-128, 127]"),
    ("int16", -32769, "within INT16's range"),
    ("int32", 2**31, "within INT32's range"),
    ("int64", 2**63, "within INT64's range"),
    # Integers past 64 bits, which the JSON parser reads as floats: still refused as out of range.
    ("uint64", 2**64, "within UINT64's range"),
    ("int64", -(2**63) - 1, "within INT64's range"),
    ("int16", 10**30, "within INT16's range"),
    ("fp32", 10**39, "out-of-range for FP32"),
    ("fp64", 10**400, "out-of-range"),
    ("int32", 1.5, "expected integers for INT32"),
    ("int64", True, "expected integers for INT64, got booleans"),
    ("fp16", 70000.0, "finite float16"),
    ("fp32", 1e39, "finite float32"),
    ("fp64", "1.0", "expected numbers for FP64, got strings"),
    ("bool", 1, "expected true or false for BOOL"),
    ("bytes", 1, "expected strings"),
]


@pytest.mark.parametrize(("name", "value", "fragment"), OUT_OF_RANGE, ids=lambda v: str(v)[:12])
def test_a_value_outside_its_dtype_is_refused_naming_the_input(
    echo_server: Server, name: str, value: object, fragment: str
) -> None:
    good = {d.lower(): sample(d)[:1].reshape(-1).tolist() for d in DTYPES if d != "BYTES"} | {
        "bytes": ["a"] * 3
    }
    data = {**good, name: [value] * 3}
    payload = [{"name": d.lower(), "shape": [1, 3], "datatype": d, "data": data[d.lower()]} for d in DTYPES]
    with echo_server.client() as client:
        response = client.post("/v2/models/echo/infer", json={"inputs": payload})
    assert response.status_code == 400, response.text
    assert f"{name!r}" in response.json()["error"]
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    ("name", "data"), [("int32", [7, True, 9]), ("uint8", [1, 2, False]), ("fp16", [0.5, True, 1])]
)
def test_true_or_false_among_numbers_is_refused_not_read_as_1_or_0(
    echo_server: Server, name: str, data: list[object]
) -> None:
    payload = [{"name": d.lower(), "shape": [1, 3], "datatype": d, "data": sample(d)[:1].reshape(-1).tolist()}
               for d in DTYPES if d != "BYTES"] + [{"name": "bytes", "shape": [1, 3], "datatype": "BYTES",
                                                    "data": ["a"] * 3}]  # fmt: skip
    next(t for t in payload if t["name"] == name)["data"] = data
    with echo_server.client() as client:
        response = client.post("/v2/models/echo/infer", json={"inputs": payload})
    assert response.status_code == 400, response.text
    assert f"{name!r}" in response.json()["error"]
    assert "true or false among them" in response.json()["error"]


def test_a_bool_tensor_s_raw_bytes_must_be_0_or_1(echo_server: Server) -> None:
    client = triton.InferenceServerClient(echo_server.url.removeprefix("http://"))
    try:
        inputs = []
        for datatype in DTYPES:
            tensor = triton.InferInput(datatype.lower(), [2, 3], datatype)
            data = sample(datatype)
            tensor.set_data_from_numpy(
                (data.view(np.uint8) * 2).view(np.bool_) if datatype == "BOOL" else data, binary_data=True
            )
            inputs.append(tensor)
        with pytest.raises(triton.InferenceServerException, match="'bool': BOOL bytes must be 0 or 1"):
            client.infer("echo", inputs)
    finally:
        client.close()


def test_metadata_names_every_dtype(echo_server: Server, tmp_path: Path) -> None:
    with echo_server.client() as client:
        v2 = client.get("/v2/models/echo").json()
        tf_serving = client.get("/v1/models/echo/metadata").json()
    assert {t["name"]: t["datatype"] for t in v2["inputs"]} == {d.lower(): d for d in DTYPES}
    signature = tf_serving["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["fp16"]["dtype"] == "DT_HALF"
    assert signature["inputs"]["bytes"]["dtype"] == "DT_STRING"
    assert signature["outputs"]["uint64_out"]["dtype"] == "DT_UINT64"


def test_the_smoke_test_passes_on_every_dtype_with_the_models_own_example(
    echo_root: Path, echo_server: Server, tmp_path: Path
) -> None:
    """The artifact's example holds a valid value of every dtype (words for BYTES, true/false for BOOL)."""
    metadata = echo_root / "echo" / "1" / "metadata.json"
    example = json.loads(metadata.read_text())["example"]
    assert {t["datatype"] for t in example["inputs"]} == set(DTYPES)
    (booleans,) = [t["data"] for t in example["inputs"] if t["datatype"] == "BOOL"]
    (strings,) = [t["data"] for t in example["inputs"] if t["datatype"] == "BYTES"]
    assert {type(v) for v in booleans} == {bool}
    assert {type(v) for v in strings} == {str}
    stack = {"modelName": "echo", "runtimes": ["kubernetes"], "kubernetesEndpoint": echo_server.url}
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack | {"kubernetesNamespace": "x"}))
    smoke = [str(REPO / "infra" / ".venv" / "bin" / "python"), str(REPO / "infra" / "delivery" / "smoke.py")]
    # The test's server stands in for the port-forward to the model's Service.
    given = ["--kubernetes-url", echo_server.url]
    result = subprocess.run([*smoke, str(outputs), "--metadata", str(metadata), *given],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr

"""Standard clients, unchanged: Triton's HTTP client (binary and JSON) and TF Serving REST as documented."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import tritonclient.http as triton

from tests.serving.conftest import Server

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


@pytest.fixture
def triton_client(server: Server):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def test_triton_health_and_metadata(triton_client) -> None:
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready("iris")
    assert triton_client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    assert triton_client.get_model_metadata("iris")["inputs"][0]["name"] == "features"


@pytest.mark.parametrize("binary_inputs", [True, False])
@pytest.mark.parametrize("binary_outputs", [True, False, None])
def test_triton_infer(triton_client, binary_inputs: bool, binary_outputs: bool | None) -> None:
    features = triton.InferInput("features", list(ROWS.shape), "FP32")
    features.set_data_from_numpy(ROWS, binary_data=binary_inputs)
    outputs = (
        None
        if binary_outputs is None
        else [triton.InferRequestedOutput("probabilities", binary_data=binary_outputs)]
    )
    result = triton_client.infer("iris", [features], outputs=outputs, request_id="abc")
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 3)
    assert probabilities.argmax(axis=1).tolist() == [0, 2]
    assert result.get_response()["id"] == "abc"


def test_triton_unknown_model_raises_a_named_error(triton_client) -> None:
    with pytest.raises(triton.InferenceServerException, match="model 'nope' not found"):
        triton_client.get_model_metadata("nope")


def test_tf_serving_documented_curl_request(server: Server) -> None:
    """The request of TF Serving's REST guide, sent with curl as the guide shows it."""
    payload = json.dumps({"signature_name": "serving_default", "instances": ROWS.tolist()})
    output = subprocess.run(
        ["curl", "-s", "-d", payload, "-X", "POST", f"{server.url}/v1/models/iris:predict"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    predictions = np.array(json.loads(output)["predictions"])
    assert predictions.shape == (2, 3)
    assert predictions.argmax(axis=1).tolist() == [0, 2]

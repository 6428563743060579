"""A `-1` beyond the batch dimension (a sequence of any length) is checked per request, on both runtimes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.serving.conftest import Server, import_signature, start_server, stop_server


@pytest.fixture(scope="module")
def sequence_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SavedModel summing each row of int32 token counts of any length, imported once for both runtimes."""
    import tensorflow as tf

    source = tmp_path_factory.mktemp("sequence") / "sequence"
    spec = tf.TensorSpec([None, None], tf.int32, name="tokens")

    @tf.function(input_signature=[spec])
    def serve(tokens: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"total": tf.reduce_sum(tokens, axis=1), "largest": tf.reduce_max(tokens, axis=1)}

    root, said = import_signature(serve, source)
    assert "TensorFlow and LiteRT" in said
    return root


@pytest.fixture(scope="module", params=["litert", "tensorflow"])
def sequence_server(request: pytest.FixtureRequest, sequence_root: Path) -> Iterator[Server]:
    server = start_server(sequence_root, TWINSERVE_RUNTIME=request.param, TWINSERVE_DRAIN_SECONDS="0")
    yield server
    stop_server(server)


def test_rows_of_any_length_are_served(sequence_server: Server) -> None:
    with sequence_server.client() as client:
        for length in (1, 3, 7):
            rows = [list(range(length)), [2] * length]
            response = client.post("/v1/models/sequence:predict", json={"inputs": rows})
            assert response.status_code == 200, response.text
            assert response.json()["outputs"]["total"] == [sum(range(length)), 2 * length]


def test_concurrent_requests_of_different_lengths_each_get_their_own_answer(sequence_server: Server) -> None:
    def ask(length: int) -> int:
        with sequence_server.client() as client:
            response = client.post("/v1/models/sequence:predict", json={"instances": [[1] * length]})
            assert response.status_code == 200, response.text
            return response.json()["predictions"][0]["total"]

    lengths = [1 + i % 5 for i in range(40)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        assert list(pool.map(ask, lengths)) == lengths


def test_rows_of_different_lengths_in_one_request_are_refused(sequence_server: Server) -> None:
    with sequence_server.client() as client:
        response = client.post("/v1/models/sequence:predict", json={"instances": [[1, 2], [1, 2, 3]]})
    assert response.status_code == 400
    assert "ragged" in response.json()["error"]

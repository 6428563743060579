"""Real HTTP requests to a real server process, on each runtime: answers, errors, limits, metrics, logs."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from serving.contract import GOLDEN_FILE, GoldenSet, Metadata
from tests.serving.cases import BAD, GOOD, ROW, Case
from tests.serving.conftest import Server


def send(server: Server, case: Case):
    with server.client() as client:
        return client.request(case.method, case.path, content=case.body, headers=case.headers)


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.id)
def test_good_requests_succeed(server: Server, case: Case) -> None:
    response = send(server, case)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.id)
def test_bad_requests_get_a_named_json_error_and_the_server_keeps_serving(server: Server, case: Case) -> None:
    response = send(server, case)
    assert response.status_code == case.status
    payload = response.json()
    assert list(payload) == ["error"]
    assert case.error in payload["error"]
    assert "Traceback" not in response.text
    assert send(server, GOOD[0]).status_code == 200


def test_tf_serving_row_prediction(server: Server) -> None:
    response = send(
        server, Case("", "POST", "/v1/models/iris:predict", json.dumps({"instances": [ROW]}).encode())
    )
    (probabilities,) = response.json()["predictions"]
    assert len(probabilities) == 3
    assert np.argmax(probabilities) == 0  # a textbook setosa
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)


def test_tf_serving_status_and_metadata(server: Server) -> None:
    with server.client() as client:
        status = client.get("/v1/models/iris").json()
        metadata = client.get("/v1/models/iris/metadata").json()
    assert status == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert metadata["model_spec"] == {"name": "iris", "signature_name": "", "version": "1"}
    assert signature["inputs"]["features"]["dtype"] == "DT_FLOAT"
    assert signature["outputs"]["probabilities"]["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""},
        {"size": "3", "name": ""},
    ]


def test_v2_model_metadata_names_the_runtime(server: Server) -> None:
    with server.client() as client:
        metadata = client.get("/v2/models/iris").json()
        runtime = "litert" if metadata["platform"] == "tflite" else "tensorflow"
    assert metadata == {
        "name": "iris",
        "versions": ["1"],
        "platform": {"litert": "tflite", "tensorflow": "tensorflow_savedmodel"}[runtime],
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
    }


def test_405_names_the_allowed_method(server: Server) -> None:
    with server.client() as client:
        response = client.get("/v2/models/iris/infer")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_metrics_count_requests_by_model_route_and_status_on_their_own_port(server: Server) -> None:
    with server.client() as client:
        client.post("/v1/models/iris:predict", json={"instances": [ROW, ROW, ROW]})
        client.post("/v1/models/iris:predict", json={"instances": [[1, 2]]})
        assert client.get("/metrics").status_code == 404  # whatever exposes the model never exposes them
        text = client.get(server.metrics_url).text
    assert 'rest_server_requests_total{model="iris",route="tf_predict",status_code="200"}' in text
    assert 'rest_server_requests_total{model="iris",route="tf_predict",status_code="400"}' in text
    assert 'rest_server_request_duration_seconds_bucket{le="0.005",model="iris"' in text
    assert 'model_infer_batch_size_bucket{le="4.0",model="iris"}' in text


def _mix(server: Server) -> dict[tuple[str, str], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with server.client() as client:
        text = client.get(server.metrics_url).text
    return {
        (s.labels["class"], s.labels["label"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "model_predictions_total" and s.labels["model"] == "iris"
    }


def test_each_answered_row_counts_its_top_class_for_the_prediction_mix(
    server: Server, artifact: Path
) -> None:
    """What the canary analysis holds a new model's mix against: every row of a 200 answer, on both
    protocols, by column and label; a refused request counts nothing."""
    golden = GoldenSet.read(artifact / GOLDEN_FILE, Metadata.read(artifact))
    before, tops = _mix(server), []
    with server.client() as client:
        for request in golden.requests:
            answer = client.post("/v2/models/iris/infer", json=request.v2_request()).json()
            tops += np.argmax(np.reshape(answer["outputs"][0]["data"], (request.rows(), 3)), axis=1).tolist()
        rows = np.reshape(golden.requests[0].inputs[0].data, (-1, 4)).tolist()
        predicted = client.post("/v1/models/iris:predict", json={"instances": rows}).json()["predictions"]
        tops += np.argmax(predicted, axis=1).tolist()
        assert client.post("/v1/models/iris:predict", json={"instances": [[1, 2]]}).status_code == 400
    after = _mix(server)
    counted = {key: after[key] - before.get(key, 0.0) for key in after}
    names = ("setosa", "versicolor", "virginica")
    expected = {(str(c), names[c]): float(tops.count(c)) for c in set(tops)}
    assert {key: n for key, n in counted.items() if n} == expected
    assert sum(counted.values()) == golden.rows + 8


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _exchange(port: int, case: Case, *, through_cycle: bool = False) -> bytes:
    """One request on its own connection, sent whole; the answer without its date line. With
    `Expect: 100-continue` (`through_cycle`) the server takes it through uvicorn's cycle, not answering
    it where it is read, and the interim 100 it sends is left out."""
    expect = "expect: 100-continue\r\n" if through_cycle else ""
    head = f"{case.method} {case.path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(case.body)}\r\n{expect}"
    head += "".join(f"{name}: {value}\r\n" for name, value in case.headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + case.body)
        return _without_date(_read_answers(sock, 1)).removeprefix(CONTINUE if through_cycle else b"")


def _read_answers(sock: socket.socket, count: int) -> bytes:
    """`count` complete answers (100 Continue aside), by their content lengths."""
    answers, done, start = b"", 0, 0
    while done < count:
        while b"\r\n\r\n" not in answers[start:]:
            answers += sock.recv(65536)
        head_end = answers.index(b"\r\n\r\n", start) + 4
        if answers[start:head_end] == CONTINUE:
            start = head_end
            continue
        length = int(re.search(rb"content-length: (\d+)", answers[start:head_end]).group(1))  # type: ignore[union-attr]
        while len(answers) < head_end + length:
            answers += sock.recv(65536)
        start, done = head_end + length, done + 1
    return answers


def _without_date(answer: bytes) -> bytes:
    return re.sub(rb"date: [^\r]*\r\n", b"", answer)


@pytest.mark.parametrize("case", [c for c in GOOD + BAD if 0 < len(c.body) <= 1 << 20], ids=lambda c: c.id)
def test_a_request_answered_where_it_is_read_and_one_through_uvicorns_cycle_get_the_same_bytes(
    litert_server: Server, case: Case
) -> None:
    whole = _exchange(litert_server.port, case)
    assert whole.startswith(f"HTTP/1.1 {case.status} ".encode()), whole
    assert whole == _exchange(litert_server.port, case, through_cycle=True)


def test_pipelined_requests_are_answered_in_order_across_both_lanes(litert_server: Server) -> None:
    """Whole ones, one through uvicorn's cycle (100-continue) with the rest queued behind it, an error."""
    small = GOOD[0]
    wrong = next(c for c in BAD if c.body and c.status == 400)
    cases = [(small, ""), (small, "expect: 100-continue\r\n"), (wrong, ""), (small, "")]
    requests = b"".join(
        f"POST {c.path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{expect}"
        f"content-length: {len(c.body)}\r\n\r\n".encode()
        + c.body
        for c, expect in cases
    )
    with socket.create_connection(("127.0.0.1", litert_server.port), timeout=10) as sock:
        sock.sendall(requests)
        answers = _without_date(_read_answers(sock, len(cases))).replace(CONTINUE, b"")
    expected = [_exchange(litert_server.port, c) for c, _ in cases]
    assert answers == b"".join(expected)

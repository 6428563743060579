"""Payload capture: the HTTP server (a real process) and the Lambda handler (a clean interpreter, real
events) write the same record for the same request, refused ones too, and never at a client's cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from serving.contract import CAPTURE_SCHEMA
from tests.ports import free_ports
from tests.serving.cases import JSON, Case
from tests.serving.conftest import REPO, Server, start_server, stop_server
from tests.serving.events import event_for, lambda_body

V2 = "/v2/models/iris/infer"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
REQUESTS = [  # (request id, path, body): answered on both protocols, and refused
    ("same-v2", V2, {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4],
                                 "data": [v for row in ROWS for v in row]}]}),
    ("same-tf", "/v1/models/iris:predict", {"instances": ROWS}),
    ("same-bad", V2, {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3],
                                  "data": [1, 2, 3]}]}),
]  # fmt: skip
# Only the handler's module and its dependencies: the records on stdout, the answers in a file.
DRIVER = """
import json, sys
from serving.lambda_handler import handler
events = json.load(sys.stdin)
results = [handler(event, None) for event in events]
open(sys.argv[1], "w").write(json.dumps(results))
"""
CAPTURE_ALL = {"TWINSERVE_CAPTURE_SAMPLE_RATE": "1", "TWINSERVE_ACCESS_LOG": "false"}


def records(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("schema") == CAPTURE_SCHEMA]


def server_records(server: Server, count: int) -> list[dict]:
    """The records the server wrote, once `count` of them are there (the writer thread is behind the
    answers by design)."""
    with httpx.Client() as client:
        for _ in range(100):
            written = client.get(server.metrics_url).text
            if f'outcome="written"}} {float(count)}' in written:
                break
            time.sleep(0.05)
    return records(server.log.read_text())


def invoke_lambda(model_root: Path, events: list[dict], tmp_path: Path, **settings: str) -> tuple[list, str]:
    """The handler in a fresh interpreter with the function's environment: its answers and its stdout."""
    answers = tmp_path / "answers.json"
    env = {
        "PATH": os.environ["PATH"],
        "TWINSERVE_MODEL_ROOT": str(model_root),
        "TWINSERVE_RUNTIME": "litert",
        **settings,
    }
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(answers)], input=json.dumps(events), capture_output=True,
        text=True, timeout=120, env=env, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(answers.read_text()), result.stdout


@pytest.fixture(scope="module")
def capturing_server(model_root: Path) -> Iterator[Server]:
    running = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0", **CAPTURE_ALL)
    yield running
    stop_server(running)


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in {"time", "latency_ms", "runtime"}}


def test_the_same_request_gives_the_same_record_on_both_runtimes(
    capturing_server: Server, model_root: Path, tmp_path: Path
) -> None:
    cases = [
        Case(name, "POST", path, json.dumps(body).encode(), headers={**JSON, "x-request-id": name})
        for name, path, body in REQUESTS
    ]
    with capturing_server.client() as client:
        answers = [client.post(c.path, content=c.body, headers=c.headers) for c in cases]
    assert [a.status_code for a in answers] == [200, 200, 400]
    served = {r["request_id"]: r for r in server_records(capturing_server, len(cases))}
    events = [event_for(c, base64_body=False) for c in cases]
    results, stdout = invoke_lambda(model_root, events, tmp_path, **CAPTURE_ALL)
    assert [lambda_body(r) for r in results] == [a.content for a in answers]
    handled = {r["request_id"]: r for r in records(stdout)}
    assert sorted(served) == sorted(handled) == sorted(c.id for c in cases)
    for request_id in served:
        assert comparable(served[request_id]) == comparable(handled[request_id]), request_id
    assert {served["same-v2"]["runtime"], handled["same-v2"]["runtime"]} == {"kubernetes", "lambda"}

    answered = served["same-v2"]
    assert answered["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [2, 4],
                                   "data": pytest.approx([v for row in ROWS for v in row])}]  # fmt: skip
    (probabilities,) = answered["outputs"]
    assert probabilities["data"] == answers[0].json()["outputs"][0]["data"]
    assert served["same-tf"]["route"] == "tf_predict"
    assert served["same-tf"]["inputs"] == answered["inputs"]
    refused = served["same-bad"]
    assert (refused["status"], refused["error"]) == (400, answers[2].json()["error"])
    assert not {"inputs", "outputs"} & set(refused)
    assert (answered["model"], answered["model_version"], answered["track"]) == ("iris", "1", "stable")


def test_a_request_refused_before_the_route_table_is_captured_and_counted_under_its_route(
    capturing_server: Server,
) -> None:
    """Too large by its declared length: answered 413 before the body is read, still the model's route."""
    headers = {"x-request-id": "too-large", "content-length": str(7 * 2**20)}
    with capturing_server.client() as client:
        refused = client.post(V2, content=b"{" * (7 * 2**20), headers=headers)
        assert refused.status_code == 413
        metrics = client.get(capturing_server.metrics_url).text
    assert 'route="v2_infer",status_code="413"' in metrics
    (record,) = [r for r in records(capturing_server.log.read_text()) if r["request_id"] == "too-large"]
    assert (record["route"], record["status"]) == ("v2_infer", 413)
    assert "exceeds the limit" in record["error"]


def test_the_allow_list_keeps_only_the_tensors_it_names_and_the_cap_keeps_shapes_alone(
    model_root: Path, tmp_path: Path
) -> None:
    request_id, path, body = REQUESTS[0]
    case = Case(request_id, "POST", path, json.dumps(body).encode())
    event = event_for(case, base64_body=False)
    _, outputs_only = invoke_lambda(model_root, [event], tmp_path, **CAPTURE_ALL,
                                    TWINSERVE_CAPTURE_FIELDS="outputs.probabilities")  # fmt: skip
    (record,) = records(outputs_only)
    assert "inputs" not in record
    assert [o["name"] for o in record["outputs"]] == ["probabilities"]
    assert record["request_id"]  # the invocation's own id when the client sends none

    big = {"inputs": [{**body["inputs"][0], "shape": [64, 4], "data": [1.0] * 256}]}
    case = Case("big", "POST", path, json.dumps(big).encode())
    _, capped = invoke_lambda(model_root, [event_for(case, base64_body=False)], tmp_path, **CAPTURE_ALL,
                              TWINSERVE_CAPTURE_MAX_RECORD_BYTES="1024")  # fmt: skip
    (record,) = records(capped)
    assert record["truncated"] is True
    assert record["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [64, 4]}]
    assert record["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [64, 3]}]


def test_capture_at_every_request_under_load_loses_no_answer_and_no_line(model_root: Path) -> None:
    """Two workers writing records to one stdout while eight clients keep them busy: every client gets
    its answer, every record written is one whole line, and written plus dropped is every request."""
    server = start_server(
        model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_WORKERS="2", TWINSERVE_DRAIN_SECONDS="0",
        **CAPTURE_ALL,
    )  # fmt: skip
    statuses: list[int] = []
    body = json.dumps(REQUESTS[0][2]).encode()

    def client() -> None:
        with server.client() as http:
            statuses.extend(http.post(V2, content=body).status_code for _ in range(150))

    try:
        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        outcomes = _capture_counts(server, len(statuses))
    finally:
        stop_server(server)
    assert statuses == [200] * 1200
    lines = [line for line in server.log.read_text().splitlines() if CAPTURE_SCHEMA in line]
    assert len(records("\n".join(lines))) == len(lines) == outcomes.get("written", 0)
    assert outcomes.get("written", 0) + outcomes.get("dropped", 0) == 1200
    assert "failed" not in outcomes


def _capture_counts(server: Server, requests: int) -> dict[str, int]:
    """The summed capture counter once every request is accounted for (written or dropped)."""
    counts: dict[str, int] = {}
    with httpx.Client() as http:
        for _ in range(200):
            counts = {}
            for line in http.get(server.metrics_url).text.splitlines():
                if line.startswith("twinserve_capture_records_total{"):
                    outcome = line.split('outcome="')[1].split('"')[0]
                    counts[outcome] = int(float(line.rsplit(" ", 1)[1]))
            if sum(counts.values()) >= requests:
                break
            time.sleep(0.05)
    return counts


def test_an_allow_list_naming_a_tensor_the_model_lacks_stops_the_server_naming_it(model_root: Path) -> None:
    port, metrics_port = free_ports(2)
    env = {**os.environ, "TWINSERVE_MODEL_ROOT": str(model_root), "TWINSERVE_CAPTURE_SAMPLE_RATE": "0.5",
           "TWINSERVE_CAPTURE_FIELDS": "inputs.pixels", "PORT": str(port),
           "TWINSERVE_METRICS_PORT": str(metrics_port)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "serving"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "TWINSERVE_CAPTURE_FIELDS names 'inputs.pixels', but iris has inputs ['features']" in result.stderr


def test_requests_are_sampled_at_the_rate_and_only_inference_is(artifact: Path) -> None:
    from serving.artifact import read_spec
    from serving.capture import Policy, Recorder

    draws = iter([0.1, 0.3, 0.2, 0.9, 0.0])
    recorder = Recorder(
        Policy(0.25, frozenset({"inputs"}), 16384), read_spec(artifact), "lambda", "stable",
        emit=lambda line: None, chance=lambda: next(draws),
    )  # fmt: skip
    assert [recorder.sampled("v2_infer") for _ in range(2)] == [True, False]
    assert [recorder.sampled("tf_predict") for _ in range(2)] == [True, False]
    assert not recorder.sampled("v2_model")  # metadata and health are never recorded
    assert next(draws) == 0.0  # the health route drew nothing


def test_a_request_too_large_for_a_record_waits_in_the_queue_as_shapes_alone(artifact: Path) -> None:
    """100,000 rows cannot fit 16 KiB: what waits for the writer holds their shapes, not their memory."""
    import numpy as np

    from serving.artifact import read_spec
    from serving.capture import Exchange, Policy, Recorder

    policy = Policy(1.0, frozenset({"inputs", "outputs"}), 16384)
    recorder = Recorder(policy, read_spec(artifact), "kubernetes", "stable", emit=lambda line: None)
    rows = np.ones((100_000, 4), np.float32)
    exchange = Exchange("v2_infer", 200, "big", 0.01, 0.0, {"features": rows},
                        {"probabilities": np.ones((100_000, 3), np.float32)})  # fmt: skip
    waiting = recorder.bounded(exchange)
    assert waiting.inputs is not None
    assert waiting.inputs["features"].shape == (100_000, 4)
    assert waiting.inputs["features"].strides == (0, 0)  # one element's memory
    record = json.loads(recorder.record(waiting))
    assert record["truncated"] is True
    assert record["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [100_000, 4]}]
    assert recorder.bounded(replace(exchange, inputs={"features": rows[:2]}, outputs=None)).oversized is False

"""The process as Kubernetes sees it: settings refused at start, readiness, a graceful drain."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from serving.cpus import available_cpus
from tests.serving.conftest import REPO, start_server


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "99999"}, "PORT='99999' is invalid: must be between 1 and 65535"),
        (
            {"TWINSERVE_RUNTIME": "onnx"},
            "TWINSERVE_RUNTIME='onnx' is invalid: must be one of ['auto', 'litert'",
        ),
        ({"TWINSERVE_MAX_BATCH_ROWS": "many"}, "TWINSERVE_MAX_BATCH_ROWS='many' is invalid"),
        ({"TWINSERVE_ACCESS_LOG": "maybe"}, "TWINSERVE_ACCESS_LOG='maybe' is invalid: must be true or false"),
        ({"TWINSERVE_MODLE_ROOT": "/x"}, "unknown setting(s) ['TWINSERVE_MODLE_ROOT']"),
        ({"PORT": "8082"}, "TWINSERVE_METRICS_PORT=8082 is PORT's too"),
        (
            {"TWINSERVE_METRICS_PORT": "-1"},
            "TWINSERVE_METRICS_PORT='-1' is invalid: must be between 0 and 65535",
        ),
        ({"TWINSERVE_CAPTURE_SAMPLE_RATE": "2"}, "TWINSERVE_CAPTURE_SAMPLE_RATE='2' is invalid: must be"),
        ({"TWINSERVE_CAPTURE_FIELDS": "inputs,body"}, "'body' is not inputs, outputs, inputs.<name> or"),
        ({"TWINSERVE_TRACK": "blue"}, "TWINSERVE_TRACK='blue' is invalid: must be one of ['stable',"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serving"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_metrics_port_fails_at_start_naming_it(model_root) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "TWINSERVE_MODEL_ROOT": str(model_root),
            "TWINSERVE_HOST": "127.0.0.1",
            "TWINSERVE_METRICS_PORT": str(port),
        }
        result = subprocess.run(
            [sys.executable, "-m", "serving"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port} (TWINSERVE_METRICS_PORT): Address already in use" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_missing_model_root_fails_at_start(tmp_path) -> None:
    env = {
        **os.environ,
        "TWINSERVE_MODEL_ROOT": str(tmp_path / "none"),
        "TWINSERVE_WORKERS": "1",
        "PORT": "18181",
    }
    result = subprocess.run(
        [sys.executable, "-m", "serving"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert f"model root not found: {tmp_path / 'none'}" in result.stderr


def test_access_log_is_one_json_line_per_request(model_root) -> None:
    server = start_server(model_root, TWINSERVE_DRAIN_SECONDS="0")
    httpx.post(f"{server.url}/v1/models/iris:predict", json={"instances": [[1, 2, 3, 4]]})
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=30)
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    predict = [line for line in lines if line["path"] == "/v1/models/iris:predict"]
    assert predict
    assert predict[0]["status"] == 200
    assert predict[0]["rows"] == 1
    assert set(predict[0]) == {"ts", "method", "path", "status", "route", "rows", "ms", "bytes", "client"}


def test_sigterm_turns_readiness_false_then_finishes_in_flight_and_exits(model_root) -> None:
    server = start_server(model_root, TWINSERVE_DRAIN_SECONDS="2", TWINSERVE_RUNTIME="tensorflow")
    big = {"instances": [[5.1, 3.5, 1.4, 0.2]] * 1024}
    results: list[int] = []

    def keep_predicting() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                results.append(client.post("/v1/models/iris:predict", json=big).status_code)

    worker = threading.Thread(target=keep_predicting)
    worker.start()
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ready = httpx.get(f"{server.url}/v2/health/ready")
    live = httpx.get(f"{server.url}/v2/health/live")
    worker.join()
    server.process.wait(timeout=30)
    assert (ready.status_code, ready.json()) == (503, {"ready": False})
    assert live.status_code == 200
    assert results
    assert set(results) == {200}
    assert server.process.returncode == 0


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1), ("100000 100000", 1)],
)
def test_available_cpus_follows_the_cgroup_quota(tmp_path, cpu_max: str, expected: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    host = len(os.sched_getaffinity(0))
    count = available_cpus(tmp_path / "cpu.max", tmp_path / "q", tmp_path / "p")
    assert count == (host if expected is None else min(host, expected))


def test_two_workers_share_the_port_their_supervisor_sums_their_metrics_and_all_stop_cleanly(
    model_root,
) -> None:
    server = start_server(model_root, TWINSERVE_WORKERS="2", TWINSERVE_DRAIN_SECONDS="0")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(20):
            assert (
                client.post("/v1/models/iris:predict", json={"instances": [[1, 2, 3, 4]]}).status_code == 200
            )
        metrics = client.get(server.metrics_url).text
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith('rest_server_requests_total{model="iris",route="tf_predict"')
    )
    assert float(line.split()[-1]) == 20.0

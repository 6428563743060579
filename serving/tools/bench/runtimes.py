"""Every figure `make compare` needs, measured here with the exported model, as one JSON document.

Every figure is of the exported model answering its own example (metadata.json's), and every
runtime's answer is checked against TensorFlow's before its figures count.
Cold starts and sizes come from `cold_start`; on top of them: the warm handler duration
of each Lambda package (what Lambda bills), and the image's HTTP server under a closed
loop of concurrent keep-alive clients (latency and throughput of one single-worker pod).
The clients share the machine's cores with the server, so throughput is a lower bound.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from serving.tools.bench.cold_start import Prepared, free_port, measure_cold, prepare
from serving.tools.bench.workload import Workload, WrongAnswer, add_model_arguments, from_arguments
from serving.tools.packaging.image import Image

WARM_DRIVER = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from serving.lambda_handler import handler
event = json.load(open(sys.argv[1]))
for _ in range(50):
    handler(event, None)
samples = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    answer = handler(event, None)
    samples.append((time.perf_counter() - start) * 1000)
print(json.dumps({"samples": samples, "answer": answer}))
"""


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def handler_duration(
    who: str, command: list[str], prepared: Prepared, root: Path, env: dict[str, str], calls: int
) -> dict:
    """Warm invocations of the handler in one process: the duration Lambda bills, per call; the last
    answer is checked against the example's."""
    result = subprocess.run(
        [*command, "-c", WARM_DRIVER, str(prepared.event), str(root), str(calls)],
        cwd=root,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"handler benchmark failed:\n{result.stderr}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    prepared.workload.check_lambda(who, measured["answer"])
    samples = measured["samples"]
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99), "calls": calls}


def closed_loop(port: int, workload: Workload, concurrency: int, seconds: float) -> dict:
    """`concurrency` keep-alive clients, each sending the example when its last answer is in. Every
    status is counted and the first answer of each client is checked: errors are never timed."""
    latencies: list[float] = []
    answers: list[tuple[int, bytes]] = []  # each client's first answer and every non-2xx one
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    headers = {"content-type": "application/json"}

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, kept = [], []
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            connection.request("POST", workload.path, workload.body, headers)
            response = connection.getresponse()
            body = response.read()
            mine.append((time.perf_counter() - start) * 1000)
            if not kept or not 200 <= response.status < 300:
                kept.append((response.status, body))
        connection.close()
        with lock:
            latencies.extend(mine)
            answers.extend(kept)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for status, body in answers:
        workload.check("the Kubernetes pod's server", status, body)
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "requests_per_second": len(latencies) / seconds,
        "concurrency": concurrency,
    }


def server_latency(image: Image, workload: Workload, concurrency: int, seconds: float) -> dict:
    port = free_port()
    env = {
        "PATH": image.path,
        "PORT": str(port),
        "TWINSERVE_WORKERS": "1",
        "TWINSERVE_METRICS_PORT": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    process = subprocess.Popen(
        image.cmd, cwd=image.app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"the image's server exited with {process.returncode} before it was ready")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/v2/health/ready")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        closed_loop(port, workload, concurrency, 1.0)  # warm-up
        return closed_loop(port, workload, concurrency, seconds)
    finally:
        process.terminate()
        process.wait(timeout=60)


def warm(prepared: Prepared, concurrency: int, seconds: float, calls: int) -> dict:
    image = prepared.image
    figures = {}
    if prepared.task_root is not None:
        clean = [sys.executable, "-I", "-S"]
        figures["lambda_zip_handler"] = handler_duration(
            "the Lambda zip's handler", clean, prepared, prepared.task_root, {}, calls
        )
    image_env = {"PATH": image.path, "TWINSERVE_RUNTIME": image.runtime}
    figures["lambda_image_handler"] = handler_duration(
        "the Lambda image's handler",
        [str(image.venv / "bin" / "python")],
        prepared,
        image.app,
        image_env,
        calls,
    )
    figures["kubernetes_pod"] = server_latency(image, prepared.workload, concurrency, seconds)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per cold start")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--calls", type=int, default=500, help="warm handler calls")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runtimes-") as scratch:
        prepared = prepare(from_arguments(args), Path(scratch))
        try:
            data = measure_cold(prepared, args.runs, baseline=False) | {
                "warm": warm(prepared, args.concurrency, args.seconds, args.calls)
            }
        except WrongAnswer as error:
            print(
                f"error: {error}; no figures are reported for a runtime that answers wrong", file=sys.stderr
            )
            return 1
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    model = data["model"]
    print(f"{args.json}: measured {model['name']} v{model['version']} on both runtimes with its own example")
    return 0


if __name__ == "__main__":
    sys.exit(main())

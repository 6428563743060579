"""Every figure `make compare` needs, measured here with the exported model, as one JSON document.

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

from serving.bench.cold_start import EVENT, Prepared, measure_cold, prepare
from serving.bench.image import Image

BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
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
    handler(event, None)
    samples.append((time.perf_counter() - start) * 1000)
print(json.dumps(samples))
"""


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def handler_duration(command: list[str], root: Path, cwd: Path, env: dict[str, str], calls: int) -> dict:
    """Warm invocations of the handler in one process: the duration Lambda bills, per call."""
    result = subprocess.run(
        [*command, "-c", WARM_DRIVER, str(EVENT), str(root), str(calls)],
        cwd=cwd,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"handler benchmark failed:\n{result.stderr}")
    samples = json.loads(result.stdout.strip().splitlines()[-1])
    return {"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99), "calls": calls}


def closed_loop(port: int, concurrency: int, seconds: float) -> dict:
    """`concurrency` keep-alive clients, each sending the next request when the last answers."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            connection.request("POST", "/v1/models/iris:predict", BODY, {"content-type": "application/json"})
            connection.getresponse().read()
            mine.append((time.perf_counter() - start) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "requests_per_second": len(latencies) / seconds,
        "concurrency": concurrency,
    }


def server_latency(image: Image, concurrency: int, seconds: float) -> dict:
    port = 18282
    env = {"PATH": image.path, "PORT": str(port), "TWINSERVE_WORKERS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        image.cmd, cwd=image.app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(600):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/v2/health/ready")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        closed_loop(port, concurrency, 1.0)  # warm-up
        return closed_loop(port, concurrency, seconds)
    finally:
        process.terminate()
        process.wait(timeout=60)


def warm(prepared: Prepared, concurrency: int, seconds: float, calls: int) -> dict:
    image = prepared.image
    return {
        "lambda_zip_handler": handler_duration(
            [sys.executable, "-I", "-S"], prepared.task_root, prepared.task_root, {}, calls
        ),
        "lambda_image_handler": handler_duration(
            [str(image.venv / "bin" / "python")],
            image.app,
            image.app,
            {"PATH": image.path, "TWINSERVE_RUNTIME": image.runtime},
            calls,
        ),
        "kubernetes_pod": server_latency(image, concurrency, seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-root", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per cold start")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--calls", type=int, default=500, help="warm handler calls")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runtimes-") as scratch:
        prepared = prepare(args.model_root, Path(scratch))
        data = measure_cold(prepared, args.runs) | {
            "warm": warm(prepared, args.concurrency, args.seconds, args.calls)
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{args.json}: measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real model servers for the tests that run in infra's virtualenv, which has no TensorFlow: the
models are built, and `python -m serving` is run, by the main virtualenv's interpreter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_ports

REPO = Path(__file__).resolve().parent.parent
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"


def faulty_models(out: Path, *faults: str) -> Path:
    """`scorer` roots under out/<fault>/models (tests/workflows/faulty_models.py)."""
    command = [str(MAIN_PYTHON), "-m", "tests.workflows.faulty_models", str(out), *faults]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=600)
    return out


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    metrics_url: str  # /metrics, on the port of its own

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def start(root: Path, **settings: str) -> Server:
    """The container's server on a free port, ready before this returns; `settings` are more of its
    TWINSERVE_* variables."""
    port, metrics_port = free_ports(2)
    env = {
        **os.environ,
        "PORT": str(port),
        "TWINSERVE_METRICS_PORT": str(metrics_port),
        "TWINSERVE_HOST": "127.0.0.1",
        "TWINSERVE_WORKERS": "1",
        "TWINSERVE_MODEL_ROOT": str(root),
        "TWINSERVE_RUNTIME": "tensorflow",
        "TWINSERVE_DRAIN_SECONDS": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **settings,
    }
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    process = subprocess.Popen(
        [str(MAIN_PYTHON), "-m", "serving"], cwd=REPO, env=env, start_new_session=True, **quiet
    )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server of {root} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as response:
                if response.status == 200:
                    return Server(url, process, f"http://127.0.0.1:{metrics_port}/metrics")
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"the server of {root} was not ready within 60 s")


@contextmanager
def traffic(url: str, every: int, value: float) -> Iterator[dict[str, int]]:
    """Two clients of the `scorer` at `url`, sending `value` in one request of `every` and 1.0
    otherwise, until the block ends; counts what they sent."""
    sent, stop = {"requests": 0, "faulty inputs": 0}, threading.Event()

    def client() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            x = value if count % every == 0 else 1.0
            body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [x]}]}
            request = urllib.request.Request(
                f"{url}/v2/models/scorer/infer",
                json.dumps(body).encode(),
                {"content-type": "application/json"},
            )
            with suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=30).close()
            sent["requests"] += 1
            sent["faulty inputs"] += x == value

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield sent
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

"""Real model servers for the tests that run in infra's virtualenv, which has no TensorFlow: the
models are built, and `python -m serving` is run, by the main virtualenv's interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_port

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

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def start(root: Path) -> Server:
    """The container's server on a free port, ready before this returns."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "TWINSERVE_HOST": "127.0.0.1",
        "TWINSERVE_WORKERS": "1",
        "TWINSERVE_MODEL_ROOT": str(root),
        "TWINSERVE_RUNTIME": "tensorflow",
        "TWINSERVE_DRAIN_SECONDS": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
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
                    return Server(url, process)
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"the server of {root} was not ready within 60 s")

"""Real server processes (`python -m serving`) on free loopback ports, and the Lambda handler in-process."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.ports import free_ports

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "events"


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    log: Path  # stdout and stderr: files, so a chatty server never blocks on a full pipe
    metrics_url: str  # /metrics, on the port of its own

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def start_server(
    model_root: Path | None,
    *,
    command: tuple[str, ...] = (sys.executable, "-m", "serving"),
    cwd: Path = REPO,
    **settings: str,
) -> Server:
    """Start the HTTP adapter as the container does and wait until it reports ready.

    With no model root, the server finds the model where the image and the zip put it.
    """  # fmt: skip
    port, metrics_port = free_ports(2)
    env = {
        **os.environ,
        "PORT": str(port),
        "TWINSERVE_METRICS_PORT": str(metrics_port),
        "TWINSERVE_HOST": "127.0.0.1",
        "TWINSERVE_WORKERS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **({"TWINSERVE_MODEL_ROOT": str(model_root)} if model_root else {}),
        **settings,
    }
    log = Path(tempfile.mkdtemp(prefix="twinserve-test-")) / "server.log"
    with log.open("w") as sink:
        process = subprocess.Popen(  # its own process group, as a process manager starts it
            list(command), cwd=cwd, env=env, stdout=sink, stderr=sink, text=True, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                metrics = f"http://127.0.0.1:{env['TWINSERVE_METRICS_PORT']}/metrics"
                return Server(process, url, log, metrics)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not become ready within 60 s")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.kill()
    server.process.wait(timeout=30)


@pytest.fixture(scope="session", params=["litert", "tensorflow"])
def server(request: pytest.FixtureRequest, model_root: Path) -> Iterator[Server]:
    """The HTTP server on each runtime, with drain disabled so teardown is quick."""
    running = start_server(model_root, TWINSERVE_RUNTIME=request.param, TWINSERVE_DRAIN_SECONDS="0")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def litert_server(model_root: Path) -> Iterator[Server]:
    running = start_server(model_root, TWINSERVE_RUNTIME="litert", TWINSERVE_DRAIN_SECONDS="0")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def lambda_module(model_root: Path) -> ModuleType:
    """serving.lambda_handler imported as Lambda's init does, with the model root in the environment."""
    os.environ["TWINSERVE_MODEL_ROOT"] = str(model_root)
    os.environ["TWINSERVE_RUNTIME"] = "litert"
    try:
        return importlib.import_module("serving.lambda_handler")
    finally:
        del os.environ["TWINSERVE_MODEL_ROOT"], os.environ["TWINSERVE_RUNTIME"]


def load_event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


def import_signature(serve: object, directory: Path) -> tuple[Path, str]:
    """Save a `tf.function` as a SavedModel's `serving_default` in `directory`, import it with
    `python -m model --source` into a root beside it, and return the root and what the import said."""
    import tensorflow as tf

    from tests.conftest import run_cli

    module = tf.Module()
    module.serve = serve
    signature = serve.get_concrete_function()  # type: ignore[attr-defined]
    tf.saved_model.save(module, str(directory), signatures={"serving_default": signature})
    root = directory.parent / "models"
    result = run_cli("--source", str(directory), "--output", str(root))
    assert result.returncode == 0, result.stderr
    return root, result.stdout


# Lambda's managed Python runtime: its runtime interface client and SDK (the image's lock), on the path
# after the task root, before anything else (argv: task root, runtime directory, handler).
MANAGED_RUNTIME = """
import sys
sys.path[:0] = [sys.argv.pop(1), sys.argv.pop(1)]
from awslambdaric.__main__ import main
main(sys.argv)
"""


@pytest.fixture(scope="session")
def managed_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What Lambda's Python runtime brings besides the interpreter: the runtime interface client and
    the SDK's core (the image's hash-locked ones), never anything the zip should carry itself."""
    target = tmp_path_factory.mktemp("var-runtime")
    lock = REPO / "serving" / "requirements-lambda-ric.txt"
    command = [sys.executable, "-m", "uv", "pip", "install", "-q", "--target", str(target),
               "--require-hashes", "--no-deps", "-r", str(lock)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return target

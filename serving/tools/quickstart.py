"""`make quickstart`'s last step: start the server on the exported model, send it the model's own
example (from its metadata.json), print the answer and check it is the one TensorFlow gave."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from serving.artifact import locate
from serving.contract import ContractError, Metadata
from serving.errors import ArtifactError


def _wait_ready(url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"error: the server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"error: the server was not ready within {seconds:.0f}s")


def _infer(url: str, path: str, body: bytes) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    request = urllib.request.Request(f"{url}{path}", data=body, headers=headers)  # noqa: S310 - local URL
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local URL
        return json.loads(response.read())


def _labelled(metadata: Metadata, answer: dict[str, Any]) -> list[str]:
    """Each row's label, when the model has labels and answers one probability per label."""
    if not metadata.labels:
        return []
    for output in answer.get("outputs", []):
        shape = output.get("shape", [])
        if len(shape) == 2 and shape[1] == len(metadata.labels):
            rows = [output["data"][i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
            best = [max(range(len(row)), key=row.__getitem__) for row in rows]
            return [f"row {i}: {metadata.labels[b]} ({rows[i][b]:.3f})" for i, b in enumerate(best)]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-root", type=Path, required=True)
    parser.add_argument("--model-name", help="the model under the root (default: the only one)")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    try:
        artifact = locate(args.model_root, args.model_name or None)
        metadata = Metadata.read(artifact)
    except (ArtifactError, ContractError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    env = {
        **os.environ,
        "TWINSERVE_MODEL_ROOT": str(args.model_root),
        "TWINSERVE_MODEL_NAME": metadata.name,
        "PORT": str(args.port),
        "TWINSERVE_ACCESS_LOG": "false",
        "TWINSERVE_METRICS_PORT": "0",
        "TWINSERVE_DRAIN_SECONDS": "0",
        "TWINSERVE_LOG_LEVEL": "warning",
    }
    url, path = f"http://127.0.0.1:{args.port}", f"/v2/models/{metadata.name}/infer"
    body = json.dumps(metadata.example.v2_request()).encode()
    server = subprocess.Popen([sys.executable, "-m", "serving"], env=env)
    try:
        _wait_ready(url, server)
        answer = _infer(url, path, body)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"POST {url}{path} {body.decode()}")
    print(json.dumps(answer))
    for line in _labelled(metadata, answer):
        print(f"  {line}")
    wrong = metadata.example.mismatch(answer)
    if wrong:
        print(f"error: the answer differs from TensorFlow's at export: {wrong}", file=sys.stderr)
        return 1
    print(
        "The answer is the one TensorFlow gave at export. Serve it yourself with `make serve`; see README.md."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

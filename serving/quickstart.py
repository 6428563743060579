"""`make quickstart`'s last step: start the server on the exported model, send one prediction, print it."""

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

EXAMPLE = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


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


def _predict(url: str, model: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 - local URL
        f"{url}/v1/models/{model}:predict",
        data=json.dumps(EXAMPLE).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local URL
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    metadata = next(args.model_root.glob("*/*/metadata.json"))
    labels, model = json.loads(metadata.read_text())["labels"], metadata.parent.parent.name
    env = {
        **os.environ,
        "TWINSERVE_MODEL_ROOT": str(args.model_root),
        "PORT": str(args.port),
        "TWINSERVE_ACCESS_LOG": "false",
        "TWINSERVE_DRAIN_SECONDS": "0",
        "TWINSERVE_LOG_LEVEL": "warning",
    }
    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "serving"], env=env)
    try:
        _wait_ready(url, server)
        answer = _predict(url, model)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"POST {url}/v1/models/{model}:predict {json.dumps(EXAMPLE)}")
    print(json.dumps(answer))
    for row, probabilities in zip(EXAMPLE["instances"], answer["predictions"], strict=True):
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        print(f"  {row} -> {labels[best]} ({probabilities[best]:.3f})")
    print("Serve it yourself with `make serve`; see README.md for the API.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

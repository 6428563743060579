"""`make smoke ENV=<env>`: after an up, prove each deployed runtime serves: V2 ready, metadata, one inference.

Reads the stack's outputs (`pulumi stack output --json`), so it needs nothing but the
endpoints: an in-cluster Service is reached through `kubectl port-forward`, and an
IAM-authenticated Function URL is called with SigV4-signed requests (the job's OIDC
credentials). Any failure exits non-zero with the runtime and check named, which stops
the promotion to the next environment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Send = Callable[[str, str, bytes | None], tuple[int, bytes]]


class SmokeError(RuntimeError):
    """A deployed runtime failed a check; the message names which and how."""


JSON = {"content-type": "application/json"}


def _exchange(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request to the stack's own endpoint; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - http(s) outputs
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def plain_send(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
    return _exchange(method, url, body, JSON)


def signed_send(region: str) -> Send:
    """SigV4 for `lambda` with the ambient AWS credentials, as AWS_IAM Function URLs require."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.session import Session

    credentials = Session().get_credentials()
    if credentials is None:
        raise SmokeError("the Function URL needs AWS_IAM signing, but no AWS credentials are configured")

    def send(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=JSON)
        SigV4Auth(credentials.get_frozen_credentials(), "lambda", region).add_auth(request)
        return _exchange(method, url, body, dict(request.headers.items()))

    return send


def example_input(metadata: dict[str, Any]) -> bytes:
    """A one-row V2 request shaped from the model's own metadata, so any model can be smoke-tested."""
    inputs = []
    for tensor in metadata["inputs"]:
        shape = [1 if d < 0 else d for d in tensor["shape"]]
        size = 1
        for dimension in shape:
            size *= dimension
        inputs.append(
            {"name": tensor["name"], "shape": shape, "datatype": tensor["datatype"], "data": [0] * size}
        )
    return json.dumps({"inputs": inputs}).encode()


def check(runtime: str, base: str, model: str, send: Send, wait_seconds: float) -> str:
    base = base.rstrip("/")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            status, _ = send("GET", f"{base}/v2/health/ready", None)
        except OSError as error:
            status = f"unreachable ({error})"
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise SmokeError(f"{runtime}: {base}/v2/health/ready answered {status} for {wait_seconds:.0f} s")
        time.sleep(2)
    status, body = send("GET", f"{base}/v2/models/{model}", None)
    if status != 200:
        raise SmokeError(f"{runtime}: model metadata answered {status}: {body[:200]!r}")
    status, body = send("POST", f"{base}/v2/models/{model}/infer", example_input(json.loads(body)))
    outputs = json.loads(body).get("outputs") if status == 200 else None
    if not outputs:
        raise SmokeError(f"{runtime}: inference answered {status}: {body[:200]!r}")
    return f"{runtime}: ready, metadata and one inference OK at {base}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def reachable(endpoint: str, namespace: str, model: str) -> Iterator[str]:
    """An in-cluster Service through `kubectl port-forward`; anything else as it is."""
    if ".svc.cluster.local" not in endpoint:
        yield endpoint
        return
    port = free_port()
    command = ["kubectl", "port-forward", "-n", namespace, f"svc/{model}", f"{port}:80"]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as forward:
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            forward.terminate()


def smoke(outputs: dict[str, Any], wait_seconds: float) -> list[str]:
    model, results = outputs["modelName"], []
    if "kubernetes" in outputs.get("runtimes", []):
        with reachable(outputs["kubernetesEndpoint"], outputs["kubernetesNamespace"], model) as base:
            results.append(check("kubernetes", base, model, plain_send, wait_seconds))
    if "lambda" in outputs.get("runtimes", []):
        iam = outputs.get("lambdaAuth") == "AWS_IAM"
        region = outputs["functionArn"].split(":")[3]  # where the function is, whatever the shell says
        send = signed_send(region) if iam else plain_send
        results.append(check("lambda", outputs["lambdaEndpoint"], model, send, wait_seconds))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outputs", type=Path, help="`pulumi stack output --json` of the stack")
    parser.add_argument(
        "--wait-seconds", type=float, default=180, help="how long a rollout may take to be ready"
    )
    args = parser.parse_args(argv)
    try:
        outputs = json.loads(args.outputs.read_text())
        for line in smoke(outputs, args.wait_seconds):
            print(line)
    except KeyError as missing:
        print(f"smoke test failed: the stack outputs lack {missing}", file=sys.stderr)
        return 1
    except (SmokeError, json.JSONDecodeError, OSError) as error:
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

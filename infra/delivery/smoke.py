"""`make smoke ENV=<env>`: after an up, prove each deployed runtime serves the built model: V2 ready,
its metadata at the built version, and the model's own example answered as TensorFlow answered it.

Reads the stack's outputs (`pulumi stack output --json`) and the built model's metadata.json
(`dist/model-metadata.json`, beside the Lambda zips), so any model is checked with valid inputs:
strings for a text model, booleans for a boolean input. An in-cluster Service is reached through
`kubectl port-forward`, and an IAM-authenticated Function URL is called with SigV4-signed
requests (the job's OIDC credentials). Any failure exits non-zero with the runtime and check
named, which stops the promotion to the next environment.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving import contract

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


def signed_send(region: str, service: str = "lambda") -> Send:
    """SigV4 with the ambient AWS credentials: for `lambda` (an AWS_IAM Function URL) or `execute-api`
    (an AWS_IAM HTTP API route)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.session import Session

    credentials = Session().get_credentials()
    if credentials is None:
        raise SmokeError("the Function URL needs AWS_IAM signing, but no AWS credentials are configured")

    def send(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=JSON)
        SigV4Auth(credentials.get_frozen_credentials(), service, region).add_auth(request)
        return _exchange(method, url, body, dict(request.headers.items()))

    return send


@dataclass(frozen=True)
class Example:
    """The built model's name, version and example (request and TensorFlow's answer), read from its
    metadata.json through the artifact contract."""

    model: str
    version: str
    example: contract.Example

    @property
    def request(self) -> bytes:
        return json.dumps(self.example.v2_request()).encode()

    @classmethod
    def read(cls, path: Path) -> Example:
        if not path.exists():
            raise SmokeError(f"{path} not found: `make package` writes it beside the Lambda zips")
        try:
            metadata = contract.Metadata.read(path)
        except contract.ContractError as error:
            raise SmokeError(str(error)) from None
        return cls(metadata.name, str(metadata.version), metadata.example)

    def mismatch(self, answer: Any) -> str:
        return self.example.mismatch(answer)


def wait_ready(runtime: str, base: str, send: Send, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            status, _ = send("GET", f"{base}{contract.READY_PATH}", None)
        except OSError as error:
            status = f"unreachable ({error})"
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise SmokeError(
                f"{runtime}: {base}{contract.READY_PATH} answered {status} for {wait_seconds:.0f} s"
            )
        time.sleep(2)


def check(runtime: str, base: str, example: Example, send: Send, wait_seconds: float) -> str:
    base = base.rstrip("/")
    wait_ready(runtime, base, send, wait_seconds)
    model = example.model
    status, body = send("GET", f"{base}/v2/models/{model}", None)
    if status != 200:
        raise SmokeError(f"{runtime}: model metadata answered {status}: {body[:200]!r}")
    versions = json.loads(body).get("versions", [])
    if example.version not in versions:
        raise SmokeError(f"{runtime}: serves {model} versions {versions}, not the built {example.version}")
    status, body = send("POST", f"{base}/v2/models/{model}/infer", example.request)
    if status != 200:
        raise SmokeError(f"{runtime}: inference of the model's example answered {status}: {body[:200]!r}")
    wrong = example.mismatch(json.loads(body))
    if wrong:
        raise SmokeError(f"{runtime}: the model's example got a different answer: {wrong}")
    return f"{runtime}: ready, metadata and the model's example answered as expected at {base}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def port_forward(namespace: str, target: str, remote: int) -> Iterator[str]:
    """`kubectl port-forward` to `target` (svc/…, deployment/…), yielded once it listens: a first
    request or scrape must not race its start, and one that exits is named with kubectl's error."""
    port = free_port()
    command = ["kubectl", "port-forward", "-n", namespace, target, f"{port}:{remote}"]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as forward:
        try:
            listening(port, forward, " ".join(command))
            yield f"http://127.0.0.1:{port}"
        finally:
            forward.terminate()


def listening(port: int, forward: subprocess.Popen[str], command: str, seconds: float = 30) -> None:
    """Until the port-forward accepts connections."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if forward.poll() is not None:
            error = forward.stderr.read().strip() if forward.stderr else ""
            raise SmokeError(f"`{command}` exited: {error or forward.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise SmokeError(f"`{command}` did not listen within {seconds:.0f} s")


@contextlib.contextmanager
def reachable(namespace: str, model: str, given_url: str | None = None) -> Iterator[str]:
    """The model's Service through `kubectl port-forward`, always: a LoadBalancer's address may be
    internal (AWS Load Balancer Controller 2.2+ and EKS Auto Mode make NLBs internal unless annotated),
    and the runner is outside the VPC. `given_url` instead, where the caller already reaches it."""
    if given_url:
        yield given_url.rstrip("/")
        return
    with port_forward(namespace, f"svc/{model}", 80) as base:
        yield base


def region_of(outputs: dict[str, Any]) -> str:
    """Where the stack's function is, whatever the shell's region says."""
    return outputs["functionArn"].split(":")[3]


def smoke(
    outputs: dict[str, Any], example: Example, wait_seconds: float, kubernetes_url: str | None = None
) -> list[str]:
    model, results = outputs["modelName"], []
    if model != example.model:
        raise SmokeError(f"the stack serves {model!r}, but the built model is {example.model!r}")
    if "kubernetes" in outputs.get("runtimes", []):
        with reachable(outputs["kubernetesNamespace"], model, kubernetes_url) as base:
            results.append(check("kubernetes", base, example, plain_send, wait_seconds))
    if "lambda" in outputs.get("runtimes", []):
        iam = outputs.get("lambdaAuth") == "AWS_IAM"
        service = outputs.get("lambdaSigningService", "lambda")
        send = signed_send(region_of(outputs), service) if iam else plain_send
        results.append(check("lambda", outputs["lambdaEndpoint"], example, send, wait_seconds))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outputs", type=Path, help="`pulumi stack output --json` of the stack")
    parser.add_argument(
        "--wait-seconds", type=float, default=180, help="how long a rollout may take to be ready"
    )
    parser.add_argument(
        "--metadata",
        type=Path,
        default=Path("dist/model-metadata.json"),
        help="the built model's metadata.json, whose example is sent and its answer checked",
    )
    parser.add_argument("--kubernetes-url", help="the model's Service base URL instead of a port-forward")
    args = parser.parse_args(argv)
    try:
        outputs = json.loads(args.outputs.read_text())
        for line in smoke(outputs, Example.read(args.metadata), args.wait_seconds, args.kubernetes_url):
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

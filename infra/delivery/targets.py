"""Where each runtime of a deployed stack is, from this runner, and how to call it.

Kubernetes: the Service (or a track's pods, or a pod's metrics port) through `kubectl port-forward`,
or a URL the caller already reaches. Lambda: the endpoint in the stack's outputs, SigV4-signed with
the job's credentials when it is AWS_IAM. The smoke test and the bake ask here; they reach nothing
themselves.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from delivery.errors import Unreachable
from serving.contract import HTTP_PORT, METRICS_PORT

Send = Callable[[str, str, bytes | None], tuple[int, bytes]]
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
        raise Unreachable("the Function URL needs AWS_IAM signing, but no AWS credentials are configured")

    def send(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=JSON)
        SigV4Auth(credentials.get_frozen_credentials(), service, region).add_auth(request)
        return _exchange(method, url, body, dict(request.headers.items()))

    return send


def region_of(outputs: dict[str, Any]) -> str:
    """Where the stack's function is, whatever the shell's region says."""
    return outputs["functionArn"].split(":")[3]


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
            raise Unreachable(f"`{command}` exited: {error or forward.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise Unreachable(f"`{command}` did not listen within {seconds:.0f} s")


# A rollout's tracks on Kubernetes: the stable pods behind the Service, the new model's canary pods
# beside them, and its shadow pods outside it; each new track's Deployment is named in the outputs.
TRACK_OUTPUTS = {"canary": "kubernetesCanary", "shadow": "kubernetesShadow"}


@dataclass(frozen=True)
class Targets:
    """The runtimes of one stack as this runner reaches them; a URL given here replaces a port-forward
    (a caller inside the cluster, or a test's own servers)."""

    kubernetes_url: str | None = None  # the stable side: the Service
    kubernetes_canary_url: str | None = None  # the canary pods
    kubernetes_metrics_url: str | None = None  # a stable pod's /metrics
    kubernetes_canary_metrics_url: str | None = None  # a canary pod's /metrics
    kubernetes_shadow_url: str | None = None  # the shadow pods
    kubernetes_shadow_metrics_url: str | None = None  # a shadow pod's /metrics

    def _given(self, track: str, metrics: bool) -> str | None:
        prefix = "kubernetes" if track == "stable" else f"kubernetes_{track}"
        return getattr(self, f"{prefix}_metrics_url" if metrics else f"{prefix}_url")

    @contextlib.contextmanager
    def kubernetes(self, outputs: dict[str, Any], track: str = "stable") -> Iterator[str]:
        """The stable side through its Service, always by port-forward: a LoadBalancer's address may be
        internal (AWS Load Balancer Controller 2.2+ and EKS Auto Mode make NLBs internal unless
        annotated), and the runner is outside the VPC. A canary or a shadow through its own pods."""
        given = self._given(track, metrics=False)
        if given:
            yield given.rstrip("/")
            return
        namespace = outputs["kubernetesNamespace"]
        if track == "stable":
            target, port = f"svc/{outputs['modelName']}", 80
        else:
            target, port = f"deployment/{outputs[TRACK_OUTPUTS[track]]}", HTTP_PORT
        with port_forward(namespace, target, port) as base:
            yield base

    @contextlib.contextmanager
    def metrics(self, outputs: dict[str, Any], track: str = "stable") -> Iterator[str]:
        """A pod's /metrics, on the port no Service exposes: one pod of the track, the same pod for the
        whole bake (so its counters only grow)."""
        given = self._given(track, metrics=True)
        if given:
            yield given
            return
        deployment = outputs["modelName"] if track == "stable" else outputs[TRACK_OUTPUTS[track]]
        with port_forward(outputs["kubernetesNamespace"], f"deployment/{deployment}", METRICS_PORT) as base:
            yield f"{base}/metrics"

    def function(self, outputs: dict[str, Any], canary: bool = False) -> tuple[str, Send]:
        """The function's endpoint and how to call it: the live alias's (signed as its auth says), or
        the canary alias's Function URL, which is always AWS_IAM."""
        region = region_of(outputs)
        if canary:
            return outputs["lambdaCanaryEndpoint"], signed_send(region)
        if outputs.get("lambdaAuth") != "AWS_IAM":
            return outputs["lambdaEndpoint"], plain_send
        return outputs["lambdaEndpoint"], signed_send(region, outputs.get("lambdaSigningService", "lambda"))

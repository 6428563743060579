"""A local Kubernetes control plane for the real-engine tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok's fake nodes, on 127.0.0.1 in a temp dir.

Deployments become Available on a kwok node without a kubelet or a container runtime; admission
(Pod Security included), RBAC, garbage collection and the ReplicaSet machinery are the real ones.
Every process is stopped, and its exit awaited, when the context ends.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import free_port

TOKEN = "twinserve-engine-tests"


@dataclass
class KubeApi:
    """Just enough of a client to read back what the engine created, and to make a node."""

    url: str
    context: ssl.SSLContext = field(default_factory=ssl._create_unverified_context)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {TOKEN}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body.startswith(b"{") else {"text": body.decode()}

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, or None when the API server says it does not exist."""
        try:
            return self.request("GET", path)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def wait_for(self, path: str, ready: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.get(path)
            if last is not None and ready(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"{path} not ready within {timeout} s: {json.dumps(last)[:2000]}")


@dataclass
class ControlPlane:
    api: KubeApi
    kubeconfig: Path
    version: str
    logs: Path


def _kubeconfig(path: Path, url: str) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "admin", "user": {"token": TOKEN}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
                "current-context": "local",
            }
        )
    )


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    private, public = directory / "sa.key", directory / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", private, "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", private, "-pubout", "-out", public], check=True, capture_output=True
    )
    return private, public


def _commands(tools: dict[str, str], work: Path, url: str, apiserver_port: int) -> dict[str, list[str]]:
    etcd_port, peer_port = free_port(), free_port()
    private, public = _service_account_keys(work)
    (work / "tokens.csv").write_text(f"{TOKEN},admin,admin,system:masters\n")
    kubeconfig = str(work / "kubeconfig")
    clients = ["--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig]
    clients += ["--authorization-kubeconfig", kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1"]
    return {
        "etcd": [
            tools["ETCD"], "--data-dir", str(work / "etcd"), "--name", "default",
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
        ],
        "kube-apiserver": [
            tools["KUBE_APISERVER"], f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={apiserver_port}",
            f"--cert-dir={work / 'certs'}", f"--token-auth-file={work / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={public}", f"--service-account-signing-key-file={private}",
            "--service-cluster-ip-range=10.96.0.0/16",
        ],
        "kube-controller-manager": [
            tools["KUBE_CONTROLLER_MANAGER"], *clients, f"--secure-port={free_port()}",
            f"--service-account-private-key-file={private}",
            f"--root-ca-file={work / 'certs' / 'apiserver.crt'}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle",
        ],
        "kube-scheduler": [tools["KUBE_SCHEDULER"], *clients, f"--secure-port={free_port()}"],
        "kwok": [
            tools["KWOK"], "--kubeconfig", kubeconfig, "--manage-all-nodes=true", "-c", tools["KWOK_STAGES"],
            f"--server-address=127.0.0.1:{free_port()}", "--node-lease-duration-seconds=40",
        ],
    }  # fmt: skip


NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "kwok-node-0",
        "annotations": {"kwok.x-k8s.io/node": "fake"},
        "labels": {"kubernetes.io/hostname": "kwok-node-0", "type": "kwok"},
    },
    "status": {
        "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
    },
}


def _ready(api: KubeApi, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                tail = (logs / f"{name}.log").read_text()[-3000:]
                raise AssertionError(f"{name} exited with {process.returncode}:\n{tail}")
        try:
            api.request("GET", "/readyz")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError("kube-apiserver not ready within 90 s")


@contextmanager
def control_plane(tools: dict[str, str], work: Path) -> Iterator[ControlPlane]:
    """Start everything, make one kwok node, yield; stop everything (SIGTERM, then SIGKILL) at exit."""
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    commands = _commands(tools, work, url, port)
    _kubeconfig(work / "kubeconfig", url)
    api = KubeApi(url)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            with (work / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(command, stdout=log, stderr=log, cwd=work)
            if name == "kube-apiserver":
                _ready(api, processes, work)
        api.request("POST", "/api/v1/nodes", NODE)
        api.wait_for("/api/v1/nodes/kwok-node-0", _node_ready)
        yield ControlPlane(api, work / "kubeconfig", tools["KUBERNETES_VERSION"], work)
    finally:
        for process in reversed(processes.values()):
            process.terminate()
        for process in reversed(processes.values()):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

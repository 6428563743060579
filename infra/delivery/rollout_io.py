"""How a rollout reaches its stack and its pods: ups and outputs through the one engine runner
(`infra/engine.py`, in this process, so a cancel reaches the CLI), the new model's servers through
`kubectl port-forward` (or a given URL), and a canary an interrupted update left through its name."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import engine

from delivery.interrupt import Cancellation, live_updates
from delivery.smoke import port_forward, reachable
from serving.contract import HTTP_PORT, METRICS_PORT

ROOT = Path(__file__).resolve().parents[2]  # the repository
LOCK_PATIENCE_SECONDS = 60.0  # how long a cancelled run's CLI may take to release the stack
CANARY_ALIAS = "canary"  # lambda_service.CANARY_ALIAS


class RolloutError(RuntimeError):
    """A step failed: an up, a smoke test or a breached signal; the message says which."""


class StackLocked(RolloutError):
    """Another update holds the stack's lock."""


@dataclass
class Engine:
    """The stack's ups and outputs, in this process; each step's inputs over the job's config."""

    stack: str
    job_config: dict[str, str] = field(default_factory=dict)
    secrets_provider: str | None = None
    cancellation: Cancellation = field(default_factory=Cancellation)
    lock_patience_seconds: float = LOCK_PATIENCE_SECONDS
    _opened: Any = None

    @classmethod
    def from_env(cls, stack: str, cancellation: Cancellation, lock_patience_seconds: float) -> Engine:
        try:
            job = engine.deploy_config(dict(os.environ))
        except engine.EngineError as error:
            raise RolloutError(str(error)) from None
        return cls(
            stack, job, os.environ.get("PULUMI_SECRETS_PROVIDER") or None, cancellation, lock_patience_seconds
        )

    def _open(self) -> Any:
        if self._opened is None:
            try:
                self._opened = engine.open_stack(
                    self.stack, create=True, secrets_provider=self.secrets_provider
                )
            except engine.EngineError as error:
                raise RolloutError(f"could not open stack {self.stack}: {error}") from None
        return self._opened

    def outputs(self) -> dict[str, Any]:
        try:
            return engine.outputs(self._open())
        except engine.EngineError as error:
            self.cancellation.check()
            raise RolloutError(f"could not read the outputs of stack {self.stack}: {error}") from None

    def up(self, inputs: dict[str, str]) -> dict[str, Any]:
        """One up with a step's inputs (image included) over the job's config; its outputs."""
        stack = self._open()
        try:
            engine.set_config(stack, [f"{k}={v}" for k, v in {**self.job_config, **inputs}.items()])
            engine.run("up", stack)
        except engine.EngineError as error:
            self.cancellation.check()  # the job was cancelled: that, not a failure to roll back from
            kind = StackLocked if isinstance(error, engine.LockedError) else RolloutError
            raise kind(f"the up failed: {error}") from None
        self.cancellation.check()
        return self.outputs()

    def up_after_cancel(self, inputs: dict[str, str]) -> dict[str, Any]:
        """The abort's up. A cancelled run's CLI may still be winding down on this runner: wait for it
        (never clear a lock a live process holds); a lock no live process holds is a killed CLI's,
        cleared once (`pulumi cancel`). Safe because the workflow runs one deploy per stack at a time."""
        deadline = time.monotonic() + self.lock_patience_seconds
        cleared = False
        while True:
            try:
                return self.up(inputs)
            except StackLocked:
                pass
            live = live_updates(self.stack)
            if live:
                if time.monotonic() > deadline:
                    raise RolloutError(
                        f"an update of {self.stack} is still running here (pulumi {live}) after "
                        f"{self.lock_patience_seconds:g} s; its lock is left alone"
                    ) from None
                print(f"waiting for the cancelled update to finish (pulumi {live})", flush=True)
            elif not cleared:
                print(
                    "the stack's lock is held by no running update: clearing it (pulumi cancel)", flush=True
                )
                engine.clear_lock(self._open())
                cleared = True
            else:
                raise RolloutError(f"the stack {self.stack} is locked by another update") from None
            time.sleep(min(2.0, self.lock_patience_seconds))

    def pending_creates(self) -> list[dict[str, Any]]:
        return [op for op in engine.pending_operations(self._open()) if op.get("type") == "creating"]

    def clear_pending_creates(self) -> None:
        engine.clear_pending_creates(self._open())


def remove_canaries(outputs: dict[str, Any], pending: list[dict[str, Any]]) -> list[str]:
    """Delete, by name, every canary object an abort's up may not know of: the Kubernetes objects of
    the update's pending creates, the model's canary Deployment, and the function's `canary` alias
    with its URL. The abort's up declares no canary, so each of these is an orphan. Returns what was
    deleted."""
    removed = []
    manifests = [
        _manifest(op["resource"]) for op in pending if op["resource"]["type"].startswith("kubernetes:")
    ]
    if "kubernetes" in outputs.get("runtimes", []) and outputs.get("kubernetesNamespace"):
        canary = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": f"{outputs['modelName']}-canary",
                "namespace": outputs["kubernetesNamespace"],
            },
        }
        manifests.append(canary)
    for manifest in [m for m in manifests if m]:
        result = subprocess.run(
            ["kubectl", "delete", "-f", "-", "--ignore-not-found", "--wait=false"],
            input=json.dumps(manifest),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        named = (
            f"{manifest['kind']} {manifest['metadata'].get('namespace', '')}/{manifest['metadata']['name']}"
        )
        if result.returncode != 0:
            raise RolloutError(f"could not delete the {named}: {result.stderr.strip()}")
        if result.stdout.strip():
            removed.append(f"the {named}")
    if "lambda" in outputs.get("runtimes", []) and outputs.get("functionName"):
        removed += _remove_canary_alias(outputs["functionName"], outputs["functionArn"].split(":")[3])
    return removed


def _manifest(resource: dict[str, Any]) -> dict[str, Any] | None:
    """apiVersion, kind and metadata of a pending Kubernetes create, from its checked inputs."""
    inputs = resource.get("inputs") or {}
    meta = inputs.get("metadata") or {}
    if not (inputs.get("apiVersion") and inputs.get("kind") and meta.get("name")):
        return None
    return {"apiVersion": inputs["apiVersion"], "kind": inputs["kind"], "metadata": meta}


def _remove_canary_alias(function: str, region: str) -> list[str]:
    import boto3

    client = boto3.client("lambda", region_name=region)
    removed = []
    for call, what in (
        (lambda: client.delete_function_url_config(FunctionName=function, Qualifier=CANARY_ALIAS), "URL"),
        (lambda: client.delete_alias(FunctionName=function, Name=CANARY_ALIAS), "alias"),
    ):
        try:
            call()
            removed.append(f"the {CANARY_ALIAS} {what} of {function}")
        except client.exceptions.ResourceNotFoundException:
            pass
    return removed


@dataclass(frozen=True)
class Targets:
    """Where the new model's servers are reached from this runner."""

    kubernetes_url: str | None = None  # instead of a port-forward to the stable pods
    kubernetes_canary_url: str | None = None  # instead of a port-forward to the canary pods
    kubernetes_metrics_url: str | None = None  # the stable pods' /metrics, instead of a port-forward
    kubernetes_canary_metrics_url: str | None = None  # the canary pods' /metrics, likewise

    @contextlib.contextmanager
    def kubernetes(self, outputs: dict[str, Any], canary: bool) -> Iterator[str]:
        """The stable side as the smoke test reaches it (the Service); the canary's pods directly."""
        if not canary:
            with reachable(outputs["kubernetesNamespace"], outputs["modelName"], self.kubernetes_url) as base:
                yield base
        elif self.kubernetes_canary_url:
            yield self.kubernetes_canary_url.rstrip("/")
        else:
            target = f"deployment/{outputs['kubernetesCanary']}"
            with port_forward(outputs["kubernetesNamespace"], target, HTTP_PORT) as base:
                yield base

    @contextlib.contextmanager
    def metrics(self, outputs: dict[str, Any], canary: bool) -> Iterator[str]:
        """A pod's /metrics, on the port no Service exposes: one pod of the track, the same pod for the
        whole bake (so its counters only grow)."""
        given = self.kubernetes_canary_metrics_url if canary else self.kubernetes_metrics_url
        if given:
            yield given
            return
        deployment = outputs["kubernetesCanary"] if canary else outputs["modelName"]
        with port_forward(outputs["kubernetesNamespace"], f"deployment/{deployment}", METRICS_PORT) as base:
            yield f"{base}/metrics"

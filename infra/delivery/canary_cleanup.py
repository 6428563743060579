"""After a cancelled rollout: delete, by name, the canary objects an interrupted update created but its
state may not hold (the abort's up declares no canary, so each is an orphan)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from delivery.errors import RolloutError

# program/lambda_service.py's CANARY_ALIAS and SHADOW_ALIAS (importing it would load the AWS SDK)
ALIASES = ("canary", "shadow")


def remove_canaries(outputs: dict[str, Any], pending: list[dict[str, Any]]) -> list[str]:
    """Delete, by name, every canary or shadow object an abort's up may not know of: the Kubernetes
    objects of the update's pending creates, the model's canary and shadow Deployments, and the
    function's `canary` alias with its URL and its `shadow` alias. The abort's up declares neither, so
    each of these is an orphan. Returns what was deleted."""
    removed = []
    manifests = [
        _manifest(op["resource"]) for op in pending if op["resource"]["type"].startswith("kubernetes:")
    ]
    if "kubernetes" in outputs.get("runtimes", []) and outputs.get("kubernetesNamespace"):
        manifests += [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": f"{outputs['modelName']}-{track}",
                    "namespace": outputs["kubernetesNamespace"],
                },
            }
            for track in ("canary", "shadow")
        ]
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
        removed += _remove_aliases(outputs["functionName"], outputs["functionArn"].split(":")[3])
    return removed


def _manifest(resource: dict[str, Any]) -> dict[str, Any] | None:
    """apiVersion, kind and metadata of a pending Kubernetes create, from its checked inputs."""
    inputs = resource.get("inputs") or {}
    meta = inputs.get("metadata") or {}
    if not (inputs.get("apiVersion") and inputs.get("kind") and meta.get("name")):
        return None
    return {"apiVersion": inputs["apiVersion"], "kind": inputs["kind"], "metadata": meta}


def _remove_aliases(function: str, region: str) -> list[str]:
    """The canary alias with its URL, and the shadow alias (its asynchronous-invoke config goes with it)."""
    import boto3

    client = boto3.client("lambda", region_name=region)
    removed = []
    calls = [
        (
            lambda alias=alias: client.delete_function_url_config(FunctionName=function, Qualifier=alias),
            alias,
            "URL",
        )
        for alias in ALIASES[:1]
    ] + [
        (lambda alias=alias: client.delete_alias(FunctionName=function, Name=alias), alias, "alias")
        for alias in ALIASES
    ]
    for call, alias, what in calls:
        try:
            call()
            removed.append(f"the {alias} {what} of {function}")
        except client.exceptions.ResourceNotFoundException:
            pass
    return removed

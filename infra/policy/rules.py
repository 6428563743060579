"""Rules the stacks must meet (mandatory) or should (advisory): plain functions over resource properties.

Each check takes the resource's type, its properties (camelCase, as the engine sends them)
and the stack name, and yields one message per violation. `policy()` wraps a check for
pulumi_policy; the tests call the same wrapped validators with hand-built arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

Check = Callable[[str, Mapping[str, Any], str], Iterator[str]]
WORKLOADS = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
}
PROTECTED_STACKS = {"prod"}
MEMORY_ADVISORY_MB = 2048
PROVISIONED_ADVISORY = 10


def _containers(props: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    pod = ((props.get("spec") or {}).get("template") or {}).get("spec") or {}
    return pod, [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


# The restricted profile, per container: (what must hold of its effective and own security context, message).
RESTRICTED: list[tuple[Callable[[Mapping[str, Any], Mapping[str, Any]], bool], str]] = [
    (lambda merged, own: merged.get("runAsNonRoot") is True, "runAsNonRoot must be true"),
    (
        lambda merged, own: (merged.get("runAsUser") or 0) >= 10000,
        "runAsUser must be a numeric UID of 10000 or more",
    ),
    (
        lambda merged, own: own.get("allowPrivilegeEscalation") is False,
        "allowPrivilegeEscalation must be false",
    ),
    (
        lambda merged, own: "ALL" in (own.get("capabilities") or {}).get("drop", []),
        "capabilities must drop ALL",
    ),
    (
        lambda merged, own: (
            (merged.get("seccompProfile") or {}).get("type") in {"RuntimeDefault", "Localhost"}
        ),
        "seccompProfile must be RuntimeDefault",
    ),
    (lambda merged, own: own.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true"),
]


def restricted_pod(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    if kind not in WORKLOADS:
        return
    pod, containers = _containers(props)
    for c in containers:
        own = c.get("securityContext") or {}
        merged = {**(pod.get("securityContext") or {}), **own}
        yield from (
            f"container {c.get('name')}: {message}" for holds, message in RESTRICTED if not holds(merged, own)
        )


def resources_and_probes(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    if kind not in WORKLOADS:
        return
    for c in _containers(props)[1]:
        resources = c.get("resources") or {}
        for bound in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(bound) or {})
            if missing:
                yield f"container {c.get('name')}: {bound} must set {sorted(missing)}"
        for probe in ("readinessProbe", "livenessProbe"):
            if not c.get(probe):
                yield f"container {c.get('name')}: {probe} is missing"


def image_by_digest(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    if kind in WORKLOADS:
        images = [c.get("image") or "" for c in _containers(props)[1]]
    elif kind == "aws:lambda/function:Function" and props.get("packageType") == "Image":
        images = [props.get("imageUri") or ""]
    else:
        return
    for image in images:
        if "@sha256:" not in image:
            yield f"image {image!r} must be referenced by digest (…@sha256:…), never by a mutable tag alone"


def namespace_enforces_restricted(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    labels = (props.get("metadata") or {}).get("labels") or {}
    if (
        kind == "kubernetes:core/v1:Namespace"
        and labels.get("pod-security.kubernetes.io/enforce") != "restricted"
    ):
        yield "namespace must carry pod-security.kubernetes.io/enforce=restricted"


def no_public_function_url_in_protected_stacks(
    kind: str, props: Mapping[str, Any], stack: str
) -> Iterator[str]:
    auth = props.get("authorizationType")
    if kind == "aws:lambda/functionUrl:FunctionUrl" and stack in PROTECTED_STACKS and auth != "AWS_IAM":
        yield f"a Function URL in {stack} must use AWS_IAM authorization, not {auth}"


def no_open_load_balancer_in_protected_stacks(
    kind: str, props: Mapping[str, Any], stack: str
) -> Iterator[str]:
    """The model server answers plain HTTP without authentication: in prod a LoadBalancer is internal,
    or open only to named source ranges."""
    spec = props.get("spec") or {}
    if (
        kind != "kubernetes:core/v1:Service"
        or spec.get("type") != "LoadBalancer"
        or stack not in PROTECTED_STACKS
    ):
        return
    annotations = (props.get("metadata") or {}).get("annotations") or {}
    scheme = annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme", "internet-facing")
    if scheme != "internal" and not spec.get("loadBalancerSourceRanges"):
        yield (
            f"a LoadBalancer Service in {stack} must be internal or limited by loadBalancerSourceRanges: "
            "the model answers unauthenticated plain HTTP"
        )


def no_unauthenticated_http_api_in_protected_stacks(
    kind: str, props: Mapping[str, Any], stack: str
) -> Iterator[str]:
    auth = props.get("authorizationType") or "NONE"
    if kind == "aws:apigatewayv2/route:Route" and stack in PROTECTED_STACKS and auth == "NONE":
        yield f"an HTTP API route in {stack} must be authorized (AWS_IAM, JWT, a custom authorizer), not NONE"


def log_retention_set(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    if kind == "aws:cloudwatch/logGroup:LogGroup" and not props.get("retentionInDays"):
        yield "log group must set retentionInDays (logs are otherwise kept, and billed, forever)"


def reserved_concurrency_set(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    if kind == "aws:lambda/function:Function" and (props.get("reservedConcurrentExecutions") or 0) < 1:
        yield "function must set reservedConcurrentExecutions (a cap on cost and blast radius)"


def _statements(document: Any) -> list[Mapping[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document or {}
    statements = parsed.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def no_wildcard_actions(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    documents = {
        "aws:iam/rolePolicy:RolePolicy": [props.get("policy")],
        "aws:iam/policy:Policy": [props.get("policy")],
        "aws:iam/role:Role": [p.get("policy") for p in props.get("inlinePolicies") or []],
    }.get(kind, [])
    for document in documents:
        for statement in _statements(document):
            actions = statement.get("Action", [])
            for action in [actions] if isinstance(actions, str) else actions:
                if statement.get("Effect") == "Allow" and "*" in action:
                    yield f"IAM action {action!r} is a wildcard: name each action"


def lambda_memory_cost(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    if kind == "aws:lambda/function:Function" and (props.get("memorySize") or 0) > MEMORY_ADVISORY_MB:
        yield f"memory {props['memorySize']:.0f} MB is above {MEMORY_ADVISORY_MB} MB: see `make compare`"


def provisioned_concurrency_cost(kind: str, props: Mapping[str, Any], stack: str) -> Iterator[str]:
    count = props.get("provisionedConcurrentExecutions") or 0
    if (
        kind == "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
        and count > PROVISIONED_ADVISORY
    ):
        yield f"{count:.0f} provisioned executions are billed around the clock: check `make compare` first"


def stack_of(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::<type>::<name>."""
    return urn.split(":", 3)[2].split("::", 1)[0] if urn.startswith("urn:pulumi:") else ""


def validator(check: Check) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props, stack_of(args.urn)):
            report_violation(message, None)

    return validate


def policy(name: str, description: str, check: Check, level: EnforcementLevel) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, validate=validator(check), enforcement_level=level
    )


MANDATORY: dict[str, tuple[str, Check]] = {
    "restricted-pod-profile": ("Pods meet the Pod Security Standards' restricted profile.", restricted_pod),
    "resources-and-probes": (
        "Containers set requests, limits, readiness and liveness.",
        resources_and_probes,
    ),
    "image-by-digest": ("Images are deployed by digest.", image_by_digest),
    "namespace-enforces-restricted": (
        "Namespaces enforce the restricted profile.",
        namespace_enforces_restricted,
    ),
    "no-public-function-url-in-prod": (
        "No unauthenticated Function URL in prod.",
        no_public_function_url_in_protected_stacks,
    ),
    "no-open-load-balancer-in-prod": (
        "No LoadBalancer open to any source in prod.",
        no_open_load_balancer_in_protected_stacks,
    ),
    "no-unauthenticated-http-api-in-prod": (
        "No unauthenticated HTTP API route in prod.",
        no_unauthenticated_http_api_in_protected_stacks,
    ),
    "log-retention-set": ("Log groups set a retention.", log_retention_set),
    "reserved-concurrency-set": ("Functions set reserved concurrency.", reserved_concurrency_set),
    "no-wildcard-iam-actions": ("IAM policies name their actions.", no_wildcard_actions),
}
ADVISORY: dict[str, tuple[str, Check]] = {
    "lambda-memory-cost": ("Function memory above the advisory bound.", lambda_memory_cost),
    "provisioned-concurrency-cost": ("Many provisioned executions.", provisioned_concurrency_cost),
}
POLICIES = [
    policy(name, text, check, EnforcementLevel.MANDATORY) for name, (text, check) in MANDATORY.items()
] + [policy(name, text, check, EnforcementLevel.ADVISORY) for name, (text, check) in ADVISORY.items()]

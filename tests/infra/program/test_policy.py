"""The policy pack: each rule against fabricated resources, and every environment's real ones."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from offline.mocks import Run
from pulumi_policy import EnforcementLevel, ResourceValidationArgs

from tests.infra.conftest import ENVS, INFRA

sys.path.insert(0, str(INFRA / "policy"))
import rules

BY_NAME = {p.name: p for p in rules.POLICIES}


def violations(policy_name: str, resource_type: str, props: dict[str, Any], stack: str = "prod") -> list[str]:
    args = ResourceValidationArgs(
        resource_type, props, f"urn:pulumi:{stack}::twinserve::{resource_type}::x", "x", None, None
    )
    found: list[str] = []
    BY_NAME[policy_name].validate(args, lambda message, urn: found.append(message))
    return found


def resource(run: Run, type_: str) -> dict[str, Any]:
    """The one resource of a type, leaving aside a shadow phase's (prod declares its Service)."""
    (found,) = [r for r in run.of_type(type_) if "shadow" not in r.name]
    return copy.deepcopy(found.inputs)


@pytest.mark.parametrize("env_name", ENVS)
def test_every_environment_passes_every_rule(run_stack: Callable[..., Run], env_name: str) -> None:
    run: Run = run_stack(env_name)
    found = {
        (policy.name, r.name, message)
        for r in run.resources
        for policy in rules.POLICIES
        for message in violations(policy.name, r.type, r.inputs, env_name)
    }
    assert found == set()


def _container(props: dict) -> dict:
    return props["spec"]["template"]["spec"]["containers"][0]


def _pod(props: dict) -> dict:
    return props["spec"]["template"]["spec"]


DEPLOYMENT = "kubernetes:apps/v1:Deployment"
BREAKS: list[tuple[str, str, Callable[[dict], object], str]] = [
    (
        "restricted-pod-profile",
        DEPLOYMENT,
        lambda p: _container(p)["securityContext"].update(runAsNonRoot=False),
        "runAsNonRoot must be true",
    ),
    (
        "restricted-pod-profile",
        DEPLOYMENT,
        lambda p: (
            _container(p)["securityContext"].update(runAsUser=0),
            _pod(p)["securityContext"].update(runAsUser=0),
        ),
        "runAsUser must be a numeric UID of 10000 or more",
    ),
    (
        "restricted-pod-profile",
        DEPLOYMENT,
        lambda p: _container(p)["securityContext"].pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation must be false",
    ),
    (
        "restricted-pod-profile",
        DEPLOYMENT,
        lambda p: _container(p)["securityContext"].update(capabilities={}),
        "capabilities must drop ALL",
    ),
    (
        "restricted-pod-profile",
        DEPLOYMENT,
        lambda p: (
            _container(p)["securityContext"].pop("seccompProfile"),
            _pod(p)["securityContext"].pop("seccompProfile"),
        ),
        "seccompProfile must be RuntimeDefault",
    ),
    (
        "restricted-pod-profile",
        DEPLOYMENT,
        lambda p: _container(p)["securityContext"].update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem must be true",
    ),
    (
        "resources-and-probes",
        DEPLOYMENT,
        lambda p: _container(p)["resources"].pop("limits"),
        "limits must set ['cpu', 'memory']",
    ),
    (
        "resources-and-probes",
        DEPLOYMENT,
        lambda p: _container(p).pop("livenessProbe"),
        "livenessProbe is missing",
    ),
    (
        "image-by-digest",
        DEPLOYMENT,
        lambda p: _container(p).update(image="registry/twinserve:latest"),
        "must be referenced by digest",
    ),
    (
        "namespace-enforces-restricted",
        "kubernetes:core/v1:Namespace",
        lambda p: p["metadata"]["labels"].update({"pod-security.kubernetes.io/enforce": "baseline"}),
        "must carry pod-security.kubernetes.io/enforce=restricted",
    ),
    (
        "no-public-function-url-in-prod",
        "aws:lambda/functionUrl:FunctionUrl",
        lambda p: p.update(authorizationType="NONE"),
        "must use AWS_IAM authorization, not NONE",
    ),
    (
        "no-open-load-balancer-in-prod",
        "kubernetes:core/v1:Service",
        lambda p: p["metadata"]["annotations"].update(
            {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}
        ),
        "must be internal or limited by loadBalancerSourceRanges",
    ),
    (
        "log-retention-set",
        "aws:cloudwatch/logGroup:LogGroup",
        lambda p: p.pop("retentionInDays"),
        "must set retentionInDays",
    ),
    (
        "reserved-concurrency-set",
        "aws:lambda/function:Function",
        lambda p: p.pop("reservedConcurrentExecutions"),
        "must set reservedConcurrentExecutions",
    ),
    (
        "no-wildcard-iam-actions",
        "aws:iam/rolePolicy:RolePolicy",
        lambda p: p.update(
            policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
        ),
        "IAM action 's3:*' is a wildcard",
    ),
]


@pytest.mark.parametrize(
    ("policy_name", "type_", "breaking", "message"), BREAKS, ids=[b[3][:40] for b in BREAKS]
)
def test_a_broken_resource_fails_its_mandatory_rule(
    run_stack: Callable[..., Run],
    policy_name: str,
    type_: str,
    breaking: Callable[[dict], object],
    message: str,
) -> None:
    props = resource(run_stack("prod"), type_)
    assert violations(policy_name, type_, props) == []
    breaking(props)
    found = violations(policy_name, type_, props)
    assert found, f"{policy_name} let the broken {type_} through"
    assert any(message in m for m in found), found


def test_prods_http_api_must_authorize_and_an_open_one_is_refused(run_stack: Callable[..., Run]) -> None:
    route = "aws:apigatewayv2/route:Route"
    props = resource(run_stack("prod", lambdaEndpoint="http-api"), route)
    assert props["authorizationType"] == "AWS_IAM"  # the default
    assert violations("no-unauthenticated-http-api-in-prod", route, props) == []
    props["authorizationType"] = "NONE"
    (found,) = violations("no-unauthenticated-http-api-in-prod", route, props)
    assert "an HTTP API route in prod must be authorized" in found
    assert violations("no-unauthenticated-http-api-in-prod", route, props, "dev") == []


def test_a_load_balancer_open_to_chosen_sources_passes_in_prod(run_stack: Callable[..., Run]) -> None:
    service = "kubernetes:core/v1:Service"
    run = run_stack(
        "prod",
        kubernetesLoadBalancerScheme="internet-facing",
        kubernetesLoadBalancerSourceRanges='["203.0.113.0/24"]',
    )
    props = resource(run, service)
    assert (
        props["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"]
        == "internet-facing"
    )
    assert props["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert violations("no-open-load-balancer-in-prod", service, props) == []


def test_every_mandatory_rule_is_exercised_by_a_breaking_case() -> None:
    mandatory = {p.name for p in rules.POLICIES if p.enforcement_level == EnforcementLevel.MANDATORY}
    assert mandatory - {"no-unauthenticated-http-api-in-prod"} == {name for name, *_ in BREAKS}


def test_a_public_url_is_allowed_outside_prod_and_an_image_function_needs_a_digest() -> None:
    url = {"authorizationType": "NONE"}
    assert (
        violations("no-public-function-url-in-prod", "aws:lambda/functionUrl:FunctionUrl", url, "dev") == []
    )
    function = {"packageType": "Image", "imageUri": "123.dkr.ecr.eu-west-1.amazonaws.com/twinserve:main"}
    assert violations("image-by-digest", "aws:lambda/function:Function", function)


@pytest.mark.parametrize(
    ("policy_name", "type_", "props", "flagged"),
    [
        ("lambda-memory-cost", "aws:lambda/function:Function", {"memorySize": 4096.0}, True),
        ("lambda-memory-cost", "aws:lambda/function:Function", {"memorySize": 1024.0}, False),
        (
            "provisioned-concurrency-cost",
            "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
            {"provisionedConcurrentExecutions": 50.0},
            True,
        ),
    ],
)
def test_advisory_cost_rules(policy_name: str, type_: str, props: dict, flagged: bool) -> None:
    assert bool(violations(policy_name, type_, props)) == flagged
    assert BY_NAME[policy_name].enforcement_level == EnforcementLevel.ADVISORY


def test_the_pack_entry_point_registers_every_rule() -> None:
    source = (INFRA / "policy" / "__main__.py").read_text()
    assert 'PolicyPack(name="twinserve", policies=POLICIES)' in source
    assert (INFRA / "policy" / "PulumiPolicy.yaml").is_file()

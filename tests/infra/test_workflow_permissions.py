"""Every AWS call a workflow step makes is allowed by the role that step assumes.

The calls are derived from what each step runs (the smoke test against each stack's endpoints,
`docker push` to the repository, the CLI against the S3 state backend); the bootstrap's role
policies are read under mocks and evaluated as IAM evaluates Allow statements (action and
resource wildcards, StringEquals, StringLike and Bool conditions). AWS itself is the only final
word: see the note.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from offline import Run

from tests.infra.conftest import ENVS
from tests.infra.iam import ACCOUNT, REGION, STATE_BUCKET, STATE_KEY, Call, allows, role_policies

BUCKET, KEY = STATE_BUCKET, STATE_KEY
REPOSITORY = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/twinserve"


def state_calls(stack: str, *, writes: bool) -> list[Call]:
    """The CLI on an S3 backend: list and read the stack, decrypt its secrets; a preview writes only its
    lock, an up also the checkpoint, its history and backups."""
    stack_file = f"{BUCKET}/.pulumi/stacks/twinserve/{stack}.json"
    lock = f"{BUCKET}/.pulumi/locks/organization/twinserve/{stack}/0a1b.json"
    calls: list[Call] = [
        ("s3:ListBucket", BUCKET, {}),
        ("s3:GetObject", stack_file, {}),
        ("kms:Decrypt", KEY, {}),
        ("s3:PutObject", lock, {}),
        ("s3:DeleteObject", lock, {}),
    ]
    if writes:
        history = f"{BUCKET}/.pulumi/history/twinserve/{stack}/{stack}-1.history.json"
        calls += [("s3:PutObject", stack_file, {}), ("s3:PutObject", history, {}), ("kms:Encrypt", KEY, {})]
        calls += [("kms:GenerateDataKey", KEY, {})]
    return calls


def smoke_calls(run: Run, stack: str) -> list[Call]:
    """`make smoke`: the outputs from the state, then SigV4-signed requests to AWS_IAM Function URLs,
    which Lambda authorizes as InvokeFunctionUrl and, for URLs created since October 2025, also as
    InvokeFunction with `lambda:InvokedViaFunctionUrl` true (Lambda guide, "Control access to
    Lambda function URLs")."""
    calls = [
        c
        for c in state_calls(stack, writes=False)
        if c[0] in ("s3:ListBucket", "s3:GetObject", "kms:Decrypt")
    ]
    for url in run.of_type("aws:lambda/functionUrl:FunctionUrl"):
        if url.inputs["authorizationType"] == "AWS_IAM":
            function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{url.inputs['functionName']}"
            qualified = f"{function}:{url.inputs['qualifier']}"
            calls.append(("lambda:InvokeFunctionUrl", qualified, {"lambda:FunctionUrlAuthType": "AWS_IAM"}))
            calls.append(("lambda:InvokeFunction", qualified, {"lambda:InvokedViaFunctionUrl": "true"}))
    return calls


PUSH_CALLS: list[Call] = [
    ("ecr:GetAuthorizationToken", "*", {}),
    *[
        (action, REPOSITORY, {})
        for action in (
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
            "ecr:BatchGetImage",
            "ecr:DescribeImages",
        )
    ],
]


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, Any]]:
    return role_policies()


@pytest.mark.parametrize("env", ENVS)
def test_the_deploy_role_may_do_everything_the_up_and_smoke_steps_do(
    env: str, run_stack: Callable[..., Run], policies: dict[str, dict[str, Any]]
) -> None:
    calls = state_calls(env, writes=True) + smoke_calls(run_stack(env), env)
    invokes = {action for action, _, _ in calls if action.startswith("lambda:Invoke")}
    assert invokes == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}  # AWS_IAM URLs by default
    assert [call for call in calls if not allows(policies["deploy"], call)] == []


@pytest.mark.parametrize("env", ENVS)
def test_the_preview_role_may_read_and_lock_and_nothing_more(
    env: str, policies: dict[str, dict[str, Any]]
) -> None:
    assert [call for call in state_calls(env, writes=False) if not allows(policies["preview"], call)] == []
    checkpoint = f"{BUCKET}/.pulumi/stacks/twinserve/{env}.json"
    assert not allows(policies["preview"], ("s3:PutObject", checkpoint, {}))


def test_the_publish_role_may_push_the_image_and_nothing_more(policies: dict[str, dict[str, Any]]) -> None:
    assert [call for call in PUSH_CALLS if not allows(policies["publish"], call)] == []
    assert not allows(
        policies["publish"], ("s3:GetObject", f"{BUCKET}/.pulumi/stacks/twinserve/dev.json", {})
    )


def test_the_smoke_grant_is_only_for_iam_authenticated_urls_of_our_functions(
    policies: dict[str, dict[str, Any]],
) -> None:
    ours = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:twinserve-iris-dev:live"
    theirs = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:billing:live"
    deploy = policies["deploy"]
    assert allows(deploy, ("lambda:InvokeFunctionUrl", ours, {"lambda:FunctionUrlAuthType": "AWS_IAM"}))
    assert not allows(deploy, ("lambda:InvokeFunctionUrl", ours, {"lambda:FunctionUrlAuthType": "NONE"}))
    assert not allows(deploy, ("lambda:InvokeFunctionUrl", theirs, {"lambda:FunctionUrlAuthType": "AWS_IAM"}))
    via_url = {"lambda:InvokedViaFunctionUrl": "true"}
    assert allows(deploy, ("lambda:InvokeFunction", ours, via_url))
    assert not allows(deploy, ("lambda:InvokeFunction", ours, {}))  # a direct Invoke API call
    assert not allows(deploy, ("lambda:InvokeFunction", ours, {"lambda:InvokedViaFunctionUrl": "false"}))
    assert not allows(deploy, ("lambda:InvokeFunction", theirs, via_url))
    assert json.dumps(policies["preview"]).count("lambda:Invoke") == 0


WRITES = (
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
    "cloudwatch:DeleteAlarms",
)


def alarm_calls(run: Run) -> tuple[list[Call], list[Call]]:
    """What the AWS provider calls for each MetricAlarm: PutMetricAlarm (with its tags) to create or
    update, DescribeAlarms and ListTagsForResource to read, TagResource and DeleteAlarms on change; the
    reads alone in a preview's refresh."""
    writes, reads = [], []
    for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm.inputs['name']}"
        reads += [("cloudwatch:DescribeAlarms", arn, {}), ("cloudwatch:ListTagsForResource", arn, {})]
        writes += [(action, arn, {}) for action in WRITES]
    return writes, reads


@pytest.mark.parametrize("env", ENVS)
def test_the_deploy_role_may_manage_the_alarms_and_the_preview_role_only_read_them(
    env: str, run_stack: Callable[..., Run], policies: dict[str, dict[str, Any]]
) -> None:
    writes, reads = alarm_calls(run_stack(env))
    assert len(reads) == 6  # three alarms on the live alias
    assert [call for call in writes + reads if not allows(policies["deploy"], call)] == []
    assert [call for call in reads if not allows(policies["preview"], call)] == []
    assert [call for call in writes if allows(policies["preview"], call)] == []
    elsewhere = ("cloudwatch:PutMetricAlarm", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:billing", {})
    assert not allows(policies["deploy"], elsewhere)


def test_the_deploy_role_may_run_a_rollout_step_on_lambda(
    run_stack: Callable[..., Run], policies: dict[str, dict[str, Any]]
) -> None:
    """A canary step: the alias weights and the canary alias with its URL, the canary's alarms
    managed and their states read by the bake, and the smoke test of the canary alias's URL."""
    run = run_stack("prod", lambdaStableVersion="4", lambdaCanaryPercent="10")
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:twinserve-iris-prod"
    aliases = [
        (action, f"{function}:{alias}", {})
        for alias in ("live", "canary")
        for action in (
            "lambda:CreateAlias",
            "lambda:UpdateAlias",
            "lambda:GetAlias",
            "lambda:DeleteAlias",
            "lambda:CreateFunctionUrlConfig",
            "lambda:GetFunctionUrlConfig",
            "lambda:DeleteFunctionUrlConfig",
        )
    ]
    writes, reads = alarm_calls(run)
    assert len(reads) == 12  # three alarms on the live alias, three on the canary's version
    calls = aliases + writes + reads + smoke_calls(run, "prod")
    assert any(call[1] == f"{function}:canary" for call in smoke_calls(run, "prod"))
    assert [call for call in calls if not allows(policies["deploy"], call)] == []


def test_the_deploy_role_may_manage_the_http_apis_alarm(
    run_stack: Callable[..., Run], policies: dict[str, dict[str, Any]]
) -> None:
    writes, reads = alarm_calls(run_stack("dev", lambdaEndpoint="http-api"))
    assert len(reads) == 8  # the live alias's three and the API's 5xx ratio
    assert [call for call in writes + reads if not allows(policies["deploy"], call)] == []

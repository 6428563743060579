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
from offline.mocks import Run

from tests.infra.conftest import ENVS
from tests.infra.iam import ACCOUNT, REGION, STATE_BUCKET, STATE_KEY, Call, allows, role_policies

BUCKET, KEY = STATE_BUCKET, STATE_KEY
REPOSITORY = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/twinserve"


VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}


def secrets_key(stack: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/secrets-{stack}"  # infra/offline/mocks.py's mocked ARN


def state_calls(stack: str, *, writes: bool) -> list[Call]:
    """The CLI on an S3 backend: list and read the stack (S3 decrypting it with the bucket's key), and
    decrypt its secrets with the stack's own key; a preview writes only its lock, an up also the
    checkpoint, its history and backups."""
    stack_file = f"{BUCKET}/.pulumi/stacks/twinserve/{stack}.json"
    lock = f"{BUCKET}/.pulumi/locks/organization/twinserve/{stack}/0a1b.json"
    calls: list[Call] = [
        ("s3:ListBucket", BUCKET, {}),
        ("s3:GetObject", f"{BUCKET}/.pulumi/meta.yaml", {}),
        ("s3:GetObject", stack_file, {}),
        ("kms:Decrypt", KEY, VIA_S3),
        ("kms:Decrypt", secrets_key(stack), {}),
        ("s3:PutObject", lock, {}),
        ("s3:DeleteObject", lock, {}),
    ]
    if writes:
        history = f"{BUCKET}/.pulumi/history/twinserve/{stack}/{stack}-1.history.json"
        backup = f"{BUCKET}/.pulumi/backups/twinserve/{stack}/{stack}.1.json"
        calls += [("s3:PutObject", f"{stack_file}.bak", {}), ("s3:PutObject", backup, {})]
        calls += [("s3:PutObject", stack_file, {}), ("s3:PutObject", history, {})]
        calls += [("kms:GenerateDataKey", KEY, VIA_S3), ("kms:Encrypt", secrets_key(stack), {})]
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
    assert [call for call in calls if not allows(policies[f"deploy-{env}"], call)] == []


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_the_preview_role_may_read_and_lock_the_previewed_stacks_and_nothing_more(
    env: str, policies: dict[str, dict[str, Any]]
) -> None:
    assert [call for call in state_calls(env, writes=False) if not allows(policies["preview"], call)] == []
    checkpoint = f"{BUCKET}/.pulumi/stacks/twinserve/{env}.json"
    assert not allows(policies["preview"], ("s3:PutObject", checkpoint, {}))


def test_a_pull_request_can_neither_read_prods_state_nor_decrypt_its_secrets_nor_touch_its_lock(
    policies: dict[str, dict[str, Any]],
) -> None:
    """The PR's own code runs with the preview role: prod's state, secrets and lock stay out of reach
    (prod is previewed offline in the plan, and for real by the deploy after the merge)."""
    preview = policies["preview"]
    # Listing names, the backend's meta.yaml and S3's use of the bucket key (for the previewed stacks'
    # objects) are shared; everything that is prod's is refused.
    shared = {
        ("s3:ListBucket", BUCKET),
        ("s3:GetObject", f"{BUCKET}/.pulumi/meta.yaml"),
        ("kms:Decrypt", KEY),
    }
    for call in state_calls("prod", writes=False):
        if call[:2] not in shared:
            assert not allows(preview, call), call
    assert not allows(preview, ("kms:Decrypt", KEY, {}))  # the bucket's key, directly: never


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
    deploy = policies["deploy-dev"]
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
    assert [call for call in writes + reads if not allows(policies[f"deploy-{env}"], call)] == []
    assert [call for call in reads if not allows(policies["preview"], call)] == []
    assert [call for call in writes if allows(policies["preview"], call)] == []
    elsewhere = ("cloudwatch:PutMetricAlarm", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:billing", {})
    assert not allows(policies[f"deploy-{env}"], elsewhere)
    for other in {"dev", "staging", "prod"} - {env}:
        assert [call for call in writes if allows(policies[f"deploy-{other}"], call)] == []


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
    assert [call for call in calls if not allows(policies["deploy-prod"], call)] == []
    assert [call for call in aliases if allows(policies["deploy-dev"], call)] == []


def test_the_deploy_role_may_manage_the_http_apis_alarm(
    run_stack: Callable[..., Run], policies: dict[str, dict[str, Any]]
) -> None:
    writes, reads = alarm_calls(run_stack("dev", lambdaEndpoint="http-api"))
    assert len(reads) == 8  # the live alias's three and the API's 5xx ratio
    assert [call for call in writes + reads if not allows(policies["deploy-dev"], call)] == []


IAM = f"arn:aws:iam::{ACCOUNT}"
LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
BOUNDARY = {"iam:PermissionsBoundary": f"{IAM}:policy/twinserve-function-boundary"}
PROD_API = f"arn:aws:apigateway:{REGION}::/apis/a1b2c3"
LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
ARCHIVE = f"arn:aws:s3:::twinserve-capture-{ACCOUNT}-{REGION}-prod"


@pytest.mark.parametrize(
    ("role", "call"),
    [
        # The deploy role granting itself (or the other bootstrap roles) the account.
        ("deploy-dev", ("iam:PutRolePolicy", f"{IAM}:role/twinserve-deploy-dev", {})),
        ("deploy-prod", ("iam:PutRolePolicy", f"{IAM}:role/twinserve-deploy-prod", {})),
        ("deploy-dev", ("iam:UpdateAssumeRolePolicy", f"{IAM}:role/twinserve-deploy-prod", {})),
        ("deploy-dev", ("iam:AttachRolePolicy", f"{IAM}:role/twinserve-publish", {})),
        ("deploy-dev", ("iam:DeleteRole", f"{IAM}:role/twinserve-preview", {})),
        # A backdoor role: outside the environment's path, or inside it without the boundary.
        ("deploy-dev", ("iam:CreateRole", f"{IAM}:role/twinserve-backdoor", BOUNDARY)),
        ("deploy-dev", ("iam:CreateRole", f"{IAM}:role/twinserve/dev/backdoor", {})),
        ("deploy-dev", ("iam:CreateRole", f"{IAM}:role/twinserve/prod/x", BOUNDARY)),
        ("deploy-dev", ("iam:DeleteRolePermissionsBoundary", f"{IAM}:role/twinserve/dev/x", {})),
        ("deploy-dev", ("iam:CreatePolicyVersion", f"{IAM}:policy/twinserve-function-boundary", {})),
        (
            "deploy-dev",
            ("iam:PassRole", f"{IAM}:role/twinserve/prod/x", {"iam:PassedToService": "lambda.amazonaws.com"}),
        ),
        # Reaching past the environment: prod's function, another team's, any HTTP API.
        ("deploy-dev", ("lambda:UpdateFunctionCode", f"{LAMBDA}:twinserve-iris-prod", {})),
        ("deploy-dev", ("lambda:UpdateAlias", f"{LAMBDA}:twinserve-iris-prod:live", {})),
        ("deploy-prod", ("lambda:UpdateFunctionCode", f"{LAMBDA}:twinserve-other-team-app", {})),
        ("deploy-dev", ("apigateway:DELETE", PROD_API, {"aws:ResourceTag/twinserve:environment": "prod"})),
        ("deploy-dev", ("apigateway:DELETE", f"arn:aws:apigateway:{REGION}::/apis/other", {})),
        ("deploy-dev", ("apigateway:POST", f"arn:aws:apigateway:{REGION}::/apis", {})),
        ("deploy-dev", ("s3:PutObject", f"{BUCKET}/.pulumi/stacks/twinserve/prod.json", {})),
        ("deploy-dev", ("s3:DeleteObject", f"{BUCKET}/.pulumi/locks/organization/twinserve/prod/x.json", {})),
        ("deploy-dev", ("kms:Decrypt", secrets_key("prod"), {})),
        ("deploy-staging", ("s3:GetObject", f"{BUCKET}/.pulumi/stacks/twinserve/prod.json", {})),
        # The drift report's role: read records, and nothing it could use to reach further.
        ("drift", ("logs:PutLogEvents", f"{LOGS}/aws/lambda/twinserve-iris-prod:log-stream:x", {})),
        ("drift", ("logs:DeleteLogGroup", f"{LOGS}/aws/lambda/twinserve-iris-prod", {})),
        ("drift", ("logs:PutSubscriptionFilter", f"{LOGS}/aws/lambda/twinserve-iris-prod", {})),
        ("drift", ("logs:FilterLogEvents", f"{LOGS}/aws/lambda/payments-api", {})),
        ("drift", ("logs:FilterLogEvents", f"{LOGS}/aws/apigateway/twinserve-iris-prod", {})),
        ("drift", ("lambda:InvokeFunction", f"{LAMBDA}:twinserve-iris-prod", {})),
        ("drift", ("s3:GetObject", f"{BUCKET}/.pulumi/stacks/twinserve/prod.json", {})),
        ("drift", ("kms:Decrypt", secrets_key("prod"), {})),
        ("drift", ("iam:PutRolePolicy", f"{IAM}:role/twinserve-drift", {})),
        # …and the capture archives: read records, never write, delete or reconfigure them.
        ("drift", ("s3:PutObject", f"{ARCHIVE}/iris/records/2026/12/03/10/forged.gz", {})),
        ("drift", ("s3:DeleteObject", f"{ARCHIVE}/iris/records/2026/12/03/10/x.gz", {})),
        ("drift", ("s3:PutLifecycleConfiguration", ARCHIVE, {})),
        ("drift", ("s3:GetObject", f"{ARCHIVE}/iris/errors/processing-failed/x.gz", {})),
        ("drift", ("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-s3", {})),
        (
            "drift",
            (
                "kms:Decrypt",
                f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-s3",
                {"kms:ViaService": f"s3.{REGION}.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": BUCKET},
            ),
        ),
    ],
)
def test_every_escalation_the_review_found_is_denied(
    policies: dict[str, dict[str, Any]], role: str, call: Call
) -> None:
    assert not allows(policies[role], call)


def test_each_environments_own_changes_are_allowed(policies: dict[str, dict[str, Any]]) -> None:
    """The counterparts of the denials: within its own environment, with the boundary and its tag."""
    dev = policies["deploy-dev"]
    assert allows(dev, ("iam:CreateRole", f"{IAM}:role/twinserve/dev/twinserve-iris-dev-a1", BOUNDARY))
    assert allows(dev, ("iam:PutRolePolicy", f"{IAM}:role/twinserve/dev/twinserve-iris-dev-a1", {}))
    assert allows(dev, ("lambda:UpdateFunctionCode", f"{LAMBDA}:twinserve-iris-dev", {}))
    assert allows(dev, ("lambda:UpdateAlias", f"{LAMBDA}:twinserve-iris-dev:live", {}))
    create = (
        "apigateway:POST",
        f"arn:aws:apigateway:{REGION}::/apis",
        {"aws:RequestTag/twinserve:environment": "dev"},
    )
    assert allows(dev, create)
    assert allows(dev, ("apigateway:DELETE", PROD_API, {"aws:ResourceTag/twinserve:environment": "dev"}))


def test_a_function_role_can_never_hold_more_than_the_boundary(run_stack: Callable[..., Run]) -> None:
    """Every role the program creates sits under its environment's path with the bootstrap's boundary,
    whose allowances are the function's logs, traces and queue, and the capture archive's writes."""
    from tests.infra.iam import bootstrap

    for env in ENVS:
        (function_role,) = run_stack(env).of_type("aws:iam/role:Role")
        assert function_role.inputs["path"] == f"/twinserve/{env}/"
        assert function_role.inputs["permissionsBoundary"] == BOUNDARY["iam:PermissionsBoundary"]
    (boundary,) = bootstrap().of_type("aws:iam/policy:Policy")
    assert boundary.inputs["name"] == "twinserve-function-boundary"
    actions = {a for s in json.loads(boundary.inputs["policy"])["Statement"] for a in s["Action"]}
    assert actions == {
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
        "sqs:SendMessage",
        # a shadow phase's invoke of the shadow alias (tests/infra/program/test_lambda_service.py)
        "lambda:InvokeFunction",
        # the capture archive's hops (tests/infra/program/test_capture_archive.py)
        "firehose:PutRecord", "firehose:PutRecordBatch", "s3:PutObject", "s3:AbortMultipartUpload",
        "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads", "kms:GenerateDataKey",
        "kms:Decrypt",
    }  # fmt: skip
    # Never a read of what is stored, anywhere.
    assert not {a for a in actions if a.startswith("s3:Get") and a != "s3:GetBucketLocation"}


def test_the_drift_role_may_read_every_functions_records(policies: dict[str, dict[str, Any]]) -> None:
    """What `make drift` calls for each environment the workflow's matrix names: FilterLogEvents on the
    function's log group (its ARN with and without the `:*` that some of the service's calls carry)."""
    for env in ENVS:
        group = f"{LOGS}/aws/lambda/twinserve-iris-{env}"
        for resource in (group, f"{group}:*"):
            assert allows(policies["drift"], ("logs:FilterLogEvents", resource, {}))
        # …and what `make drift ARCHIVE=…` calls on a capture archive.
        archive = f"arn:aws:s3:::twinserve-capture-{ACCOUNT}-{REGION}-{env}"
        via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": archive}
        for call in [
            ("s3:ListBucket", archive, {}),
            ("s3:GetObject", f"{archive}/iris/records/2026/12/03/10/twinserve-iris-{env}-capture-1.gz", {}),
            ("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-s3", via_s3),
        ]:
            assert allows(policies["drift"], call), call

"""captureArchive: the function's records through a subscription filter and a Firehose stream into the
bootstrap's capture bucket, each hop's role holding one right, checked with the permission evaluator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from offline.mocks import Run
from program.settings import SettingsError, from_config

from tests.infra.iam import ACCOUNT, REGION, Call, allows, bootstrap, permitted, role_policies

ARCHIVED = {"captureSampleRate": "0.1", "captureArchive": "true"}
IAM = f"arn:aws:iam::{ACCOUNT}"
LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda"
FIREHOSE = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream"
BOUNDARY = f"{IAM}:policy/twinserve-function-boundary"
S3_VIA = f"s3.{REGION}.amazonaws.com"


def bucket(env: str) -> str:
    return f"arn:aws:s3:::twinserve-capture-{ACCOUNT}-{REGION}-{env}"


@pytest.fixture(scope="module")
def the_bootstrap() -> Run:
    return bootstrap()


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, Any]]:
    return role_policies()


def boundary_of(run: Run) -> dict[str, Any]:
    (boundary,) = run.of_type("aws:iam/policy:Policy")
    return json.loads(boundary.inputs["policy"])


def bucket_policy(run: Run, env: str) -> dict[str, Any]:
    (policy,) = [r for r in run.of_type("aws:s3/bucketPolicy:BucketPolicy") if r.name == f"capture-{env}"]
    return json.loads(policy.inputs["policy"])


def roles(run: Run) -> dict[str, tuple[dict, dict, dict]]:
    """The archive's roles by hop: their inputs, trust and one inline policy."""
    found = {}
    for hop in ("delivery", "subscription"):
        (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith(f"-{hop}-role")]
        (policy,) = [
            r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith(f"-{hop}-policy")
        ]
        found[hop] = (
            role.inputs,
            json.loads(role.inputs["assumeRolePolicy"]),
            json.loads(policy.inputs["policy"]),
        )
    return found


def test_no_archive_unless_a_stack_asks(run_stack: Callable[..., Run], env: str) -> None:
    run = run_stack(env, captureSampleRate="1")
    assert not run.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    assert not run.of_type("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter")
    assert run.outputs["captureArchive"] is None


def test_records_alone_reach_the_environment_s_bucket_as_json_lines(
    run_stack: Callable[..., Run], the_bootstrap: Run
) -> None:
    from drift.records import CLOUDWATCH_FILTER

    run = run_stack("staging", **ARCHIVED)
    subscription = run.one("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter").inputs
    assert subscription["logGroup"] == "/aws/lambda/twinserve-iris-staging"
    assert subscription["filterPattern"] == CLOUDWATCH_FILTER  # what `make drift` reads: records alone
    stream = run.one("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream").inputs
    assert stream["name"] == "twinserve-iris-staging-capture"
    assert stream["serverSideEncryption"]["enabled"] is True
    s3 = stream["extendedS3Configuration"]
    # The bucket the bootstrap made for this environment, by the same name.
    made = {b.inputs["bucket"] for b in the_bootstrap.of_type("aws:s3/bucket:Bucket")}
    assert s3["bucketArn"].removeprefix("arn:aws:s3:::") in made
    assert s3["bucketArn"] == bucket("staging")
    assert s3["prefix"].startswith("iris/records/")
    assert s3["errorOutputPrefix"].startswith("iris/errors/")
    assert s3["compressionFormat"] == "GZIP"
    processors = [p["type"] for p in s3["processingConfiguration"]["processors"]]
    assert processors == ["Decompression", "CloudWatchLogProcessing", "AppendDelimiterToRecord"]
    assert run.outputs["captureArchive"] == f"s3://twinserve-capture-{ACCOUNT}-{REGION}-staging/iris/records/"


def test_each_hop_s_role_sits_under_the_boundary_and_is_trusted_by_its_service_alone(
    run_stack: Callable[..., Run],
) -> None:
    found = roles(run_stack("prod", **ARCHIVED))
    for inputs, _, _ in found.values():
        assert inputs["path"] == "/twinserve/prod/"
        assert inputs["permissionsBoundary"] == BOUNDARY
    (delivery,) = found["delivery"][1]["Statement"]
    assert delivery["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    (subscription,) = found["subscription"][1]["Statement"]
    assert subscription["Principal"] == {"Service": "logs.amazonaws.com"}
    assert subscription["Condition"]["StringLike"]["aws:SourceArn"] == [
        f"{LOGS}/twinserve-iris-prod",
        f"{LOGS}/twinserve-iris-prod:*",
    ]


def test_the_archive_s_roles_can_do_their_one_thing_and_nothing_past_it(
    run_stack: Callable[..., Run], the_bootstrap: Run
) -> None:
    found = roles(run_stack("dev", **ARCHIVED))
    boundary, dev_bucket = boundary_of(the_bootstrap), bucket_policy(the_bootstrap, "dev")
    prod_bucket = bucket_policy(the_bootstrap, "prod")
    delivery_arn = f"{IAM}:role/twinserve/dev/twinserve-iris-dev-delivery-x1"
    caller = {"aws:PrincipalArn": delivery_arn}
    _, _, delivery = found["delivery"]
    own_object = f"{bucket('dev')}/iris/records/2026/12/03/10/twinserve-iris-dev-capture-1.gz"
    calls_it_makes: list[Call] = [
        ("s3:PutObject", own_object, caller),
        ("s3:PutObject", f"{bucket('dev')}/iris/errors/processing-failed/2026/12/03/x.gz", caller),
        ("s3:AbortMultipartUpload", own_object, caller),
        ("s3:ListBucket", bucket("dev"), caller),
        ("s3:GetBucketLocation", bucket("dev"), caller),
        (
            "kms:GenerateDataKey",
            f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-s3",
            {**caller, "kms:ViaService": S3_VIA, "kms:EncryptionContext:aws:s3:arn": bucket("dev")},
        ),
    ]
    for call in calls_it_makes:
        assert permitted(delivery, boundary, dev_bucket, call), call
    denied: list[tuple[Call, dict]] = [
        # another environment's bucket, or another model's prefix of its own
        (("s3:PutObject", f"{bucket('prod')}/iris/records/x.gz", caller), prod_bucket),
        (("s3:PutObject", f"{bucket('dev')}/payments/records/x.gz", caller), dev_bucket),
        # reading or deleting what is stored
        (("s3:GetObject", own_object, caller), dev_bucket),
        (("s3:DeleteObject", own_object, caller), dev_bucket),
        (("s3:PutLifecycleConfiguration", bucket("dev"), caller), dev_bucket),
        (("s3:PutBucketPolicy", bucket("dev"), caller), dev_bucket),
        # the key outside S3, or for another bucket
        (("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-s3", caller), dev_bucket),
        (
            (
                "kms:Decrypt",
                f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-s3",
                {**caller, "kms:ViaService": S3_VIA, "kms:EncryptionContext:aws:s3:arn": bucket("prod")},
            ),
            dev_bucket,
        ),
    ]
    for call, resource in denied:
        assert not permitted(delivery, boundary, resource, call), call
    _, _, subscription = found["subscription"]
    assert permitted(
        subscription, boundary, {}, ("firehose:PutRecordBatch", f"{FIREHOSE}/twinserve-iris-dev-capture", {})
    )
    for call in [
        ("firehose:PutRecordBatch", f"{FIREHOSE}/twinserve-iris-prod-capture", {}),
        ("firehose:DeleteDeliveryStream", f"{FIREHOSE}/twinserve-iris-dev-capture", {}),
        ("s3:PutObject", own_object, {}),
    ]:
        assert not permitted(subscription, boundary, {}, call), call


def test_another_environment_s_role_cannot_write_into_this_one_s_bucket_whatever_its_policy(
    the_bootstrap: Run,
) -> None:
    """A dev deploy may write any policy onto dev's roles, and the boundary admits every capture bucket:
    prod's bucket policy still refuses a dev role, and only its own environment's roles get through."""
    everything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    boundary, prod = boundary_of(the_bootstrap), bucket_policy(the_bootstrap, "prod")
    target = f"{bucket('prod')}/iris/records/forged.gz"
    writers = ("twinserve/dev/twinserve-iris-dev-delivery-x1", "twinserve/staging/x", "twinserve-deploy-prod")
    for writer in writers:
        call = ("s3:PutObject", target, {"aws:PrincipalArn": f"{IAM}:role/{writer}"})
        assert not permitted(everything, boundary, prod, call), writer
    own = (
        "s3:PutObject",
        target,
        {"aws:PrincipalArn": f"{IAM}:role/twinserve/prod/twinserve-iris-prod-delivery-x1"},
    )
    assert permitted(everything, boundary, prod, own)
    # Plain HTTP is refused to everyone.
    assert not permitted(everything, boundary, prod, (*own[:2], {**own[2], "aws:SecureTransport": "false"}))


def test_the_deploy_role_may_build_the_archive_of_its_own_environment_only(
    policies: dict[str, dict[str, Any]],
) -> None:
    dev = policies["deploy-dev"]
    own: list[Call] = [
        ("firehose:CreateDeliveryStream", f"{FIREHOSE}/twinserve-iris-dev-capture", {}),
        ("firehose:DescribeDeliveryStream", f"{FIREHOSE}/twinserve-iris-dev-capture", {}),
        ("firehose:DeleteDeliveryStream", f"{FIREHOSE}/twinserve-iris-dev-capture", {}),
        ("logs:PutSubscriptionFilter", f"{LOGS}/twinserve-iris-dev", {}),
        ("logs:DescribeSubscriptionFilters", f"{LOGS}/twinserve-iris-dev", {}),
        ("logs:DeleteSubscriptionFilter", f"{LOGS}/twinserve-iris-dev", {}),
        (
            "iam:CreateRole",
            f"{IAM}:role/twinserve/dev/twinserve-iris-dev-delivery-x1",
            {"iam:PermissionsBoundary": BOUNDARY},
        ),
        (
            "iam:PassRole",
            f"{IAM}:role/twinserve/dev/twinserve-iris-dev-delivery-x1",
            {"iam:PassedToService": "firehose.amazonaws.com"},
        ),
        (
            "iam:PassRole",
            f"{IAM}:role/twinserve/dev/twinserve-iris-dev-subscription-x1",
            {"iam:PassedToService": "logs.amazonaws.com"},
        ),
    ]
    assert [call for call in own if not allows(dev, call)] == []
    theirs: list[Call] = [
        ("firehose:CreateDeliveryStream", f"{FIREHOSE}/twinserve-iris-prod-capture", {}),
        ("firehose:UpdateDestination", f"{FIREHOSE}/twinserve-iris-prod-capture", {}),
        ("firehose:CreateDeliveryStream", f"{FIREHOSE}/exfiltrate", {}),
        ("logs:PutSubscriptionFilter", f"{LOGS}/twinserve-iris-prod", {}),
        ("logs:PutSubscriptionFilter", f"{LOGS}/payments-api", {}),
        ("iam:PassRole", f"{IAM}:role/twinserve/prod/x", {"iam:PassedToService": "firehose.amazonaws.com"}),
        # The buckets are the bootstrap's: no deploy creates, empties, re-points or deletes one.
        ("s3:CreateBucket", bucket("dev"), {}),
        ("s3:DeleteBucket", bucket("dev"), {}),
        ("s3:PutLifecycleConfiguration", bucket("dev"), {}),
        ("s3:PutBucketPolicy", bucket("dev"), {}),
        ("s3:GetObject", f"{bucket('dev')}/iris/records/x.gz", {}),
        ("s3:DeleteObject", f"{bucket('dev')}/iris/records/x.gz", {}),
    ]
    assert [call for call in theirs if allows(dev, call)] == []
    preview = policies["preview"]
    assert allows(preview, ("firehose:DescribeDeliveryStream", f"{FIREHOSE}/twinserve-iris-dev-capture", {}))
    assert not allows(
        preview, ("firehose:CreateDeliveryStream", f"{FIREHOSE}/twinserve-iris-dev-capture", {})
    )
    assert not allows(preview, ("logs:PutSubscriptionFilter", f"{LOGS}/twinserve-iris-dev", {}))


def test_the_bootstrap_s_buckets_expire_records_and_are_private(the_bootstrap: Run) -> None:
    for env in ("dev", "staging", "prod"):
        name = f"capture-{env}"
        lifecycle = [
            r.inputs
            for r in the_bootstrap.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
            if r.name == name
        ]
        assert lifecycle[0]["rules"][0]["expiration"] == {"days": 30}
        encryption = [
            r.inputs
            for r in the_bootstrap.of_type(
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
            )
            if r.name == name
        ]
        assert encryption[0]["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        block = [
            r.inputs
            for r in the_bootstrap.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
            if r.name == name
        ]
        assert all(
            block[0][k]
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
    kept = bootstrap(captureArchiveDays="400")
    (lifecycle, *_) = kept.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 400}
    assert not bootstrap(captureArchiveDays="0").of_type("aws:s3/bucket:Bucket")


def test_the_program_names_the_bucket_the_bootstrap_made(the_bootstrap: Run) -> None:
    import permissions
    from program.capture_archive import capture_bucket

    for env in ("dev", "a-rather-long-environment-name-for-a-bucket"):
        for region in (REGION, "ap-southeast-2"):
            assert capture_bucket(ACCOUNT, region, env) == permissions.capture_bucket(ACCOUNT, region, env)
            assert len(capture_bucket(ACCOUNT, region, env)) <= 63


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"captureArchive": "true"}, "captureArchive is set, but captureSampleRate is 0: there is nothing"),
        (
            {**ARCHIVED, "runtimes": '["kubernetes"]'},
            "captureArchive copies the function's records, but this environment does not deploy the lambda",
        ),
        (
            {**ARCHIVED, "modelName": "a-model-name-long-enough-for-its-stream-to"},
            "makes the capture archive's Firehose stream",
        ),
        ({"captureArchive": "maybe"}, "twinserve:captureArchive"),
    ],
)
def test_an_archive_that_cannot_work_is_refused_naming_the_key(
    overrides: dict[str, str], message: str, config_for: Callable[..., dict[str, str]]
) -> None:
    with pytest.raises(SettingsError) as error:
        from_config(config_for("staging", **overrides), "staging")
    assert message in str(error.value)

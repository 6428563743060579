"""What the deploy, preview and publish roles may do: named actions on named resources, nothing else.

Each environment has its own deploy role, scoped to its own resources: functions, log groups, queues,
alarms and capture streams named `twinserve-<model>-<env>…`, roles under the IAM path `/twinserve/<env>/`
created only with the function boundary attached (and passed only to Lambda, Firehose and CloudWatch
Logs), HTTP APIs tagged `twinserve:environment=<env>`, and its stack's own state. The bootstrap's roles
and the boundary are denied to every deploy role outright. The capture buckets are the bootstrap's: no
deploy can create, empty or delete one, and only roles under an environment's path can write to its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

PREFIX = "twinserve-"
LAMBDA_WRITE = [
    "lambda:CreateFunction",
    "lambda:DeleteFunction",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:PublishVersion",
    "lambda:CreateAlias",
    "lambda:UpdateAlias",
    "lambda:DeleteAlias",
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:PutProvisionedConcurrencyConfig",
    "lambda:DeleteProvisionedConcurrencyConfig",
    "lambda:CreateFunctionUrlConfig",
    "lambda:UpdateFunctionUrlConfig",
    "lambda:DeleteFunctionUrlConfig",
    "lambda:AddPermission",
    "lambda:RemovePermission",
    "lambda:PutFunctionEventInvokeConfig",
    "lambda:UpdateFunctionEventInvokeConfig",
    "lambda:DeleteFunctionEventInvokeConfig",
    "lambda:TagResource",
    "lambda:UntagResource",
]
LAMBDA_READ = [
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:ListVersionsByFunction",
    "lambda:GetAlias",
    "lambda:GetFunctionConcurrency",
    "lambda:GetProvisionedConcurrencyConfig",
    "lambda:GetFunctionUrlConfig",
    "lambda:GetPolicy",
    "lambda:GetFunctionEventInvokeConfig",
    "lambda:ListTags",
    "lambda:GetFunctionCodeSigningConfig",
]
IAM_CREATE = ["iam:CreateRole"]
IAM_WRITE = [
    "iam:DeleteRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
]
IAM_READ = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
]
LOGS_WRITE = [
    "logs:CreateLogGroup",
    "logs:DeleteLogGroup",
    "logs:PutRetentionPolicy",
    "logs:DeleteRetentionPolicy",
    "logs:TagResource",
    "logs:UntagResource",
]
LOGS_READ = ["logs:ListTagsForResource", "logs:DescribeSubscriptionFilters"]
# The capture archive (infra/program/capture_archive.py): the log group's subscription filter, its stream.
SUBSCRIPTION_WRITE = ["logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter"]
FIREHOSE_WRITE = [
    "firehose:CreateDeliveryStream",
    "firehose:DeleteDeliveryStream",
    "firehose:UpdateDestination",
    "firehose:StartDeliveryStreamEncryption",
    "firehose:StopDeliveryStreamEncryption",
    "firehose:TagDeliveryStream",
    "firehose:UntagDeliveryStream",
]
FIREHOSE_READ = ["firehose:DescribeDeliveryStream", "firehose:ListTagsForDeliveryStream"]
# The services a deploy may hand its roles to: the function, the archive's stream and its subscription.
PASSED_TO = ["lambda.amazonaws.com", "firehose.amazonaws.com", "logs.amazonaws.com"]
CAPTURE_BUCKET_LIMIT = 63
CAPTURE_BUCKET_PREFIX = (
    "twinserve-capture-"  # the bootstrap's capture buckets: <prefix><account>-<region>-<env>
)
SQS_WRITE = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"]
SQS_READ = ["sqs:GetQueueAttributes", "sqs:ListQueueTags"]
API_WRITE = [
    "apigateway:POST",
    "apigateway:PUT",
    "apigateway:PATCH",
    "apigateway:DELETE",
    "apigateway:TagResource",
]
API_READ = ["apigateway:GET"]
# The live alias's SLO alarms; every alarm action is scoped to alarms named twinserve-*.
ALARM_WRITE = [
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
]
ALARM_READ = ["cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"]
ECR_PUSH = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
]
ECR_READ = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
STATE_READ = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketVersioning"]
STATE_WRITE = ["s3:PutObject", "s3:DeleteObject"]
KMS_USE = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
# Actions AWS offers no resource-level scoping for.
UNSCOPED_READ = ["ecr:GetAuthorizationToken", "logs:DescribeLogGroups"]


# The boundary every role a deploy creates must carry (infra/program/lambda_service.py, FUNCTION_BOUNDARY).
FUNCTION_BOUNDARY = "twinserve-function-boundary"
ENVIRONMENT_TAG = "twinserve:environment"
BOOTSTRAP_ROLES = ["deploy-*", "preview", "publish", "drift"]


@dataclass(frozen=True)
class Scope:
    account: str
    region: str
    repository_arn: pulumi.Input[str]
    state_bucket_arn: pulumi.Input[str] | None
    state_key_arn: pulumi.Input[str] | None


@dataclass(frozen=True)
class StateBackend:
    bucket: aws.s3.Bucket
    key: aws.kms.Key  # the bucket's encryption, used through S3 only
    alias: aws.kms.Alias
    secrets: dict[str, aws.kms.Key]  # each environment's secrets provider key (alias/twinserve-pulumi-<env>)


def _allow(actions: list[str], resources: list[str], **condition: dict) -> dict:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return statement | ({"Condition": condition} if condition else {})


def _arns(scope: Scope, env: str = "*") -> dict[str, list[str]]:
    """The resources of one environment (`*`: every environment, for the read-only preview). Names end
    with the environment (`twinserve-<model>-<env>`), or carry it before a suffix of their own."""
    a, r = scope.account, scope.region
    function = f"{PREFIX}*-{env}" if env != "*" else f"{PREFIX}*"
    return {
        "lambda": [
            f"arn:aws:lambda:{r}:{a}:function:{function}",
            f"arn:aws:lambda:{r}:{a}:function:{function}:*",
        ],
        "iam": [f"arn:aws:iam::{a}:role/twinserve/{env}/*"],
        "logs": [
            f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{function}",
            f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{function}:*",
            f"arn:aws:logs:{r}:{a}:log-group:/aws/apigateway/{function}",
            f"arn:aws:logs:{r}:{a}:log-group:/aws/apigateway/{function}:*",
        ],
        "sqs": [f"arn:aws:sqs:{r}:{a}:{function}-failed"],
        "firehose": [f"arn:aws:firehose:{r}:{a}:deliverystream/{function}-capture"],
        "alarm": [f"arn:aws:cloudwatch:{r}:{a}:alarm:{function}-*"],
        "api": [f"arn:aws:apigateway:{r}::/apis", f"arn:aws:apigateway:{r}::/apis/*"],
        "api-items": [f"arn:aws:apigateway:{r}::/apis/*", f"arn:aws:apigateway:{r}::/tags/*"],
        "api-create": [f"arn:aws:apigateway:{r}::/apis"],
        "boundary": [f"arn:aws:iam::{a}:policy/{FUNCTION_BOUNDARY}"],
        "bootstrap": [f"arn:aws:iam::{a}:role/{PREFIX}{name}" for name in BOOTSTRAP_ROLES],
    }


def _deny(actions: list[str], resources: list[str]) -> dict:
    return {"Effect": "Deny", "Action": actions, "Resource": resources}


def _document(statements: pulumi.Input[list]) -> pulumi.Output[str]:
    return pulumi.Output.from_input(statements).apply(
        lambda s: json.dumps({"Version": "2012-10-17", "Statement": [x for x in s if x]})
    )


def _state_objects(bucket: str, env: str) -> list[str]:
    """One stack's objects in the DIY backend's layout (pkg/backend/diy): its checkpoint and backups,
    its history, and (last) its lock under any organisation prefix."""
    project = "twinserve"
    return [
        f"{bucket}/.pulumi/stacks/{project}/{env}.*",  # .json, .json.bak, .pulumi-tags
        f"{bucket}/.pulumi/backups/{project}/{env}/*",
        f"{bucket}/.pulumi/history/{project}/{env}/*",
        f"{bucket}/.pulumi/locks/*/{project}/{env}/*",
    ]


def _state(scope: Scope, environments: list[str], writes: bool) -> list:
    """Read (with `writes`, also write; without, only their locks) these environments' stacks in the
    S3 backend; the state key only as S3 uses it (kms:ViaService): no other stack's state is readable."""
    if scope.state_bucket_arn is None or scope.state_key_arn is None or not environments:
        return []
    bucket = pulumi.Output.from_input(scope.state_bucket_arn)
    via_s3 = {"kms:ViaService": f"s3.{scope.region}.amazonaws.com"}

    def objects(b: str) -> list[str]:
        return [o for env in environments for o in _state_objects(b, env)]

    def written(b: str) -> list[str]:
        return [
            o
            for env in environments
            for o in (_state_objects(b, env) if writes else _state_objects(b, env)[-1:])
        ]

    return [
        bucket.apply(lambda b: _allow(["s3:ListBucket", "s3:GetBucketVersioning"], [b])),
        bucket.apply(lambda b: _allow(["s3:GetObject"], [f"{b}/.pulumi/meta.yaml", *objects(b)])),
        bucket.apply(lambda b: _allow(STATE_WRITE, written(b))),
        pulumi.Output.from_input(scope.state_key_arn).apply(
            lambda k: _allow(KMS_USE, [k], StringEquals=via_s3)
        ),
    ]


def _keys(keys: list[pulumi.Input[str]]) -> list:
    """Direct use of stack secrets keys (the CLI encrypts and decrypts a stack's secrets with its key)."""
    return [pulumi.Output.from_input(k).apply(lambda arn: _allow(KMS_USE, [arn])) for k in keys]


def deploy_policy(scope: Scope, env: str, secrets_key: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """One environment's deploy: its own resources and state, nothing of another environment's."""
    arns = _arns(scope, env)
    repository = pulumi.Output.from_input(scope.repository_arn)
    boundary = {"iam:PermissionsBoundary": arns["boundary"][0]}
    tagged = {f"aws:ResourceTag/{ENVIRONMENT_TAG}": env}
    return _document(
        [
            _allow(LAMBDA_WRITE + LAMBDA_READ, arns["lambda"]),
            # Roles only under this environment's path, created only with the function boundary.
            _allow(IAM_CREATE, arns["iam"], StringEquals=boundary),
            _allow(IAM_WRITE + IAM_READ, arns["iam"]),
            _allow(["iam:PassRole"], arns["iam"], StringEquals={"iam:PassedToService": PASSED_TO}),
            _allow(LOGS_WRITE + SUBSCRIPTION_WRITE + LOGS_READ, arns["logs"]),
            _allow(FIREHOSE_WRITE + FIREHOSE_READ, arns["firehose"]),
            _allow(SQS_WRITE + SQS_READ, arns["sqs"]),
            _allow(ALARM_WRITE + ALARM_READ, arns["alarm"]),
            # HTTP APIs by tag: created tagged with this environment, changed only when so tagged.
            _allow(API_READ, arns["api"]),
            _allow(
                ["apigateway:POST"],
                arns["api-create"],
                StringEquals={f"aws:RequestTag/{ENVIRONMENT_TAG}": env},
            ),
            _allow(API_WRITE, arns["api-items"], StringEquals=tagged),
            repository.apply(lambda r: _allow(ECR_READ, [r])),
            _allow(UNSCOPED_READ, ["*"]),
            *_state(scope, [env], writes=True),
            *_keys([secrets_key] if secrets_key is not None else []),
            # The smoke test after each up signs its requests to an AWS_IAM Function URL with this role.
            # Since October 2025 a Function URL call needs InvokeFunction too: only through a URL.
            _allow(
                ["lambda:InvokeFunctionUrl"],
                arns["lambda"],
                StringEquals={"lambda:FunctionUrlAuthType": "AWS_IAM"},
            ),
            _allow(["lambda:InvokeFunction"], arns["lambda"], Bool={"lambda:InvokedViaFunctionUrl": "true"}),
            # …and to an AWS_IAM HTTP API's default stage, of this environment's APIs (by their tag).
            _allow(
                ["execute-api:Invoke"],
                [f"arn:aws:execute-api:{scope.region}:{scope.account}:*/$default/*"],
                StringEquals=tagged,
            ),
            # Whatever else allows it: never the bootstrap's own roles, the boundary, or a role's boundary.
            _deny(["iam:*"], arns["bootstrap"] + arns["boundary"]),
            _deny(["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"], ["*"]),
        ]
    )


def boundary_document(scope: Scope) -> str:
    """The most a role a deploy creates can ever do: a function's logs, traces and queue; a shadow
    phase's invoke of a twinserve function's `shadow` alias (no other alias, version or function); the
    capture archive's hops (put into a twinserve stream; write objects into a capture bucket, whose
    policy admits only its own environment's roles, with S3's use of the bucket's key). Never read a
    capture."""
    a, r = scope.account, scope.region
    buckets = f"arn:aws:s3:::{CAPTURE_BUCKET_PREFIX}*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                _allow(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{PREFIX}*"],
                ),
                _allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
                _allow(["sqs:SendMessage"], [f"arn:aws:sqs:{r}:{a}:{PREFIX}*"]),
                _allow(["lambda:InvokeFunction"], [f"arn:aws:lambda:{r}:{a}:function:{PREFIX}*:shadow"]),
                _allow(
                    ["firehose:PutRecord", "firehose:PutRecordBatch"],
                    [f"arn:aws:firehose:{r}:{a}:deliverystream/{PREFIX}*"],
                ),
                _allow(["s3:PutObject", "s3:AbortMultipartUpload"], [f"{buckets}/*"]),
                _allow(["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], [buckets]),
                _allow(
                    ["kms:GenerateDataKey", "kms:Decrypt"],
                    ["*"],
                    StringEquals={"kms:ViaService": f"s3.{r}.amazonaws.com"},
                    StringLike={"kms:EncryptionContext:aws:s3:arn": buckets},
                ),
            ],
        }
    )


def publish_policy(scope: Scope) -> pulumi.Output[str]:
    """Push images to the one repository."""
    repository = pulumi.Output.from_input(scope.repository_arn)
    return _document(
        [
            repository.apply(lambda r: _allow(ECR_PUSH + ECR_READ, [r])),
            _allow(["ecr:GetAuthorizationToken"], ["*"]),
        ]
    )


def preview_policy(
    scope: Scope, environments: list[str], secrets_keys: list[pulumi.Input[str]]
) -> pulumi.Output[str]:
    """Read what these environments' stacks hold, and take and release their locks; change nothing."""
    arns = _arns(scope)
    repository = pulumi.Output.from_input(scope.repository_arn)
    return _document(
        [
            _allow(LAMBDA_READ, arns["lambda"]),
            _allow(IAM_READ, arns["iam"]),
            _allow(LOGS_READ, arns["logs"]),
            _allow(FIREHOSE_READ, arns["firehose"]),
            _allow(SQS_READ, arns["sqs"]),
            _allow(ALARM_READ, arns["alarm"]),
            _allow(API_READ, arns["api"]),
            repository.apply(lambda r: _allow(ECR_READ, [r])),
            _allow(UNSCOPED_READ, ["*"]),
            *_state(scope, environments, writes=False),
            *_keys(secrets_keys),
        ]
    )


def drift_policy(scope: Scope) -> pulumi.Output[str]:
    """The drift report: search the functions' log groups for captured records, and read the capture
    archives' records (with S3's use of their key), nothing else (not the HTTP APIs' access logs, no
    state, no secrets, no writes)."""
    a, r = scope.account, scope.region
    groups = [
        f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{PREFIX}*",
        f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{PREFIX}*:*",
    ]
    buckets = f"arn:aws:s3:::{CAPTURE_BUCKET_PREFIX}*"
    return _document(
        [
            _allow(["logs:FilterLogEvents"], groups),
            _allow(["s3:ListBucket"], [buckets]),
            _allow(["s3:GetObject"], [f"{buckets}/*/records/*"]),
            _allow(
                ["kms:Decrypt"],
                ["*"],
                StringEquals={"kms:ViaService": f"s3.{r}.amazonaws.com"},
                StringLike={"kms:EncryptionContext:aws:s3:arn": buckets},
            ),
        ]
    )


def lambda_pull_policy(account: str, region: str) -> dict:
    """The image repository's policy: Lambda may pull for this account's twinserve-* functions only
    (AWS Lambda developer guide, "Amazon ECR permissions")."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaPull",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Condition": {
                    "StringLike": {"aws:sourceArn": f"arn:aws:lambda:{region}:{account}:function:{PREFIX}*"},
                    "StringEquals": {"aws:sourceAccount": account},
                },
            }
        ],
    }


def secrets_key(env: str) -> aws.kms.Key:
    """One environment's secrets provider (`awskms://alias/twinserve-pulumi-<env>`): only its deploy role
    (and, for a previewed environment, the preview role) may use it."""
    key = aws.kms.Key(
        f"secrets-{env}",
        description=f"twinserve Pulumi secrets of the {env} stack",
        enable_key_rotation=True,
        deletion_window_in_days=30,
    )
    aws.kms.Alias(f"secrets-{env}", name=secrets_alias(env), target_key_id=key.key_id)
    return key


def secrets_alias(env: str) -> str:
    return f"alias/twinserve-pulumi-{env}"


def tls_only(bucket_arn: str) -> dict:
    """A bucket policy's statement refusing every call over plain HTTP."""
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def private(name: str, bucket: aws.s3.Bucket) -> None:
    """No public access of any kind, and every object the bucket owner's (no ACLs)."""
    aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    aws.s3.BucketOwnershipControls(name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"})


def state_backend(account: str, region: str, environments: list[str]) -> StateBackend:
    """A versioned, KMS-encrypted, private, TLS-only bucket, and a secrets key per environment."""
    key = aws.kms.Key(
        "state",
        description="twinserve Pulumi state and secrets",
        enable_key_rotation=True,
        deletion_window_in_days=30,
    )
    alias = aws.kms.Alias("state", name="alias/twinserve-pulumi", target_key_id=key.key_id)
    bucket = aws.s3.Bucket("state", bucket=f"{PREFIX}pulumi-state-{account}-{region}", force_destroy=False)
    aws.s3.BucketVersioning("state", bucket=bucket.id, versioning_configuration={"status": "Enabled"})
    aws.s3.BucketServerSideEncryptionConfiguration(
        "state",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": key.arn,
                },
                "bucket_key_enabled": True,
            }
        ],
    )
    private("state", bucket)
    aws.s3.BucketPolicy(
        "state",
        bucket=bucket.id,
        policy=bucket.arn.apply(lambda b: json.dumps({"Version": "2012-10-17", "Statement": [tls_only(b)]})),
    )
    return StateBackend(bucket, key, alias, {env: secrets_key(env) for env in environments})


def capture_bucket(account: str, region: str, environment: str) -> str:
    """`twinserve-capture-<account>-<region>-<env>`, or where that passes S3's 63 characters, the
    environment's first characters and a digest of the whole (infra/program/capture_archive.py reads it
    by the same name)."""
    name = f"{CAPTURE_BUCKET_PREFIX}{account}-{region}-{environment}"
    if len(name) <= CAPTURE_BUCKET_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = f"{CAPTURE_BUCKET_PREFIX}{account}-{region}-"
    return f"{head}{environment[: CAPTURE_BUCKET_LIMIT - len(head) - len(digest) - 1]}-{digest}"


def capture_bucket_policy(bucket_arn: str, account: str, environment: str) -> str:
    """TLS only; objects written only by roles under the environment's own path (its archive's Firehose
    role), whatever an identity policy or the boundary allows. Only the drift role reads records and
    no twinserve role deletes one: they leave by expiry, or by an administrator (an erasure request)."""
    writers = f"arn:aws:iam::{account}:role/twinserve/{environment}/*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                tls_only(bucket_arn),
                {
                    "Sid": "OwnEnvironmentWritesOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                    "Resource": f"{bucket_arn}/*",
                    "Condition": {"StringNotLike": {"aws:PrincipalArn": writers}},
                },
            ],
        }
    )


def capture_archive(account: str, region: str, environment: str, days: int) -> aws.s3.Bucket:
    """One environment's capture bucket: private, TLS-only, encrypted with S3's KMS key, objects expired
    after `days`, written only by that environment's roles."""
    name = f"capture-{environment}"
    bucket = aws.s3.Bucket(name, bucket=capture_bucket(account, region, environment), force_destroy=False)
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"},
                "bucket_key_enabled": True,
            }
        ],
    )
    private(name, bucket)
    aws.s3.BucketLifecycleConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-captures",
                "status": "Enabled",
                "filter": {},
                "expiration": {"days": days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
            }
        ],
    )
    aws.s3.BucketPolicy(
        name,
        bucket=bucket.id,
        policy=bucket.arn.apply(lambda arn: capture_bucket_policy(arn, account, environment)),
    )
    return bucket

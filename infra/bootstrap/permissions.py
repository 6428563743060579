"""What the deploy and preview roles may do: named actions, on resources named twinserve-*, nothing else."""

from __future__ import annotations

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
IAM_WRITE = [
    "iam:CreateRole",
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
LOGS_READ = ["logs:ListTagsForResource"]
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
    key: aws.kms.Key
    alias: aws.kms.Alias


def _allow(actions: list[str], resources: list[str], **condition: dict) -> dict:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return statement | ({"Condition": condition} if condition else {})


def _arns(scope: Scope) -> dict[str, list[str]]:
    a, r = scope.account, scope.region
    return {
        "lambda": [f"arn:aws:lambda:{r}:{a}:function:{PREFIX}*"],
        "iam": [f"arn:aws:iam::{a}:role/{PREFIX}*"],
        "logs": [
            f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{PREFIX}*",
            f"arn:aws:logs:{r}:{a}:log-group:/aws/apigateway/{PREFIX}*",
        ],
        "sqs": [f"arn:aws:sqs:{r}:{a}:{PREFIX}*"],
        "alarm": [f"arn:aws:cloudwatch:{r}:{a}:alarm:{PREFIX}*"],
        "api": [
            f"arn:aws:apigateway:{r}::/apis",
            f"arn:aws:apigateway:{r}::/apis/*",
            f"arn:aws:apigateway:{r}::/tags/*",
        ],
    }


def _document(statements: pulumi.Input[list]) -> pulumi.Output[str]:
    return pulumi.Output.from_input(statements).apply(
        lambda s: json.dumps({"Version": "2012-10-17", "Statement": [x for x in s if x]})
    )


def _state(scope: Scope, object_actions: list[str], objects: str) -> list:
    if scope.state_bucket_arn is None or scope.state_key_arn is None:
        return []
    bucket = pulumi.Output.from_input(scope.state_bucket_arn)
    return [
        bucket.apply(lambda b: _allow(STATE_READ, [b, f"{b}/*"])),
        bucket.apply(lambda b: _allow(object_actions, [f"{b}/{objects}"])) if object_actions else None,
        pulumi.Output.from_input(scope.state_key_arn).apply(lambda k: _allow(KMS_USE, [k])),
    ]


def deploy_policy(scope: Scope) -> pulumi.Output[str]:
    arns = _arns(scope)
    repository = pulumi.Output.from_input(scope.repository_arn)
    return _document(
        [
            _allow(LAMBDA_WRITE + LAMBDA_READ, arns["lambda"]),
            _allow(IAM_WRITE + IAM_READ, arns["iam"]),
            _allow(
                ["iam:PassRole"], arns["iam"], StringEquals={"iam:PassedToService": "lambda.amazonaws.com"}
            ),
            _allow(LOGS_WRITE + LOGS_READ, arns["logs"]),
            _allow(SQS_WRITE + SQS_READ, arns["sqs"]),
            _allow(ALARM_WRITE + ALARM_READ, arns["alarm"]),
            _allow(API_WRITE + API_READ, arns["api"]),
            repository.apply(lambda r: _allow(ECR_PUSH + ECR_READ, [r])),
            _allow(UNSCOPED_READ, ["*"]),
            *_state(scope, STATE_WRITE, "*"),
            # The smoke test after each up signs its requests to an AWS_IAM Function URL with this role.
            # Since October 2025 a Function URL call needs InvokeFunction too: only through a URL.
            _allow(
                ["lambda:InvokeFunctionUrl"],
                arns["lambda"],
                StringEquals={"lambda:FunctionUrlAuthType": "AWS_IAM"},
            ),
            _allow(["lambda:InvokeFunction"], arns["lambda"], Bool={"lambda:InvokedViaFunctionUrl": "true"}),
        ]
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


def preview_policy(scope: Scope) -> pulumi.Output[str]:
    """Read what the stacks hold, and take and release the state lock; change nothing."""
    arns = _arns(scope)
    repository = pulumi.Output.from_input(scope.repository_arn)
    return _document(
        [
            _allow(LAMBDA_READ, arns["lambda"]),
            _allow(IAM_READ, arns["iam"]),
            _allow(LOGS_READ, arns["logs"]),
            _allow(SQS_READ, arns["sqs"]),
            _allow(ALARM_READ, arns["alarm"]),
            _allow(API_READ, arns["api"]),
            repository.apply(lambda r: _allow(ECR_READ, [r])),
            _allow(UNSCOPED_READ, ["*"]),
            *_state(scope, STATE_WRITE, ".pulumi/locks/*"),
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


def state_backend(account: str, region: str) -> StateBackend:
    """A versioned, KMS-encrypted, private, TLS-only bucket, and the key that also encrypts stack secrets."""
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
    aws.s3.BucketPublicAccessBlock(
        "state",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    aws.s3.BucketOwnershipControls(
        "state", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}
    )
    aws.s3.BucketPolicy(
        "state",
        bucket=bucket.id,
        policy=bucket.arn.apply(
            lambda b: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [b, f"{b}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            )
        ),
    )
    return StateBackend(bucket, key, alias)

"""The function's captured records, copied to S3 for longer than its logs are kept (`captureArchive`).

CloudWatch Logs sends the log group's capture records (a subscription filter on the record schema) to a
Firehose stream, which unpacks them into JSON lines and writes them, gzipped, to the environment's
capture bucket under `<model>/records/YYYY/MM/DD/HH/`. The bucket is the bootstrap's (one per
environment: KMS-encrypted, private, TLS-only, expired after `captureArchiveDays`, writable only by
roles under the environment's own path), so a deploy never creates or deletes stored data: turning the
archive off removes the stream and the filter, and what was written expires on its own.

One role per hop, each with one right: CloudWatch Logs may put records into this stream; Firehose may
write objects under this model's prefix of this environment's bucket, and use S3's key for that bucket.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from program.roles import FUNCTION_BOUNDARY, role_name_prefix, role_path, service_trust, statement
from program.settings import ARCHIVE_STREAM_SUFFIX
from serving.contract import CAPTURE_SCHEMA

# CloudWatch Logs' filter for JSON events: only capture records, not the function's other log lines.
CAPTURE_FILTER = f'{{ $.schema = "{CAPTURE_SCHEMA}" }}'
BUCKET_NAME_LIMIT = 63
# Firehose's buffer: an object every 5 minutes or 5 MiB, whichever comes first.
BUFFER_SECONDS, BUFFER_MIB = 300, 5


def capture_bucket(account: str, region: str, environment: str) -> str:
    """The environment's capture bucket, as the bootstrap names it (infra/bootstrap/permissions.py,
    capture_bucket): `twinserve-capture-<account>-<region>-<env>`, or where that passes S3's 63
    characters, the environment's first characters and a digest of the whole."""
    name = f"twinserve-capture-{account}-{region}-{environment}"
    if len(name) <= BUCKET_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = f"twinserve-capture-{account}-{region}-"
    return f"{head}{environment[: BUCKET_NAME_LIMIT - len(head) - len(digest) - 1]}-{digest}"


def records_prefix(model_name: str) -> str:
    return f"{model_name}/records/"


def errors_prefix(model_name: str) -> str:
    return f"{model_name}/errors/"


def delivery_policy(bucket: str, model_name: str, region: str) -> str:
    """Firehose's writes: objects under this model's prefix (records and failed records) of this bucket,
    the bucket-level calls its S3 writer makes, and S3's use of the bucket's key for this bucket only."""
    bucket_arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                statement(["s3:PutObject", "s3:AbortMultipartUpload"], [f"{bucket_arn}/{model_name}/*"]),
                statement(
                    ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], [bucket_arn]
                ),
                {
                    **statement(["kms:GenerateDataKey", "kms:Decrypt"], ["*"]),
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": f"s3.{region}.amazonaws.com",
                            "kms:EncryptionContext:aws:s3:arn": bucket_arn,
                        }
                    },
                },
            ],
        }
    )


def subscription_policy(stream_arn: str) -> str:
    """CloudWatch Logs' one right: put records into this stream."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [statement(["firehose:PutRecord", "firehose:PutRecordBatch"], [stream_arn])],
        }
    )


@dataclass(frozen=True)
class CaptureArchiveArgs:
    function_name: str
    model_name: str
    environment: str
    account: str
    region: str
    log_group_name: pulumi.Input[str]
    log_group_arn: pulumi.Input[str]
    tags: dict[str, str]


class CaptureArchive(pulumi.ComponentResource):
    """Subscription filter → Firehose stream → the environment's capture bucket, a role per hop."""

    def __init__(
        self, name: str, args: CaptureArchiveArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("twinserve:aws:CaptureArchive", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = capture_bucket(args.account, args.region, args.environment)
        boundary = f"arn:aws:iam::{args.account}:policy/{FUNCTION_BOUNDARY}" if args.account else None

        def role(suffix: str, trust: pulumi.Input[str]) -> aws.iam.Role:
            return aws.iam.Role(
                f"{name}-{suffix}-role",
                name_prefix=role_name_prefix(f"{args.function_name}-{suffix}"),
                path=role_path(args.environment),
                permissions_boundary=boundary,
                assume_role_policy=trust,
                tags=args.tags,
                opts=child,
            )

        # Firehose assumes it for this account's streams only (the confused deputy's guard).
        self.delivery_role = role(
            "delivery",
            service_trust("firehose.amazonaws.com", {"StringEquals": {"aws:SourceAccount": args.account}}),
        )
        self.delivery_policy = aws.iam.RolePolicy(
            f"{name}-delivery-policy",
            role=self.delivery_role.id,
            policy=delivery_policy(self.bucket, args.model_name, args.region),
            opts=child,
        )
        self.stream = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-stream",
            name=f"{args.function_name}{ARCHIVE_STREAM_SUFFIX}",
            destination="extended_s3",
            server_side_encryption={"enabled": True, "key_type": "AWS_OWNED_CMK"},
            extended_s3_configuration={
                "role_arn": self.delivery_role.arn,
                "bucket_arn": f"arn:aws:s3:::{self.bucket}",
                "prefix": records_prefix(args.model_name) + "!{timestamp:yyyy/MM/dd/HH}/",
                "error_output_prefix": errors_prefix(args.model_name)
                + "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
                "buffering_interval": BUFFER_SECONDS,
                "buffering_size": BUFFER_MIB,
                "compression_format": "GZIP",
                # CloudWatch Logs sends gzipped batches of log events: unpack them, keep each event's
                # message (one record), and end each with a newline: JSON lines, as the logs hold them.
                "processing_configuration": {
                    "enabled": True,
                    "processors": [
                        {
                            "type": "Decompression",
                            "parameters": [
                                {"parameter_name": "CompressionFormat", "parameter_value": "GZIP"}
                            ],
                        },
                        {
                            "type": "CloudWatchLogProcessing",
                            "parameters": [
                                {"parameter_name": "DataMessageExtraction", "parameter_value": "true"}
                            ],
                        },
                        {"type": "AppendDelimiterToRecord"},
                    ],
                },
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.delivery_policy]),
        )
        # CloudWatch Logs assumes it for this function's log group only.
        self.subscription_role = role(
            "subscription",
            pulumi.Output.from_input(args.log_group_arn).apply(
                lambda arn: service_trust(
                    "logs.amazonaws.com", {"StringLike": {"aws:SourceArn": _group(arn)}}
                )
            ),
        )
        self.subscription_policy = aws.iam.RolePolicy(
            f"{name}-subscription-policy",
            role=self.subscription_role.id,
            policy=self.stream.arn.apply(subscription_policy),
            opts=child,
        )
        self.filter = aws.cloudwatch.LogSubscriptionFilter(
            f"{name}-filter",
            name=f"{args.function_name}{ARCHIVE_STREAM_SUFFIX}",
            log_group=args.log_group_name,
            filter_pattern=CAPTURE_FILTER,
            destination_arn=self.stream.arn,
            role_arn=self.subscription_role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.subscription_policy]),
        )
        self.register_outputs(
            {"bucket": self.bucket, "prefix": records_prefix(args.model_name), "stream": self.stream.name}
        )


def _group(log_group_arn: str) -> list[str]:
    """A log group's ARN in both forms (with and without `:*`), whichever the provider gives."""
    bare = log_group_arn.removesuffix(":*")
    return [bare, f"{bare}:*"]

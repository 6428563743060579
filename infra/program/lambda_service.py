"""The model on AWS Lambda: one component for the function, its least-privilege role, logs and endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from program.capture_archive import CaptureArchive, CaptureArchiveArgs
from program.lambda_endpoints import HttpApi, Target, function_url, http_api
from program.roles import FUNCTION_BOUNDARY, role_name_prefix, role_path, service_trust, statement
from program.settings import CaptureSettings, LambdaSettings, Slo
from program.slo import MIN_SHADOW_ROWS
from serving.emf import NAMESPACE, SHADOW_ROWS_AGREED, SHADOW_ROWS_DISAGREED

# Every name starts with the function's (twinserve-<model>-<stack>), which the deploy role is scoped to.
HANDLER = "serving.lambda_handler.handler"
# The image's second entrypoint (serving/Dockerfile): the runtime interface client calling the handler.
IMAGE_ENTRYPOINT = ["python", "-m", "awslambdaric"]
ALIAS = "live"
# While a rollout runs, this alias follows the newly published version: the smoke test reaches the new
# code alone through its own IAM-authenticated Function URL, whatever share `live` gives it.
CANARY_ALIAS = "canary"
# During a shadow phase, this alias is on the newly published version; the stable version invokes it
# asynchronously with a share of its requests and answers (serving/lambda_shadow.py).
SHADOW_ALIAS = "shadow"
PERIOD_SECONDS = 60  # Lambda's metrics are per minute; an alarm fires on 2 breaching minutes of 3


@dataclass(frozen=True)
class LambdaServiceArgs:
    """The function's name and model, and the environment's `lambda*` settings taken whole."""

    function_name: str
    model_name: str
    model_version: int
    slo: Slo
    settings: LambdaSettings
    environment: str = "dev"  # the stack: the role's IAM path and every resource's tag scope the deploy role
    account: str = ""  # the account whose boundary policy the role attaches; empty: none (tests only)
    capture: CaptureSettings = CaptureSettings()  # payload capture, into the function's log group
    region: str = ""  # the capture archive's bucket is this region's (captureArchive); the shadow alias's
    shadow_percent: int = 0  # the share of requests a shadow phase mirrors; 0: the environment has none


def execution_policy(
    log_group_arn: str, tracing: bool, dead_letter_arn: str | None, shadow_arn: str | None = None
) -> str:
    """Its own log group; X-Ray only with tracing (X-Ray has no resource-level scoping); its own queue;
    with a shadow phase, an invoke of its own `shadow` alias and nothing else of Lambda's."""
    statements = [statement(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"])]
    if tracing:
        statements.append(statement(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]))
    if dead_letter_arn:
        statements.append(statement(["sqs:SendMessage"], [dead_letter_arn]))
    if shadow_arn:
        statements.append(statement(["lambda:InvokeFunction"], [shadow_arn]))
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


LAMBDA_TRUST = service_trust("lambda.amazonaws.com")


def metric_query(query_id: str, namespace: str, metric_name: str, dimensions: dict) -> dict:
    """A metric alarm's query of one metric's per-minute sum, for its expression to read."""
    return {
        "id": query_id,
        "return_data": False,
        "metric": {
            "namespace": namespace,
            "metric_name": metric_name,
            "dimensions": dimensions,
            "period": PERIOD_SECONDS,
            "stat": "Sum",
        },
    }


class LambdaService(pulumi.ComponentResource):
    """Function (zip or image), role, log group, version and `live` alias, concurrency, and an endpoint."""

    def __init__(
        self, name: str, args: LambdaServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("twinserve:aws:ModelFunction", name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self)
        tags = {
            "twinserve:model": args.model_name,
            "twinserve:model-version": str(args.model_version),
            "twinserve:environment": args.environment,  # the HTTP API's rights are scoped by it
        }

        # Created before the function, so Lambda never makes one without retention.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.settings.log_retention_days,
            tags=tags,
            opts=child,
        )
        # Failed asynchronous invocations land here rather than vanishing after two retries.
        self.dead_letter = (
            aws.sqs.Queue(
                f"{name}-failed-invocations",
                name=f"{args.function_name}-failed",
                message_retention_seconds=14 * 24 * 3600,
                sqs_managed_sse_enabled=True,
                tags=tags,
                opts=child,
            )
            if args.settings.async_dead_letter
            else None
        )
        # The function's identity: nothing beyond its own logs (and traces, and its queue).
        self.role = aws.iam.Role(
            f"{name}-role",
            name_prefix=role_name_prefix(args.function_name),
            path=role_path(args.environment),
            permissions_boundary=(
                f"arn:aws:iam::{args.account}:policy/{FUNCTION_BOUNDARY}" if args.account else None
            ),
            assume_role_policy=LAMBDA_TRUST,
            tags=tags,
            opts=child,
        )
        dead_letter_arn = self.dead_letter.arn if self.dead_letter else None
        where = f"{args.region or '*'}:{args.account or '*'}"
        shadow_arn = (
            f"arn:aws:lambda:{where}:function:{args.function_name}:{SHADOW_ALIAS}"
            if args.shadow_percent
            else None
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            policy=pulumi.Output.all(self.log_group.arn, dead_letter_arn).apply(
                lambda a: execution_policy(a[0], args.settings.tracing, a[1], shadow_arn)
            ),
            opts=child,
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, self.role_policy]),
            **self._function_inputs(tags),
        )
        # Clients call `live`, which moves to each newly published version in one step, or, during a
        # rollout, stays on the stable version and routes a share to the new one.
        self.alias = aws.lambda_.Alias(
            f"{name}-alias",
            name=ALIAS,
            function_name=self.function.name,
            function_version=args.settings.stable_version or self.function.version,
            routing_config=self.function.version.apply(self._routing),
            opts=child,
        )
        if args.settings.provisioned_concurrency:
            # Pre-initialised environments on the alias: no cold start up to this many concurrent requests.
            aws.lambda_.ProvisionedConcurrencyConfig(
                f"{name}-provisioned-concurrency",
                function_name=self.function.name,
                qualifier=self.alias.name,
                provisioned_concurrent_executions=args.settings.provisioned_concurrency,
                opts=child,
            )
        if self.dead_letter:
            aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-async",
                function_name=self.function.name,
                qualifier=self.alias.name,
                maximum_retry_attempts=2,
                destination_config={"on_failure": {"destination": self.dead_letter.arn}},
                opts=child,
            )
        target = Target(self.function.name, self.alias.name, self.alias.invoke_arn)
        self.api_id: pulumi.Output[str] | None = None
        if args.settings.endpoint == "function-url":
            self.endpoint = function_url(
                name, target, args.settings.function_url_auth, args.settings.cors_allow_origins, child
            )
        else:
            self.endpoint, self.api_id = http_api(
                name,
                target,
                HttpApi(
                    args.function_name,
                    args.settings.timeout_seconds,
                    args.settings.http_api_rate_limit,
                    args.settings.http_api_burst_limit,
                    args.settings.log_retention_days,
                    args.settings.cors_allow_origins,
                    args.settings.http_api_auth,
                ),
                tags,
                child,
            )
        self.alarms = self._alarms(name, tags, child)
        self.archive: CaptureArchive | None = None
        if args.capture.archive:
            self.archive = CaptureArchive(
                f"{name}-capture",
                CaptureArchiveArgs(
                    args.function_name,
                    args.model_name,
                    args.environment,
                    args.account,
                    args.region,
                    self.log_group.name,
                    self.log_group.arn,
                    tags,
                ),
                child,
            )
        self.canary_endpoint: pulumi.Output[str] | None = None
        self.canary_alarms: list[aws.cloudwatch.MetricAlarm] = []
        if (
            args.settings.stable_version and args.settings.canary_percent
        ):  # gone again on promotion or rollback
            canary = aws.lambda_.Alias(
                f"{name}-canary-alias",
                name=CANARY_ALIAS,
                function_name=self.function.name,
                function_version=self.function.version,
                opts=child,
            )
            self.canary_endpoint = function_url(
                f"{name}-canary",
                Target(self.function.name, canary.name, canary.invoke_arn),
                "AWS_IAM",
                (),
                child,
            )
            self.canary_alarms = self._alarms(name, tags, child, executed_version=self.function.version)
        self.shadow_alarms: list[aws.cloudwatch.MetricAlarm] = []
        if args.settings.shadow and args.settings.stable_version:  # gone again at the next step
            self.shadow_alarms = self._shadow(name, tags, child)
        self.register_outputs(
            {
                "function_arn": self.function.arn,
                "alias_arn": self.alias.arn,
                "endpoint": self.endpoint,
                "alarms": [alarm.name for alarm in self.alarms],
                "canary_alarms": [alarm.name for alarm in self.canary_alarms],
                "shadow_alarms": [alarm.name for alarm in self.shadow_alarms],
            }
        )

    def _shadow(
        self, name: str, tags: dict[str, str], opts: pulumi.ResourceOptions
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """The `shadow` alias on the new version, its asynchronous events never retried (a mirrored
        request is a sample, not a delivery), and its alarms: the SLO of its own invocations, and the
        share of mirrored rows whose top class it changed, from the verdicts it logs."""
        args = self.args
        shadow = aws.lambda_.Alias(
            f"{name}-shadow-alias",
            name=SHADOW_ALIAS,
            function_name=self.function.name,
            function_version=self.function.version,
            opts=opts,
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-shadow-async",
            function_name=self.function.name,
            qualifier=shadow.name,
            maximum_retry_attempts=0,
            maximum_event_age_in_seconds=60,
            opts=opts,
        )
        verdicts = {"Function": args.function_name, "Version": self.function.version}

        expression = f"IF(agreed + disagreed >= {MIN_SHADOW_ROWS}, disagreed / (agreed + disagreed), 0)"
        disagreement = aws.cloudwatch.MetricAlarm(
            f"{name}-shadow-disagreement",
            name=f"{args.function_name}-shadow-disagreement",
            alarm_description=(
                f"share of mirrored rows whose top class the new version behind {args.function_name}:"
                f"{SHADOW_ALIAS} changed above {args.slo.max_disagreement:g} (of {MIN_SHADOW_ROWS}+ a minute)"
            ),
            comparison_operator="GreaterThanThreshold",
            threshold=args.slo.max_disagreement,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data="notBreaching",
            metric_queries=[
                metric_query("agreed", NAMESPACE, SHADOW_ROWS_AGREED, verdicts),
                metric_query("disagreed", NAMESPACE, SHADOW_ROWS_DISAGREED, verdicts),
                {"id": "ratio", "expression": expression, "label": "disagreement", "return_data": True},
            ],
            tags=tags,
            opts=opts,
        )
        return [*self._alarms(name, tags, opts, alias=SHADOW_ALIAS), disagreement]

    def _routing(self, newest: str) -> dict | None:
        """`live`'s weights: a share to the newest version, only while it differs from the stable one
        (Lambda refuses the alias's own version among its weights)."""
        args = self.args
        if (
            not args.settings.stable_version
            or not args.settings.canary_percent
            or newest == args.settings.stable_version
        ):
            return None
        return {"additional_version_weights": {newest: args.settings.canary_percent / 100}}

    def _alarms(
        self,
        name: str,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions,
        executed_version: pulumi.Output[str] | None = None,
        alias: str = ALIAS,
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """Error ratio, throttle ratio and p99 duration of the `live` alias, as SLO ratios rather than
        counts: what a deploy watches before and after it moves traffic. With `executed_version`, the
        same three for the requests `live` routed to that version alone (the canary's share); with
        another `alias`, that alias's (the shadow's)."""
        args = self.args
        qualified = f"{args.function_name}:{alias}"
        dimensions: dict = {"FunctionName": args.function_name, "Resource": qualified}
        prefix, scope = ("", qualified) if alias == ALIAS else (f"{alias}-", qualified)
        if executed_version is not None:
            dimensions = {**dimensions, "ExecutedVersion": executed_version}
            prefix, scope = "canary-", f"the new version behind {qualified}"

        def metric(
            query_id: str, metric_name: str, namespace: str = "AWS/Lambda", of: dict | None = None
        ) -> dict:
            return metric_query(query_id, namespace, metric_name, of or dimensions)

        def ratio(
            suffix: str, expression: str, threshold: float, *metrics: dict
        ) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{prefix}{suffix}",
                name=f"{args.function_name}-{prefix}{suffix}",
                alarm_description=f"{suffix.replace('-', ' ')} of {scope} above {threshold:g}",
                comparison_operator="GreaterThanThreshold",
                threshold=threshold,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data="notBreaching",
                metric_queries=[
                    *metrics,
                    {"id": "ratio", "expression": expression, "label": suffix, "return_data": True},
                ],
                tags=tags,
                opts=opts,
            )

        invocations, errors, throttles = (
            metric("invocations", "Invocations"),
            metric("errors", "Errors"),
            metric("throttles", "Throttles"),
        )
        slo = args.slo
        alarms = [
            # Invocations counts no throttled request: they are added back for the throttle ratio.
            ratio("error-ratio", "errors / invocations", slo.error_ratio, invocations, errors),
            ratio(
                "throttle-ratio",
                "throttles / (invocations + throttles)",
                slo.throttle_ratio,
                invocations,
                throttles,
            ),
            aws.cloudwatch.MetricAlarm(
                f"{name}-{prefix}p99-duration",
                name=f"{args.function_name}-{prefix}p99-duration",
                alarm_description=f"p99 duration of {scope} above {slo.p99_ms} ms",
                namespace="AWS/Lambda",
                metric_name="Duration",
                dimensions=dimensions,
                extended_statistic="p99",
                period=PERIOD_SECONDS,
                comparison_operator="GreaterThanThreshold",
                threshold=slo.p99_ms,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data="notBreaching",
                tags=tags,
                opts=opts,
            ),
        ]
        if self.api_id is not None and executed_version is None and alias == ALIAS:
            # Behind an HTTP API, the answers clients got: API Gateway's own 5xx (a function error, a
            # timeout, a throttle) over its requests.
            api = {"ApiId": self.api_id}
            alarms.append(ratio(
                "api-5xx-ratio",
                "errors / requests",
                slo.error_ratio,
                metric("errors", "5xx", "AWS/ApiGateway", api),
                metric("requests", "Count", "AWS/ApiGateway", api),
            ))  # fmt: skip
        return alarms

    def _mirroring(self) -> dict[str, str]:
        """Wherever the environment has a shadow phase, every version names the `shadow` alias, so the
        version that is stable when a phase starts mirrors to it (a version's environment is fixed when
        it is published); with no alias, its first invoke learns so and mirroring pauses."""
        if not self.args.shadow_percent:
            return {}
        return {
            "TWINSERVE_SHADOW_FUNCTION": f"{self.args.function_name}:{SHADOW_ALIAS}",
            "TWINSERVE_SHADOW_SAMPLE_RATE": f"{self.args.shadow_percent / 100:g}",
        }

    def _function_inputs(self, tags: dict[str, str]) -> dict:
        args = self.args
        package = (
            {
                "package_type": "Zip",
                "code": pulumi.FileArchive(str(args.settings.zip)),
                "handler": HANDLER,
                "runtime": f"python{args.settings.python_version}",
            }
            if args.settings.package == "zip"
            else {
                "package_type": "Image",
                "image_uri": args.settings.image,
                "image_config": {"entry_points": IMAGE_ENTRYPOINT, "commands": [HANDLER]},
            }
        )
        return {
            **package,
            "name": args.function_name,
            "role": self.role.arn,
            "architectures": [args.settings.architecture],
            "memory_size": args.settings.memory_mb,
            "timeout": args.settings.timeout_seconds,
            "reserved_concurrent_executions": args.settings.reserved_concurrency,
            "publish": True,
            "environment": {
                "variables": {
                    "TWINSERVE_LOG_LEVEL": "info",
                    **args.capture.environment(),
                    **self._mirroring(),
                }
            },
            "tracing_config": {"mode": "Active" if args.settings.tracing else "PassThrough"},
            "logging_config": {"log_format": "Text", "log_group": self.log_group.name},
            "tags": tags,
        }

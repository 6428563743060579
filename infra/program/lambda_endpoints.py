"""How clients reach the function's `live` alias: a Function URL or an HTTP API, and the grants each needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

CORS_HEADERS = ["content-type", "inference-header-content-length"]
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "route": "$context.routeKey",
        "status": "$context.status",
        "latency": "$context.integrationLatency",
    }
)


@dataclass(frozen=True)
class Target:
    """What an endpoint invokes: the function's alias."""

    function_name: pulumi.Output[str]
    alias_name: pulumi.Output[str]
    alias_invoke_arn: pulumi.Output[str]

    def grant(
        self, name: str, action: str, principal: str, opts: pulumi.ResourceOptions, **condition: Any
    ) -> None:
        """A resource-based permission on the alias."""
        aws.lambda_.Permission(
            name,
            action=action,
            principal=principal,
            function=self.function_name,
            qualifier=self.alias_name,
            opts=opts,
            **condition,
        )


@dataclass(frozen=True)
class HttpApi:
    """An HTTP API's settings: the function behind it, its timeout, throttling, log retention, CORS."""

    function_name: str
    timeout_seconds: int
    rate_limit: int
    burst_limit: int
    log_retention_days: int
    cors_allow_origins: tuple[str, ...]
    auth: str = "AWS_IAM"  # the route's authorization: AWS_IAM or NONE


def cors(origins: tuple[str, ...]) -> dict | None:
    """Browsers may call from these origins; none configured means no CORS at all."""
    if not origins:
        return None
    return {
        "allow_origins": list(origins),
        "allow_methods": ["GET", "POST"],
        "allow_headers": CORS_HEADERS,
        "max_age": 300,
    }


def function_url(
    name: str, target: Target, auth: str, origins: tuple[str, ...], opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    url = aws.lambda_.FunctionUrl(
        f"{name}-url",
        function_name=target.function_name,
        qualifier=target.alias_name,
        authorization_type=auth,
        cors=cors(origins),
        opts=opts,
    )
    if auth == "NONE":
        # Public by explicit choice: Lambda needs both grants for an unauthenticated URL.
        target.grant(
            f"{name}-public-url", "lambda:InvokeFunctionUrl", "*", opts, function_url_auth_type="NONE"
        )
        target.grant(
            f"{name}-public-invoke", "lambda:InvokeFunction", "*", opts, invoked_via_function_url=True
        )
    return url.function_url


def http_api(
    name: str, target: Target, api_args: HttpApi, tags: dict[str, str], opts: pulumi.ResourceOptions
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """Throttled and access-logged; API Gateway gives up a second after the function would.
    Returns its URL and its id (what its CloudWatch metrics are by)."""
    api = aws.apigatewayv2.Api(
        f"{name}-api",
        protocol_type="HTTP",
        tags=tags,
        cors_configuration=cors(api_args.cors_allow_origins),
        opts=opts,
    )
    integration = aws.apigatewayv2.Integration(
        f"{name}-integration",
        api_id=api.id,
        integration_type="AWS_PROXY",
        integration_uri=target.alias_invoke_arn,
        payload_format_version="2.0",
        timeout_milliseconds=(api_args.timeout_seconds + 1) * 1000,
        opts=opts,
    )
    aws.apigatewayv2.Route(
        f"{name}-route",
        api_id=api.id,
        route_key="$default",
        authorization_type=api_args.auth,
        target=integration.id.apply(lambda i: f"integrations/{i}"),
        opts=opts,
    )
    access_logs = aws.cloudwatch.LogGroup(
        f"{name}-api-logs",
        name=f"/aws/apigateway/{api_args.function_name}",
        retention_in_days=api_args.log_retention_days,
        tags=tags,
        opts=opts,
    )
    stage = aws.apigatewayv2.Stage(
        f"{name}-stage",
        api_id=api.id,
        name="$default",
        auto_deploy=True,
        default_route_settings={
            "throttling_rate_limit": api_args.rate_limit,
            "throttling_burst_limit": api_args.burst_limit,
        },
        access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
        opts=opts,
    )
    target.grant(
        f"{name}-api-invoke",
        "lambda:InvokeFunction",
        "apigateway.amazonaws.com",
        opts,
        source_arn=api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
    )
    return stage.invoke_url, api.id

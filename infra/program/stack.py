"""The twinserve stack: typed settings in, one component per runtime that is on, the endpoints out.

`infra/__main__.py` calls `main()` on every run of the program."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from program import settings as config
from program.kubernetes_service import KubernetesService, KubernetesServiceArgs
from program.lambda_service import LambdaService, LambdaServiceArgs


def kubernetes_args(s: config.Settings) -> KubernetesServiceArgs:
    return KubernetesServiceArgs(
        namespace=s.kubernetes_namespace,
        model_name=s.model_name,
        model_version=s.model_version,
        image=s.image or "",
        min_replicas=s.kubernetes_min_replicas,
        max_replicas=s.kubernetes_max_replicas,
        target_cpu_percent=s.kubernetes_target_cpu_percent,
        cpu_request=s.kubernetes_cpu_request,
        cpu_limit=s.kubernetes_cpu_limit,
        memory_request=s.kubernetes_memory_request,
        memory_limit=s.kubernetes_memory_limit,
        workers=s.kubernetes_workers,
        drain_seconds=s.kubernetes_drain_seconds,
        service_type=s.kubernetes_service_type,
        load_balancer_scheme=s.kubernetes_load_balancer_scheme,
        load_balancer_source_ranges=tuple(s.kubernetes_load_balancer_source_ranges),
        pdb_max_unavailable=s.kubernetes_pdb_max_unavailable,
        canary_image=s.canary_image or "",
        canary_replicas=s.kubernetes_canary_replicas,
        prometheus_rule=s.kubernetes_prometheus_rule,
        monitoring_labels=tuple(s.kubernetes_monitoring_labels),
        gateway=s.kubernetes_gateway,
        canary_percent=s.kubernetes_canary_percent,
        slo=s.slo,
    )


def lambda_args(s: config.Settings, account: str) -> LambdaServiceArgs:
    return LambdaServiceArgs(
        function_name=s.function_name,
        model_name=s.model_name,
        model_version=s.model_version,
        package=s.lambda_package,
        zip_path=s.lambda_zip if s.lambda_package == "zip" else None,
        image=s.lambda_image,
        python_version=s.lambda_python_version,
        architecture=s.lambda_architecture,
        memory_mb=s.lambda_memory_mb,
        timeout_seconds=s.lambda_timeout_seconds,
        reserved_concurrency=s.lambda_reserved_concurrency,
        provisioned_concurrency=s.lambda_provisioned_concurrency,
        endpoint=s.lambda_endpoint,
        function_url_auth=s.lambda_function_url_auth,
        cors_allow_origins=tuple(s.lambda_cors_allow_origins),
        http_api_rate_limit=s.lambda_http_api_rate_limit,
        http_api_burst_limit=s.lambda_http_api_burst_limit,
        http_api_auth=s.lambda_http_api_auth,
        log_retention_days=s.lambda_log_retention_days,
        tracing=s.lambda_tracing,
        async_dead_letter=s.lambda_async_dead_letter,
        slo=s.slo,
        stable_version=s.lambda_stable_version,
        canary_percent=s.lambda_canary_percent,
        environment=s.stack,
        account=account,
    )


def main() -> None:
    try:
        s = config.load()
    except config.SettingsError as error:
        # A wrong setting is the user's to fix: its message alone, without a traceback.
        raise pulumi.RunError(str(error)) from None
    pulumi.export("modelName", s.model_name)
    pulumi.export("modelVersion", s.model_version)
    pulumi.export("runtimes", s.runtimes)
    pulumi.export("commit", s.commit or None)
    pulumi.export("image", s.image)
    pulumi.export("imageDigest", s.image.split("@", 1)[1] if s.image else None)
    # What a preview passes back: the images this stack runs now.
    pulumi.export("lambdaImageArm64", s.lambda_image_arm64)
    pulumi.export("lambdaImageX8664", s.lambda_image_x86_64)
    if "kubernetes" in s.runtimes:
        # An explicit cluster from a secret kubeconfig, or the ambient context (KUBECONFIG) when unset.
        provider = (
            k8s.Provider("cluster", kubeconfig=pulumi.Output.secret(s.kubeconfig)) if s.kubeconfig else None
        )
        service = KubernetesService("serving", kubernetes_args(s), pulumi.ResourceOptions(provider=provider))
        pulumi.export("kubernetesNamespace", s.kubernetes_namespace)
        pulumi.export("kubernetesEndpoint", service.endpoint)
        pulumi.export("kubernetesCanary", f"{s.model_name}-canary" if s.canary_image else None)
        pulumi.export("kubernetesRoute", s.model_name if s.kubernetes_gateway else None)
        pulumi.export("kubernetesPrometheusRule", s.model_name if s.kubernetes_prometheus_rule else None)
    if "lambda" in s.runtimes:
        # The account whose boundary the function's role attaches (the deploy role may create no other).
        account = aws.get_caller_identity().account_id
        function = LambdaService("serving", lambda_args(s, account))
        pulumi.export("lambdaEndpoint", function.endpoint)
        pulumi.export(
            "lambdaAuth",
            s.lambda_function_url_auth if s.lambda_endpoint == "function-url" else s.lambda_http_api_auth,
        )
        # The SigV4 service an AWS_IAM endpoint is signed for: a Function URL's, or an HTTP API's.
        pulumi.export(
            "lambdaSigningService", "lambda" if s.lambda_endpoint == "function-url" else "execute-api"
        )
        pulumi.export("functionName", function.function.name)
        pulumi.export("functionArn", function.function.arn)
        pulumi.export("aliasArn", function.alias.arn)
        pulumi.export("lambdaAlarms", [alarm.name for alarm in function.alarms])
        # What a rollout reads back: the newest published version, the one `live` keeps, the share.
        pulumi.export("lambdaVersion", function.function.version)
        pulumi.export("lambdaLiveVersion", function.alias.function_version)
        pulumi.export("lambdaCanaryPercent", s.lambda_canary_percent if s.lambda_stable_version else 0)
        pulumi.export("lambdaCanaryEndpoint", function.canary_endpoint)
        pulumi.export("lambdaCanaryAlarms", [alarm.name for alarm in function.canary_alarms])

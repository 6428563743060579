"""The twinserve stack: typed settings in, one component per runtime that is on, the endpoints out.

`infra/__main__.py` calls `main()` on every run of the program."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from program import settings as config
from program.capture_archive import records_prefix
from program.kubernetes_service import KubernetesService, KubernetesServiceArgs
from program.lambda_service import LambdaService, LambdaServiceArgs


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
    pulumi.export("lambdaImageArm64", s.function.image_arm64)
    pulumi.export("lambdaImageX8664", s.function.image_x86_64)
    if "kubernetes" in s.runtimes:
        # An explicit cluster from a secret kubeconfig, or the ambient context (KUBECONFIG) when unset.
        provider = (
            k8s.Provider("cluster", kubeconfig=pulumi.Output.secret(s.kubeconfig)) if s.kubeconfig else None
        )
        args = KubernetesServiceArgs(
            s.model_name,
            s.model_version,
            s.image or "",
            s.slo,
            s.kubernetes,
            s.canary_image or "",
            s.capture,
            s.shadow_image or "",
            s.rollout.shadow_percent if s.rollout.shadow_minutes else 0,
        )
        service = KubernetesService("serving", args, pulumi.ResourceOptions(provider=provider))
        pulumi.export("kubernetesNamespace", s.kubernetes.namespace)
        pulumi.export("kubernetesEndpoint", service.endpoint)
        pulumi.export("kubernetesCanary", f"{s.model_name}-canary" if s.canary_image else None)
        pulumi.export("kubernetesShadow", f"{s.model_name}-shadow" if s.shadow_image else None)
        pulumi.export("kubernetesRoute", s.model_name if s.kubernetes.gateway else None)
        pulumi.export("kubernetesPrometheusRule", s.model_name if s.kubernetes.prometheus_rule else None)
    if "lambda" in s.runtimes:
        # The account whose boundary the function's role attaches (the deploy role may create no other).
        account = aws.get_caller_identity().account_id
        # The capture archive's bucket is the bootstrap's in this region, and the shadow alias is here.
        region = aws.get_region().region if s.capture.archive or s.rollout.shadow_minutes else ""
        function = LambdaService(
            "serving",
            LambdaServiceArgs(
                s.function_name,
                s.model_name,
                s.model_version,
                s.slo,
                s.function,
                s.stack,
                account,
                s.capture,
                region,
                s.rollout.shadow_percent if s.rollout.shadow_minutes else 0,
            ),
        )
        pulumi.export("lambdaEndpoint", function.endpoint)
        pulumi.export(
            "lambdaAuth",
            s.function.function_url_auth
            if s.function.endpoint == "function-url"
            else s.function.http_api_auth,
        )
        # The SigV4 service an AWS_IAM endpoint is signed for: a Function URL's, or an HTTP API's.
        pulumi.export(
            "lambdaSigningService", "lambda" if s.function.endpoint == "function-url" else "execute-api"
        )
        pulumi.export("functionName", function.function.name)
        pulumi.export("functionArn", function.function.arn)
        pulumi.export("aliasArn", function.alias.arn)
        pulumi.export("lambdaAlarms", [alarm.name for alarm in function.alarms])
        # What a rollout reads back: the newest published version, the one `live` keeps, the share.
        pulumi.export("lambdaVersion", function.function.version)
        pulumi.export("lambdaLiveVersion", function.alias.function_version)
        pulumi.export("lambdaCanaryPercent", s.function.canary_percent if s.function.stable_version else 0)
        pulumi.export("lambdaCanaryEndpoint", function.canary_endpoint)
        pulumi.export("lambdaCanaryAlarms", [alarm.name for alarm in function.canary_alarms])
        pulumi.export("lambdaShadowAlarms", [alarm.name for alarm in function.shadow_alarms])
        # Where the archive writes: s3://<bucket>/<prefix>YYYY/MM/DD/HH/.
        pulumi.export(
            "captureArchive",
            f"s3://{function.archive.bucket}/{records_prefix(s.model_name)}" if function.archive else None,
        )

"""The Lambda component, per environment: function, least-privilege role, logs, alias, concurrency, URL."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from offline.mocks import Run
from program.settings import SettingsError, from_config

from tests.infra.conftest import ENVS, PLATFORM_IMAGES


def test_function_follows_the_environment(
    stack: Run, env: str, config_for: Callable[..., dict[str, str]]
) -> None:
    settings = from_config(config_for(env), env)
    function = stack.one("aws:lambda/function:Function").inputs
    assert function["name"] == f"twinserve-iris-{env}"
    assert function["packageType"] == "Zip"
    assert function["runtime"] == "python3.12"
    assert function["handler"] == "serving.lambda_handler.handler"
    assert function["architectures"] == [settings.function.architecture]
    assert function["memorySize"] == settings.function.memory_mb
    assert function["timeout"] == settings.function.timeout_seconds
    assert function["reservedConcurrentExecutions"] == settings.function.reserved_concurrency
    assert function["publish"] is True
    assert function["tracingConfig"] == {"mode": "Active" if settings.function.tracing else "PassThrough"}
    assert function["code"].path.endswith(f"lambda-{settings.function.architecture}.zip")


def test_log_group_with_retention_is_the_functions_own(stack: Run, env: str) -> None:
    (log_group,) = stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == f"/aws/lambda/twinserve-iris-{env}"
    assert log_group.inputs["retentionInDays"] > 0
    assert (
        stack.one("aws:lambda/function:Function").inputs["loggingConfig"]["logGroup"]
        == log_group.inputs["name"]
    )


def test_role_may_write_its_own_logs_and_nothing_else(stack: Run, env: str) -> None:
    trust = json.loads(stack.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    policy = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    assert not [a for a in actions if "*" in a]
    (logs,) = [s for s in policy["Statement"] if s["Action"][0].startswith("logs:")]
    assert logs["Resource"] == [
        f"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/twinserve-iris-{env}:*"
    ]
    tracing = stack.one("aws:lambda/function:Function").inputs["tracingConfig"]["mode"] == "Active"
    assert any(a.startswith("xray:") for a in actions) == tracing
    assert any(a == "sqs:SendMessage" for a in actions) == bool(stack.of_type("aws:sqs/queue:Queue"))


def test_live_alias_over_the_published_version(stack: Run) -> None:
    alias = stack.one("aws:lambda/alias:Alias").inputs
    assert alias["name"] == "live"
    assert alias["functionVersion"] == "1"
    assert stack.outputs["aliasArn"] == f"{stack.outputs['functionArn']}:live"


@pytest.mark.parametrize(("env_name", "provisioned"), [("dev", None), ("staging", 1), ("prod", 5)])
def test_provisioned_concurrency_on_the_alias(
    run_stack: Callable[..., Run], env_name: str, provisioned: int
) -> None:
    configs = run_stack(env_name).of_type(
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    )
    assert [c.inputs["provisionedConcurrentExecutions"] for c in configs] == (
        [provisioned] if provisioned else []
    )
    assert all(c.inputs["qualifier"] == "live" for c in configs)


def test_function_url_is_iam_authenticated_unless_an_environment_says_none(stack: Run) -> None:
    url = stack.one("aws:lambda/functionUrl:FunctionUrl").inputs
    assert url["authorizationType"] == "AWS_IAM"
    assert url["qualifier"] == "live"
    assert not stack.of_type("aws:lambda/permission:Permission")
    assert stack.outputs["lambdaEndpoint"].startswith("https://")


def test_a_public_url_is_explicit_and_grants_exactly_the_url_invoke(run_stack: Callable[..., Run]) -> None:
    run = run_stack("dev", lambdaFunctionUrlAuth="NONE", lambdaCorsAllowOrigins='["https://app.example"]')
    assert run.one("aws:lambda/functionUrl:FunctionUrl").inputs["cors"]["allowOrigins"] == [
        "https://app.example"
    ]
    grants = sorted(
        (p.inputs["action"], p.inputs.get("functionUrlAuthType"), p.inputs.get("invokedViaFunctionUrl"))
        for p in run.of_type("aws:lambda/permission:Permission")
    )
    assert grants == [("lambda:InvokeFunction", None, True), ("lambda:InvokeFunctionUrl", "NONE", None)]


def test_http_api_variant_is_throttled_logged_and_times_out_after_the_function(
    run_stack: Callable[..., Run],
) -> None:
    run = run_stack("dev", lambdaEndpoint="http-api", lambdaHttpApiRateLimit="20", lambdaTimeoutSeconds="20")
    assert not run.of_type("aws:lambda/functionUrl:FunctionUrl")
    stage = run.one("aws:apigatewayv2/stage:Stage").inputs
    assert stage["defaultRouteSettings"] == {"throttlingRateLimit": 20.0, "throttlingBurstLimit": 100.0}
    assert "destinationArn" in stage["accessLogSettings"]
    integration = run.one("aws:apigatewayv2/integration:Integration").inputs
    assert integration["payloadFormatVersion"] == "2.0"
    assert integration["timeoutMilliseconds"] == 21000
    (permission,) = run.of_type("aws:lambda/permission:Permission")
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"].endswith("/*/*")
    # What clients got from the API is watched too: its 5xx over its requests, against the error SLO.
    alarm = next(a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                 if a.inputs["name"] == "twinserve-iris-dev-api-5xx-ratio")  # fmt: skip
    assert "twinserve-iris-dev-api-5xx-ratio" in run.outputs["lambdaAlarms"]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["ratio"]["expression"] == "errors / requests"
    assert alarm["threshold"] == 0.01
    api_id = run.one("aws:apigatewayv2/api:Api").name + "-id"  # the id the mocks give it
    for query_id, metric_name in (("errors", "5xx"), ("requests", "Count")):
        metric = queries[query_id]["metric"]
        assert (metric["namespace"], metric["metricName"]) == ("AWS/ApiGateway", metric_name)
        assert metric["dimensions"] == {"ApiId": api_id}


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_image_package_runs_its_architectures_manifest_with_the_runtime_interface_client(
    run_stack: Callable[..., Run], architecture: str
) -> None:
    run = run_stack("dev", lambdaPackage="image", lambdaMemoryMb="1024", lambdaArchitecture=architecture)
    function = run.one("aws:lambda/function:Function").inputs
    assert function["packageType"] == "Image"
    assert function["architectures"] == [architecture]
    assert function["imageUri"] == PLATFORM_IMAGES[architecture]  # never the multi-platform index
    assert function["imageConfig"] == {
        "entryPoints": ["python", "-m", "awslambdaric"],
        "commands": ["serving.lambda_handler.handler"],
    }
    assert "runtime" not in function
    assert "handler" not in function


@pytest.mark.parametrize("env_name", ENVS)
def test_failed_async_invocations_go_to_a_queue_where_enabled(
    run_stack: Callable[..., Run], env_name: str
) -> None:
    run = run_stack(env_name)
    queues = run.of_type("aws:sqs/queue:Queue")
    configs = run.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert len(queues) == len(configs) == (0 if env_name == "dev" else 1)
    for config in configs:
        assert config.inputs["destinationConfig"]["onFailure"]["destination"].startswith("arn:aws:sqs:")
        assert config.inputs["qualifier"] == "live"


def test_kubernetes_only_environment_declares_no_aws(run_stack: Callable[..., Run], tmp_path) -> None:
    run = run_stack("dev", runtimes='["kubernetes"]', lambdaZipDir=str(tmp_path))
    assert not [r for r in run.resources if r.type.startswith("aws:")]
    assert "lambdaEndpoint" not in run.outputs


@pytest.fixture
def image_decision(tmp_path: Path) -> Path:
    """What `make package` leaves for a model LiteRT cannot run: no zip, and why."""
    reason = "the model has no model.tflite (string input 'text': LiteRT has no string tensors)"
    (tmp_path / "lambda-package.json").write_text(
        json.dumps({"package": "image", "model": "reviews/1", "reason": reason})
    )
    return tmp_path


@pytest.mark.parametrize("env_name", ENVS)
def test_auto_follows_make_package_to_the_image(
    run_stack: Callable[..., Run], image_decision: Path, env_name: str
) -> None:
    function = (
        run_stack(env_name, lambdaZipDir=str(image_decision), lambdaMemoryMb="1024")
        .one("aws:lambda/function:Function")
        .inputs
    )
    assert function["packageType"] == "Image"
    assert function["imageUri"] == PLATFORM_IMAGES["arm64"]


def test_a_zip_asked_for_where_make_package_built_none_names_why(
    config_for: Callable[..., dict[str, str]], image_decision: Path
) -> None:
    config = config_for("dev", lambdaZipDir=str(image_decision), lambdaPackage="zip")
    with pytest.raises(
        SettingsError, match=r"lambdaPackage is zip, but `make package` built none: .*string input"
    ):
        from_config(config, "dev")


def test_auto_with_a_zip_decision_uses_the_zip(
    config_for: Callable[..., dict[str, str]], zip_dir: Path
) -> None:
    decided = zip_dir.parent / "decided"
    shutil.copytree(zip_dir, decided, dirs_exist_ok=True)
    (decided / "lambda-package.json").write_text(json.dumps({"package": "zip", "model": "iris/1"}))
    assert from_config(config_for("dev", lambdaZipDir=str(decided)), "dev").function.package == "zip"


def test_the_image_with_too_little_memory_names_the_key_and_why(
    config_for: Callable[..., dict[str, str]], image_decision: Path
) -> None:
    with pytest.raises(
        SettingsError, match=r"lambdaMemoryMb: 256 is too little for the model image \(the model has"
    ):
        from_config(config_for("dev", lambdaZipDir=str(image_decision)), "dev")


@pytest.mark.parametrize(("env_name", "error_ratio"), [("dev", 0.01), ("staging", 0.01), ("prod", 0.005)])
def test_the_live_alias_is_watched_by_slo_alarms_from_the_settings(
    run_stack: Callable[..., Run], env_name: str, error_ratio: float
) -> None:
    run = run_stack(env_name)
    function = f"twinserve-iris-{env_name}"
    alarms = {a.inputs["name"]: a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert sorted(alarms) == [
        f"{function}-error-ratio",
        f"{function}-p99-duration",
        f"{function}-throttle-ratio",
    ]
    assert sorted(run.outputs["lambdaAlarms"]) == sorted(alarms)  # what the deploy reads the states of
    alias = {"FunctionName": function, "Resource": f"{function}:live"}
    for alarm in alarms.values():
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
        assert (alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (3, 2)
        assert alarm["treatMissingData"] == "notBreaching"
    errors = alarms[f"{function}-error-ratio"]
    assert errors["threshold"] == error_ratio
    queries = {q["id"]: q for q in errors["metricQueries"]}
    assert queries["ratio"] == {"id": "ratio", "expression": "errors / invocations", "label": "error-ratio",
                                "returnData": True}  # fmt: skip
    for metric_id, name in (("errors", "Errors"), ("invocations", "Invocations")):
        metric = queries[metric_id]["metric"]
        assert (metric["namespace"], metric["metricName"], metric["dimensions"]) == (
            "AWS/Lambda",
            name,
            alias,
        )
        assert (metric["stat"], metric["period"], queries[metric_id]["returnData"]) == ("Sum", 60, False)
    throttles = {q["id"]: q for q in alarms[f"{function}-throttle-ratio"]["metricQueries"]}
    assert throttles["ratio"]["expression"] == "throttles / (invocations + throttles)"
    assert alarms[f"{function}-throttle-ratio"]["threshold"] == 0.05
    duration = alarms[f"{function}-p99-duration"]
    assert (duration["metricName"], duration["extendedStatistic"], duration["threshold"]) == (
        "Duration",
        "p99",
        1000,
    )
    assert duration["dimensions"] == alias


def test_a_rollout_keeps_live_on_the_stable_version_and_routes_the_share_to_the_new_one(
    run_stack: Callable[..., Run],
) -> None:
    # The mocks publish version "1": the stable version is an older deploy's "4" here.
    run = run_stack("prod", lambdaStableVersion="4", lambdaCanaryPercent=10)
    aliases = {a.inputs["name"]: a.inputs for a in run.of_type("aws:lambda/alias:Alias")}
    assert aliases["live"]["functionVersion"] == "4"
    assert aliases["live"]["routingConfig"] == {"additionalVersionWeights": {"1": 0.1}}
    assert aliases["canary"]["functionVersion"] == "1"
    urls = {u.inputs["qualifier"]: u.inputs for u in run.of_type("aws:lambda/functionUrl:FunctionUrl")}
    assert urls["canary"]["authorizationType"] == "AWS_IAM"  # whatever live's auth is
    assert run.outputs["lambdaCanaryEndpoint"]
    (live, newest, share) = (
        run.outputs[k] for k in ("lambdaLiveVersion", "lambdaVersion", "lambdaCanaryPercent")
    )
    assert (live, newest, share) == ("4", "1", 10)
    canary = {a.inputs["name"]: a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if "-canary-" in a.inputs["name"]}  # fmt: skip
    assert (
        sorted(canary)
        == sorted(run.outputs["lambdaCanaryAlarms"])
        == [
            "twinserve-iris-prod-canary-error-ratio",
            "twinserve-iris-prod-canary-p99-duration",
            "twinserve-iris-prod-canary-throttle-ratio",
        ]
    )
    version_only = {"FunctionName": "twinserve-iris-prod", "Resource": "twinserve-iris-prod:live",
                    "ExecutedVersion": "1"}  # fmt: skip
    assert canary["twinserve-iris-prod-canary-p99-duration"]["dimensions"] == version_only
    errors = {q["id"]: q for q in canary["twinserve-iris-prod-canary-error-ratio"]["metricQueries"]}
    assert errors["errors"]["metric"]["dimensions"] == version_only
    assert canary["twinserve-iris-prod-canary-error-ratio"]["threshold"] == 0.005  # prod's SLO


def test_a_rolled_back_alias_stays_pinned_to_the_stable_version_without_weights(
    run_stack: Callable[..., Run],
) -> None:
    run = run_stack("prod", lambdaStableVersion="4", lambdaCanaryPercent=0)
    live = next(a.inputs for a in run.of_type("aws:lambda/alias:Alias") if a.inputs["name"] == "live")
    assert live["functionVersion"] == "4"
    assert not live.get("routingConfig")
    assert run.outputs["lambdaCanaryAlarms"] == []
    assert run.outputs["lambdaCanaryPercent"] == 0
    assert [a.inputs["name"] for a in run.of_type("aws:lambda/alias:Alias")] == ["live"]  # no canary alias
    assert run.outputs["lambdaCanaryEndpoint"] is None


def test_an_unchanged_function_gets_no_weights_on_its_own_version(run_stack: Callable[..., Run]) -> None:
    # Nothing new was published: Lambda refuses the alias's own version among its weights.
    run = run_stack("prod", lambdaStableVersion="1", lambdaCanaryPercent=10)
    live = next(a.inputs for a in run.of_type("aws:lambda/alias:Alias") if a.inputs["name"] == "live")
    assert live["functionVersion"] == "1"
    assert not live.get("routingConfig")


def test_without_a_rollout_there_is_no_canary_alias_and_live_follows_the_newest(stack: Run) -> None:
    assert [a.inputs["name"] for a in stack.of_type("aws:lambda/alias:Alias")] == ["live"]
    assert stack.outputs["lambdaCanaryEndpoint"] is None
    assert stack.outputs["lambdaLiveVersion"] == stack.outputs["lambdaVersion"] == "1"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lambdaCanaryPercent": 10}, "lambdaCanaryPercent is set, but lambdaStableVersion"),
        ({"lambdaStableVersion": "4", "runtimes": ["kubernetes"]}, "does not deploy the lambda runtime"),
        ({"lambdaStableVersion": "v4"}, "lambdaStableVersion"),
        ({"lambdaStableVersion": "4", "lambdaCanaryPercent": 100}, "lambdaCanaryPercent"),
        ({"rolloutStrategy": "blue-green"}, "rolloutStrategy"),
        ({"rolloutStepPercent": 60}, "rolloutStepPercent"),
        (
            {
                "rolloutStrategy": "linear",
                "rolloutStepPercent": 5,
                "rolloutBakeMinutes": 3,
                "rolloutShadowMinutes": 0,
            },
            "rolloutStepPercent 5 baked rolloutBakeMinutes 3 bakes 57 minutes, more than the 45",
        ),
        (  # ten ups and smoke tests beside 45 minutes of bakes do not fit in the 60-minute job
            {
                "rolloutStrategy": "linear",
                "rolloutStepPercent": 10,
                "rolloutBakeMinutes": 5,
                "rolloutShadowMinutes": 0,
            },
            r"rolloutStepPercent 10 takes about 87 minutes \(10 ups and smoke tests of ~3, 45 baking",
        ),
    ],
)
def test_rollout_settings_that_cannot_work_are_named(
    config_for: Callable[..., dict[str, str]], overrides: dict, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        from_config(config_for("prod", **overrides), "prod")


def test_capture_reaches_the_function_only_when_an_environment_sets_it(run_stack: Callable[..., Run]) -> None:
    variables = run_stack("dev").one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert variables == {"TWINSERVE_LOG_LEVEL": "info"}
    captured = run_stack(
        "dev", captureSampleRate="1", captureFields='["outputs"]', captureMaxRecordBytes="4096"
    )
    assert captured.one("aws:lambda/function:Function").inputs["environment"]["variables"] == {
        "TWINSERVE_LOG_LEVEL": "info",
        "TWINSERVE_CAPTURE_SAMPLE_RATE": "1",
        "TWINSERVE_CAPTURE_FIELDS": "outputs",
        "TWINSERVE_CAPTURE_MAX_RECORD_BYTES": "4096",
    }


def shadow_step(run_stack: Callable[..., Run]) -> Run:
    """prod during its shadow phase: live on version 4, the shadow alias on the newly published one."""
    return run_stack("prod", lambdaStableVersion="4", lambdaShadow=True)


def test_with_a_shadow_phase_every_version_names_its_shadow_alias_and_may_invoke_it_alone(
    run_stack: Callable[..., Run],
) -> None:
    """Declared wherever the environment has a shadow phase, so the version that is stable when a phase
    starts already names the alias (a version's environment is fixed when it is published)."""
    from tests.infra.iam import ACCOUNT, REGION, bootstrap, permitted

    for run in (run_stack("prod"), shadow_step(run_stack)):
        variables = run.one("aws:lambda/function:Function").inputs["environment"]["variables"]
        assert variables["TWINSERVE_SHADOW_FUNCTION"] == "twinserve-iris-prod:shadow"
        assert variables["TWINSERVE_SHADOW_SAMPLE_RATE"] == "0.1"
    policy = json.loads(run_stack("prod").one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:twinserve-iris-prod"
    (invoke,) = [s for s in policy["Statement"] if s["Action"] == ["lambda:InvokeFunction"]]
    assert invoke["Resource"] == [f"{function}:shadow"]
    (boundary,) = bootstrap().of_type("aws:iam/policy:Policy")
    limit = json.loads(boundary.inputs["policy"])
    assert permitted(policy, limit, {}, ("lambda:InvokeFunction", f"{function}:shadow", {}))
    for escalation in [
        ("lambda:InvokeFunction", f"{function}:live", {}),  # its clients' alias
        ("lambda:InvokeFunction", f"{function}:canary", {}),
        ("lambda:InvokeFunction", function, {}),  # $LATEST
        ("lambda:InvokeFunction", f"{function}:4", {}),  # a version by number
        ("lambda:InvokeFunction", f"{function[:-4]}dev:shadow", {}),  # another environment's
        ("lambda:InvokeFunctionUrl", f"{function}:shadow", {}),
        ("lambda:UpdateAlias", f"{function}:shadow", {}),
    ]:
        assert not permitted(policy, limit, {}, escalation), escalation
    # Whatever a role's own policy says, the boundary holds it to the shadow alias of a twinserve function.
    anything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}],
    }
    assert not permitted(anything, limit, {}, ("lambda:InvokeFunction", f"{function}:live", {}))
    other = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments:shadow"
    assert not permitted(anything, limit, {}, ("lambda:InvokeFunction", other, {}))
    without = run_stack("staging")
    assert (
        "TWINSERVE_SHADOW_FUNCTION"
        not in without.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    )
    staging_policy = json.loads(without.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert not [s for s in staging_policy["Statement"] if s["Action"][0].startswith("lambda:")]


def test_a_shadow_step_puts_the_shadow_alias_on_the_new_version_without_retries_and_alarms_on_it(
    run_stack: Callable[..., Run],
) -> None:
    run = shadow_step(run_stack)
    aliases = {a.inputs["name"]: a.inputs for a in run.of_type("aws:lambda/alias:Alias")}
    assert (aliases["live"]["functionVersion"], aliases["shadow"]["functionVersion"]) == ("4", "1")
    assert not aliases["live"].get("routingConfig")  # no client reaches the new version
    configs = {c.inputs["qualifier"]: c.inputs for c in run.of_type(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")}  # fmt: skip
    assert configs["shadow"]["maximumRetryAttempts"] == 0
    assert "destinationConfig" not in configs["shadow"]  # a sample, never a dead letter
    alarms = {a.inputs["name"]: a.inputs for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if "-shadow-" in a.inputs["name"]}  # fmt: skip
    assert (
        sorted(alarms)
        == sorted(run.outputs["lambdaShadowAlarms"])
        == [
            "twinserve-iris-prod-shadow-disagreement",
            "twinserve-iris-prod-shadow-error-ratio",
            "twinserve-iris-prod-shadow-p99-duration",
            "twinserve-iris-prod-shadow-throttle-ratio",
        ]
    )
    disagreement = alarms["twinserve-iris-prod-shadow-disagreement"]
    assert disagreement["threshold"] == 0.05
    queries = {q["id"]: q for q in disagreement["metricQueries"]}
    assert (
        queries["ratio"]["expression"] == "IF(agreed + disagreed >= 100, disagreed / (agreed + disagreed), 0)"
    )
    verdicts = {"Function": "twinserve-iris-prod", "Version": "1"}  # serving/lambda_shadow.py's dimensions
    for metric, query in (("ShadowRowsAgreed", "agreed"), ("ShadowRowsDisagreed", "disagreed")):
        expected = {"namespace": "twinserve", "metricName": metric, "dimensions": verdicts, "period": 60}
        assert queries[query]["metric"] == {**expected, "stat": "Sum"}
    errors = {q["id"]: q for q in alarms["twinserve-iris-prod-shadow-error-ratio"]["metricQueries"]}
    assert errors["errors"]["metric"]["dimensions"] == {
        "FunctionName": "twinserve-iris-prod", "Resource": "twinserve-iris-prod:shadow"
    }  # fmt: skip
    assert run_stack("prod").outputs["lambdaShadowAlarms"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"lambdaShadow": True},
            "lambdaShadow is set, but lambdaStableVersion or rolloutShadowMinutes is not",
        ),
        (
            {"lambdaShadow": True, "lambdaStableVersion": "4", "rolloutShadowMinutes": 0},
            "lambdaShadow is set, but lambdaStableVersion or rolloutShadowMinutes is not",
        ),
        (
            {"lambdaShadow": True, "lambdaStableVersion": "4", "lambdaCanaryPercent": 10},
            "lambdaShadow and lambdaCanaryPercent are both set",
        ),
    ],
)
def test_lambda_shadow_settings_that_cannot_work_are_named(
    config_for: Callable[..., dict[str, str]], overrides: dict, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        from_config(config_for("prod", **overrides), "prod")

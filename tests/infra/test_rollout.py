"""A rollout's plan (steps, each up's inputs, the rollback's) and its reading of Lambda's alarms,
against CloudWatch served by moto."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest
from moto import mock_aws
from rollout import Plan, Running, canary_pods, shares
from settings import from_config
from watch import alarm_breaches

NEW = "registry.example/twinserve@sha256:" + "b" * 64
OLD = "registry.example/twinserve@sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("strategy", "step", "expected"),
    [
        ("all-at-once", 10, [100]),
        ("canary", 10, [10, 100]),
        ("linear", 25, [25, 50, 75, 100]),
        ("linear", 30, [30, 60, 90, 100]),
    ],
)
def test_each_strategy_ends_with_everything_on_the_new_model(
    strategy: str, step: int, expected: list[int]
) -> None:
    assert shares(strategy, step) == expected


@pytest.mark.parametrize(
    ("stable", "percent", "pods"), [(3, 10, 1), (9, 10, 1), (18, 10, 2), (3, 50, 3), (1, 25, 1)]
)
def test_canary_pods_follow_the_share_with_at_least_one(stable: int, percent: int, pods: int) -> None:
    assert canary_pods(stable, percent) == pods


def plan(config_for: Callable[..., dict[str, str]], running: Running, **overrides: object) -> Plan:
    settings = from_config(config_for("prod", **overrides), "prod")
    return Plan(settings, running, NEW, settings.rollout_strategy)


def test_a_canary_step_pins_the_stable_side_of_both_runtimes(
    config_for: Callable[..., dict[str, str]],
) -> None:
    p = plan(config_for, Running(OLD, "7"), rolloutStrategy="canary")
    assert p.steps == [10, 100]
    assert p.inputs(10) == {
        "image": OLD,
        "canaryImage": NEW,
        "kubernetesCanaryReplicas": "1",
        "lambdaStableVersion": "7",
        "lambdaCanaryPercent": "10",
    }
    assert p.inputs(100) == {
        "image": NEW,
        "canaryImage": "",
        "lambdaStableVersion": "",
        "lambdaCanaryPercent": "0",
    }
    assert p.rollback_inputs() == {
        "image": OLD,
        "canaryImage": "",
        "lambdaStableVersion": "7",
        "lambdaCanaryPercent": "0",
    }
    assert "1 canary pod(s) beside 3+ stable (at most 25%)" in p.describe(10)


def test_a_first_deploy_has_one_step_whatever_the_strategy(config_for: Callable[..., dict[str, str]]) -> None:
    assert plan(config_for, Running(None, None), rolloutStrategy="linear").steps == [100]


def test_an_unchanged_image_runs_no_kubernetes_canary(config_for: Callable[..., dict[str, str]]) -> None:
    p = plan(config_for, Running(NEW, "7"), rolloutStrategy="canary")
    assert p.inputs(10)["canaryImage"] == ""
    assert "kubernetesCanaryReplicas" not in p.inputs(10)


def test_a_stack_without_a_recorded_version_moves_lambda_at_once(
    config_for: Callable[..., dict[str, str]],
) -> None:
    p = plan(config_for, Running(OLD, None), rolloutStrategy="canary")
    assert (p.inputs(10)["lambdaStableVersion"], p.inputs(10)["lambdaCanaryPercent"]) == ("", "0")
    assert "Lambda all at once (no stable version recorded)" in p.describe(10)


@mock_aws
def test_an_alarm_in_alarm_is_a_breach_named_with_its_reason() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    names = [f"twinserve-iris-prod-canary-{s}" for s in ("error-ratio", "throttle-ratio", "p99-duration")]
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
            EvaluationPeriods=3, Threshold=0.005, ComparisonOperator="GreaterThanThreshold",
        )  # fmt: skip
    states, breaches = alarm_breaches(cloudwatch, names)
    assert breaches == []
    cloudwatch.set_alarm_state(
        AlarmName=names[0], StateValue="ALARM", StateReason="2 of 3 datapoints > 0.005"
    )
    states, breaches = alarm_breaches(cloudwatch, names)
    assert states[names[0]] == "ALARM"
    assert breaches == [f"alarm {names[0]} is in ALARM: 2 of 3 datapoints > 0.005"]
    _, breaches = alarm_breaches(cloudwatch, [*names, "twinserve-iris-prod-gone"])
    assert "alarm twinserve-iris-prod-gone does not exist in CloudWatch" in breaches

"""A rollout's plan (steps, each up's inputs, the rollback's) and its reading of Lambda's alarms,
against CloudWatch served by moto."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from delivery.rollout import DEPLOYED, FAILED, ROLLED_BACK, Rollout
from delivery.rollout_plan import SHADOW, Plan, Running, canary_pods, shadow_pods, shares
from delivery.smoke import Example
from delivery.targets import Targets
from delivery.watch import alarm_breaches
from moto import mock_aws
from offline.mocks import INFRA, run_program
from program.settings import PROJECT, from_config

from tests.model_servers import Server, faulty_models, start
from tests.ports import free_port
from tests.stand_ins import port_forwarding_kubectl

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
    ("stable", "percent", "pods"),
    [(3, 10, 1), (9, 10, 1), (18, 10, 2), (3, 50, 3), (1, 25, 1), (3, 90, 3), (3, 70, 3), (10, 60, 10)],
)
def test_canary_pods_follow_the_share_with_at_least_one_and_at_most_the_stable_count(
    stable: int, percent: int, pods: int
) -> None:
    assert canary_pods(stable, percent) == pods


def plan(config_for: Callable[..., dict[str, str]], running: Running, **overrides: object) -> Plan:
    settings = from_config(config_for("prod", **overrides), "prod")
    return Plan(settings, running, NEW, settings.rollout.strategy)


def test_a_canary_step_pins_the_stable_side_of_both_runtimes(
    config_for: Callable[..., dict[str, str]],
) -> None:
    p = plan(config_for, Running(OLD, "7"), rolloutStrategy="canary", rolloutShadowMinutes=0)
    assert p.steps == [10, 100]
    assert p.inputs(10) == {
        "image": OLD,
        "canaryImage": NEW,
        "shadowImage": "",
        "kubernetesCanaryReplicas": "1",
        "lambdaStableVersion": "7",
        "lambdaCanaryPercent": "10",
        "lambdaShadow": "false",
    }
    assert p.inputs(100) == {
        "image": NEW,
        "canaryImage": "",
        "shadowImage": "",
        "lambdaStableVersion": "",
        "lambdaCanaryPercent": "0",
        "lambdaShadow": "false",
    }
    assert p.rollback_inputs() == {
        "image": OLD,
        "canaryImage": "",
        "shadowImage": "",
        "lambdaStableVersion": "7",
        "lambdaCanaryPercent": "0",
        "lambdaShadow": "false",
    }
    recorded = plan(config_for, Running(OLD, "7", "a1" * 20), rolloutStrategy="canary")
    assert recorded.rollback_inputs()["commit"] == "a1" * 20  # what the stack serves again
    assert "1 canary pod(s) beside 3+ stable (at most 25%)" in p.describe(10)


def test_a_shadow_phase_comes_first_with_the_stable_side_pinned_everywhere(
    config_for: Callable[..., dict[str, str]],
) -> None:
    p = plan(config_for, Running(OLD, "7"), rolloutShadowPercent=50)  # prod: a 5-minute shadow, then a canary
    assert p.steps == [SHADOW, 10, 100]
    assert p.inputs(SHADOW) == {
        "image": OLD,
        "shadowImage": NEW,
        "kubernetesShadowReplicas": "2",  # half of prod's 3 stable pods' requests
        "canaryImage": "",
        "lambdaStableVersion": "7",
        "lambdaCanaryPercent": "0",
        "lambdaShadow": "true",  # the new version behind the shadow alias, live on 7
    }
    assert p.inputs(10)["shadowImage"] == ""
    assert p.rollback_inputs()["shadowImage"] == ""
    assert p.describe(SHADOW) == (
        "shadow: Kubernetes mirrors 50% of the stable pods' requests to 2 shadow pod(s); Lambda's live alias "
        "stays on version 7 and hands 50% of its requests to the new version's shadow alias; no client gets "
        "the new model's answers"
    )
    settings = p.settings
    assert Plan(settings, Running(OLD, "7"), NEW, "all-at-once", shadow=False).steps == [100]  # by hand
    assert Plan(settings, Running(OLD, "7"), NEW, "all-at-once").steps == [SHADOW, 100]
    same_image = Plan(settings, Running(NEW, "7"), NEW, "canary")
    assert same_image.steps == [SHADOW, 10, 100]  # Lambda's new version still goes through its shadow
    assert "shadowImage" not in {k for k, v in same_image.inputs(SHADOW).items() if v}
    assert Plan(settings, Running(NEW, None), NEW, "canary").steps == [10, 100]  # nothing to shadow
    assert Plan(settings, Running(None, None), NEW, "canary").steps == [100]  # a first deploy
    lambda_only = plan(config_for, Running(None, "7"), runtimes=["lambda"])
    assert lambda_only.steps == [SHADOW, 10, 100]
    assert lambda_only.inputs(SHADOW)["lambdaShadow"] == "true"


@pytest.mark.parametrize(("stable", "percent", "pods"), [(3, 10, 1), (3, 50, 2), (10, 25, 3), (1, 100, 1)])
def test_shadow_pods_take_the_mirrored_share_of_the_stable_pods(stable: int, percent: int, pods: int) -> None:
    assert shadow_pods(stable, percent) == pods


def test_a_first_deploy_has_one_step_whatever_the_strategy(config_for: Callable[..., dict[str, str]]) -> None:
    linear = plan(config_for, Running(None, None), rolloutStrategy="linear", rolloutBakeMinutes=1)
    assert linear.steps == [100]


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


class MockedCloud:
    """The engine for the Lambda side, which cannot run here: each up runs the real program under the
    SDK's mocks with the step's inputs, creates the alarms it declares in CloudWatch (moto), and serves
    its Function URLs from a real model server (`canary_url`: the canary alias's from another).
    `breach` puts a named alarm in ALARM once it exists."""

    def __init__(
        self,
        config_for: Callable[..., dict[str, str]],
        server_url: str,
        breach: str = "",
        model: str = "scorer",
        canary_url: str = "",
    ) -> None:
        self.config_for, self.server_url, self.breach = config_for, server_url, breach
        self.model, self.canary_url = model, canary_url or server_url
        self.ups: list[dict[str, str]] = []
        self.cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")

    def outputs(self) -> dict[str, object]:
        return {}

    def up(self, inputs: dict[str, str]) -> dict[str, object]:
        self.ups.append(inputs)
        config = self.config_for("prod", runtimes=["lambda"], modelName=self.model, **inputs)
        outputs = dict(run_program(INFRA, PROJECT, "prod", config).outputs)
        for name in [
            *outputs["lambdaAlarms"],
            *outputs["lambdaCanaryAlarms"],
            *outputs["lambdaShadowAlarms"],
        ]:
            self.cloudwatch.put_metric_alarm(
                AlarmName=name, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
                EvaluationPeriods=3, Threshold=0.005, ComparisonOperator="GreaterThanThreshold",
            )  # fmt: skip
            if name == self.breach:
                reason = "Threshold Crossed: 2 out of the last 3 datapoints were greater than the threshold"
                self.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)
        for key, url in (("lambdaEndpoint", self.server_url), ("lambdaCanaryEndpoint", self.canary_url)):
            if outputs.get(key):
                outputs[key] = url  # the Function URL, served by the model's own server
        return outputs


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    models = faulty_models(tmp_path_factory.mktemp("models"), "none")
    server = start(models / "none" / "models")
    yield server, models / "none" / "models" / "scorer" / "1" / "metadata.json"
    server.stop()


def lambda_rollout(
    config_for: Callable[..., dict[str, str]], cloud: MockedCloud, metadata: Path, shadow_minutes: int = 0
) -> Rollout:
    """prod's canary on Lambda alone (its shadow phase only with `shadow_minutes`, baked 1 s)."""
    config = config_for(
        "prod", runtimes=["lambda"], modelName=cloud.model, rolloutShadowMinutes=shadow_minutes
    )
    settings = from_config(config, "prod")
    plan = Plan(settings, Running(None, "4"), NEW, "canary")  # live ran version 4; the mocks publish "1"
    return Rollout(
        plan, cloud, Example.read(metadata), Targets(), bake_seconds=1, interval=0.25, shadow_seconds=1
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def drifting_sorter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """The sorter (tests/workflows/faulty_models.py) with its model.tflite replaced by its retrain's, on
    LiteRT as the Lambda zip serves it: TensorFlow would answer as exported, LiteRT does not."""
    built = faulty_models(tmp_path_factory.mktemp("sorters"), "sorter-stable", "sorter-retrained")
    drifting = built / "drifting"
    shutil.copytree(built / "sorter-stable" / "models", drifting)
    retrained = built / "sorter-retrained" / "models" / "sorter" / "1" / "model.tflite"
    shutil.copyfile(retrained, drifting / "sorter" / "1" / "model.tflite")
    server = start(drifting, TWINSERVE_RUNTIME="litert")
    yield server, drifting / "sorter" / "1" / "metadata.json"
    server.stop()


@mock_aws
def test_a_lambda_canary_whose_litert_file_drifted_is_rolled_back_at_its_smoke_test(
    config_for: Callable[..., dict[str, str]], drifting_sorter: tuple[Server, Path]
) -> None:
    """The golden set replayed through the canary alias's URL (the zip's LiteRT) before any bake."""
    server, metadata = drifting_sorter
    cloud = MockedCloud(config_for, server.url, model="sorter")
    rollout = lambda_rollout(config_for, cloud, metadata)
    assert rollout.run() == ROLLED_BACK
    summary = "\n".join(rollout.timeline.lines)
    failed = (
        r"\*\*Failed\*\*: lambda canary: the (model's example|golden set's request 1 of 1) got a different"
    )
    assert re.search(failed, summary), summary
    assert "| after |" not in summary  # never baked
    assert [up["lambdaCanaryPercent"] for up in cloud.ups] == ["10", "0"]


@mock_aws
def test_a_lambda_canary_whose_alarm_fires_is_rolled_back_to_the_stable_version(
    config_for: Callable[..., dict[str, str]], scorer: tuple[Server, Path]
) -> None:
    server, metadata = scorer
    cloud = MockedCloud(config_for, server.url, breach="twinserve-scorer-prod-canary-error-ratio")
    rollout = lambda_rollout(config_for, cloud, metadata)
    assert rollout.run() == ROLLED_BACK
    summary = "\n".join(rollout.timeline.lines)
    shared = {
        "image": NEW,
        "canaryImage": "",
        "shadowImage": "",
        "lambdaStableVersion": "4",
        "lambdaShadow": "false",
    }
    assert cloud.ups == [{**shared, "lambdaCanaryPercent": "10"}, {**shared, "lambdaCanaryPercent": "0"}]
    assert "**Step 10%: Lambda 10% of live**" in summary
    assert (
        "- smoke: lambda canary: ready, metadata, the model's example and its golden set (4 rows)" in summary
    )
    assert (
        "**Failed**: lambda alarm twinserve-scorer-prod-canary-error-ratio is in ALARM: Threshold Crossed"
        in summary
    )
    assert "all traffic on the stable model: Lambda's live alias is on version 4." in summary


@mock_aws
def test_a_lambda_shadow_whose_disagreement_alarm_fires_is_rolled_back_before_any_client_reaches_it(
    config_for: Callable[..., dict[str, str]], scorer: tuple[Server, Path]
) -> None:
    """The shadow phase on Lambda: live stays on version 4 while the new version behind the shadow alias
    answers what the stable one hands it; its disagreement alarm (the verdicts it logs as embedded
    metrics, tests/serving/test_lambda_shadow.py) fires, and the one rollback up removes the alias."""
    server, metadata = scorer
    cloud = MockedCloud(config_for, server.url, breach="twinserve-scorer-prod-shadow-disagreement")
    rollout = lambda_rollout(config_for, cloud, metadata, shadow_minutes=5)
    assert rollout.run() == ROLLED_BACK
    summary = "\n".join(rollout.timeline.lines)
    assert [
        (up["lambdaShadow"], up["lambdaStableVersion"], up["lambdaCanaryPercent"]) for up in cloud.ups
    ] == [
        ("true", "4", "0"),  # the shadow: no share of live
        ("false", "4", "0"),  # the rollback: the alias gone, live still on 4
    ]
    assert "**Step shadow: Lambda's live alias stays on version 4 and hands 10% of its requests" in summary
    assert (
        "**Failed**: lambda alarm twinserve-scorer-prod-shadow-disagreement is in ALARM: Threshold Crossed"
        in summary
    )
    assert "**Step 10%" not in summary


def as_cloudwatch_extracts(cloudwatch: object, line: str) -> None:
    """What CloudWatch does with an embedded-metric-format line in a function's log: each metric under
    each dimension set it names, with the record's values."""
    record = json.loads(line)
    for directive in record["_aws"]["CloudWatchMetrics"]:
        for dimensions in directive["Dimensions"]:
            cloudwatch.put_metric_data(  # type: ignore[attr-defined]
                Namespace=directive["Namespace"],
                MetricData=[
                    {
                        "MetricName": metric["Name"],
                        "Dimensions": [{"Name": d, "Value": record[d]} for d in dimensions],
                        "Value": record[metric["Name"]],
                        "Unit": metric["Unit"],
                    }
                    for metric in directive["Metrics"]
                ],
            )


@mock_aws
@pytest.mark.parametrize(("new_mix", "rolled_back"), [((30, 30, 30), False), ((90, 0, 0), True)])
def test_a_lambda_canary_is_judged_on_its_prediction_mix_against_the_stable_versions(
    config_for: Callable[..., dict[str, str]],
    scorer: tuple[Server, Path],
    new_mix: tuple[int, int, int],
    rolled_back: bool,
) -> None:
    """The lines the handler logs per class (serving/lambda_handler.py; tests/serving/test_lambda_shadow.py
    reads them from the handler under the emulator), as CloudWatch extracts them: the stable version 4
    answered each of three classes alike; the new version ("1" under the mocks) alike too, or
    collapsed onto the first class."""
    from serving.emf import emf_line

    server, metadata = scorer

    class Answering(MockedCloud):
        def up(self, inputs: dict[str, str]) -> dict[str, object]:
            outputs = super().up(inputs)
            if inputs.get("lambdaCanaryPercent") not in (None, "0"):
                for version, counts in (("4", (30, 30, 30)), ("1", new_mix)):
                    for column, rows in enumerate(counts):
                        dimensions = {
                            "Function": "twinserve-scorer-prod",
                            "Version": version,
                            "Class": str(column),
                        }
                        if rows:
                            as_cloudwatch_extracts(
                                self.cloudwatch, emf_line(dimensions, {"Predictions": rows})
                            )
            return outputs

    cloud = Answering(config_for, server.url)
    cloud.cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    rollout = lambda_rollout(config_for, cloud, metadata)
    summary_code = rollout.run()
    summary = "\n".join(rollout.timeline.lines)
    if rolled_back:
        assert summary_code == ROLLED_BACK, summary
        assert re.search(r"\*\*Failed\*\*: lambda prediction mix PSI \d+\.\d{3} \(0 33% → 100%", summary), (
            summary
        )
    else:
        assert summary_code == DEPLOYED, summary
        assert ", mix PSI 0.000 (" in summary


@mock_aws
def test_a_quiet_lambda_canary_is_promoted_and_live_follows_the_new_version(
    config_for: Callable[..., dict[str, str]], scorer: tuple[Server, Path]
) -> None:
    server, metadata = scorer
    cloud = MockedCloud(config_for, server.url)
    rollout = lambda_rollout(config_for, cloud, metadata)
    assert rollout.run() == DEPLOYED
    summary = "\n".join(rollout.timeline.lines)
    assert cloud.ups[-1] == {
        "image": NEW,
        "canaryImage": "",
        "shadowImage": "",
        "lambdaShadow": "false",
        "lambdaStableVersion": "",
        "lambdaCanaryPercent": "0",
    }
    assert "- smoke: lambda: ready, metadata, the model's example and its golden set (4 rows)" in summary
    assert f"**Deployed**: scorer serves all traffic from {NEW}." in summary


def test_behind_a_gateway_a_step_weights_the_route_and_promotion_empties_it(
    config_for: Callable[..., dict[str, str]],
) -> None:
    p = plan(config_for, Running(OLD, "7"), rolloutStrategy="linear", rolloutStepPercent=25,
             kubernetesGateway="edge/public")  # fmt: skip
    assert p.inputs(50)["kubernetesCanaryPercent"] == "50"
    assert p.inputs(100)["kubernetesCanaryPercent"] == "0"
    assert p.rollback_inputs()["kubernetesCanaryPercent"] == "0"
    assert "Kubernetes 50% of the Gateway route to 3 canary pod(s)" in p.describe(50)


FORWARD = "kubectl port-forward deployment/iris-canary"


def test_a_port_forward_is_waited_for_and_one_that_exits_is_named() -> None:
    """`listening` with processes in kubectl's place: one that listens late, one that fails."""
    import subprocess
    import sys

    from delivery.errors import Unreachable
    from delivery.targets import listening

    port = free_port()
    server = f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.BaseHTTPRequestHandler)"
    late = [sys.executable, "-c", f"import time, http.server; time.sleep(1); {server}.serve_forever()"]
    with subprocess.Popen(late, stderr=subprocess.PIPE, text=True) as forward:
        try:
            listening(port, forward, FORWARD)
        finally:
            forward.terminate()
    missing = 'error: deployments.apps "iris-canary" not found'
    failing = [sys.executable, "-c", f"import sys; sys.exit({missing!r})"]
    with (
        subprocess.Popen(failing, stderr=subprocess.PIPE, text=True) as forward,
        pytest.raises(Unreachable) as raised,
    ):
        listening(free_port(), forward, FORWARD)
    assert str(raised.value) == f"`{FORWARD}` exited: {missing}"


@mock_aws
def test_a_first_deploy_that_fails_its_smoke_test_says_there_is_nothing_to_roll_back_to(
    config_for: Callable[..., dict[str, str]], scorer: tuple[Server, Path]
) -> None:
    _, metadata = scorer
    cloud = MockedCloud(config_for, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    settings = from_config(config_for("prod", runtimes=["lambda"], modelName="scorer"), "prod")
    plan = Plan(settings, Running(None, None), NEW, "canary")
    rollout = Rollout(plan, cloud, Example.read(metadata), Targets(), 1, 0.25, wait_seconds=1)  # type: ignore[arg-type]
    assert rollout.run() == FAILED
    summary = "\n".join(rollout.timeline.lines)
    assert "Steps: 100%." in summary
    assert "**Failed**: lambda: " in summary
    assert "/v2/health/ready answered unreachable" in summary
    assert "Nothing to roll back to: this stack ran no earlier model." in summary
    assert len(cloud.ups) == 1


def test_the_bake_scrapes_one_pod_of_each_track_on_the_metrics_port_no_service_exposes(
    scorer: tuple[Server, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a given URL, the bake port-forwards to a pod of the track's Deployment on 8082 (a
    stand-in kubectl relays to the test server's metrics port and records how it was asked)."""
    import urllib.request

    from delivery.analysis import scraper

    server, _ = scorer
    metrics_port = int(server.metrics_url.rsplit(":", 1)[1].split("/")[0])
    record = tmp_path / "kubectl.args"
    port_forwarding_kubectl(tmp_path / "bin", record, metrics_port)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    body = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}]}'
    with urllib.request.urlopen(
        urllib.request.Request(f"{server.url}/v2/models/scorer/infer", body), timeout=10
    ):
        pass
    outputs = {
        "kubernetesNamespace": "twinserve-prod",
        "modelName": "scorer",
        "kubernetesCanary": "scorer-canary",
        "kubernetesShadow": "scorer-shadow",
    }
    for track, deployment in (("stable", "scorer"), ("canary", "scorer-canary"), ("shadow", "scorer-shadow")):
        with Targets().metrics(outputs, track) as url:
            snapshot = scraper(url, "scorer")()
        local = url.rsplit(":", 1)[1].split("/")[0]
        assert record.read_text() == f"port-forward -n twinserve-prod deployment/{deployment} {local}:8082"
        assert snapshot.statuses["200"] >= 1

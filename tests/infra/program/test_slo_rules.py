"""The PrometheusRule's alerts through Prometheus' own promtool: the rules as the stack declares them
pass `promtool check rules`, and `promtool test rules` feeds them a canary's series and sees which
alerts fire, on which track, with what description."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from offline.mocks import Run

from tests.engine.conftest import tool_paths

NAMESPACE = "twinserve-prod"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = tool_paths()["PROMTOOL"]
    assert Path(path).is_file(), "no promtool: run `make tools`"
    return path


@pytest.fixture(scope="module")
def rules(run_stack: Callable[..., Run], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prod's PrometheusRule spec, as the stack declares it, as a rules file."""
    run = run_stack("prod", kubernetesPrometheusRule="true")
    spec = run.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs["spec"]
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def series(track: str, status: str, per_15s: int, minutes: int = 12) -> dict[str, str]:
    labels = (f'namespace="{NAMESPACE}",model="iris",route="v2_infer",status_code="{status}",'
              f'twinserve_dev_track="{track}"')  # fmt: skip
    return {"series": f"rest_server_requests_total{{{labels}}}", "values": f"0+{per_15s}x{minutes * 4}"}


def buckets(track: str, fast: int, slow: int, minutes: int = 12) -> list[dict[str, str]]:
    """Latency buckets: `fast` answers under 50 ms and `slow` between 1 and 2.5 s per 15 s."""
    labels = f'namespace="{NAMESPACE}",model="iris",route="v2_infer",twinserve_dev_track="{track}"'
    counts = {"0.05": fast, "1.0": fast, "2.5": fast + slow, "+Inf": fast + slow}
    return [
        {
            "series": f'rest_server_request_duration_seconds_bucket{{{labels},le="{le}"}}',
            "values": f"0+{count}x{minutes * 4}",
        }
        for le, count in counts.items()
    ]


def promtool_test(promtool: str, rules: Path, tmp_path: Path, input_series: list, alerts: list) -> None:
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "15s", "input_series": input_series, "alert_rule_test": alerts}],
    }
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_promtool_check(promtool: str, rules: Path) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


def test_a_canary_failing_one_request_in_ten_fires_the_error_alert_on_its_track_only(
    promtool: str, rules: Path, tmp_path: Path
) -> None:
    healthy_stable = [series("", "200", 100), *buckets("", 100, 0)]
    failing_canary = [series("canary", "200", 90), series("canary", "500", 10), *buckets("canary", 100, 0)]
    description = "10% of iris's answers on the canary track are 5xx (SLO 0.005)"
    promtool_test(promtool, rules, tmp_path, healthy_stable + failing_canary, [
        # Breaching from the first evaluation (1m): pending for 2 minutes, firing from 3m.
        {"eval_time": "2m", "alertname": "TwinserveErrorRatio", "exp_alerts": []},
        {"eval_time": "3m", "alertname": "TwinserveErrorRatio", "exp_alerts": [{
            "exp_labels": {"severity": "critical", "model": "iris", "twinserve_dev_track": "canary"},
            "exp_annotations": {"summary": "iris: ErrorRatio above its SLO", "description": description},
        }]},
        {"eval_time": "10m", "alertname": "TwinserveErrorRatio", "exp_alerts": [{
            "exp_labels": {"severity": "critical", "model": "iris", "twinserve_dev_track": "canary"},
            "exp_annotations": {"summary": "iris: ErrorRatio above its SLO", "description": description},
        }]},
        {"eval_time": "10m", "alertname": "TwinserveThrottleRatio", "exp_alerts": []},
        {"eval_time": "10m", "alertname": "TwinserveP99Latency", "exp_alerts": []},
    ])  # fmt: skip


def test_a_slow_canary_fires_the_p99_alert_and_shed_load_the_throttle_alert(
    promtool: str, rules: Path, tmp_path: Path
) -> None:
    slow_canary = [series("canary", "200", 100), *buckets("canary", 95, 5)]  # 5% between 1 and 2.5 s
    p99 = "iris's p99 latency on the canary track is 2.2s (SLO 1000 ms)"
    shedding_stable = [series("", "200", 90), series("", "429", 10), *buckets("", 90, 0)]
    promtool_test(promtool, rules, tmp_path, slow_canary + shedding_stable, [
        {"eval_time": "10m", "alertname": "TwinserveP99Latency", "exp_alerts": [{
            "exp_labels": {"severity": "critical", "model": "iris", "twinserve_dev_track": "canary"},
            "exp_annotations": {"summary": "iris: P99Latency above its SLO",
                                "description": p99},
        }]},
        {"eval_time": "10m", "alertname": "TwinserveThrottleRatio", "exp_alerts": [{
            "exp_labels": {"severity": "critical", "model": "iris"},
            "exp_annotations": {"summary": "iris: ThrottleRatio above its SLO",
                                "description": "10% of iris's requests on the stable track are shed with 429 "
                                               "(SLO 0.05)"},
        }]},
    ])  # fmt: skip

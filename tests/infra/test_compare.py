"""The cost model against hand-computed cases from AWS's pricing, and the report from a fixed input."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compare.cost import KubernetesProfile, LambdaProfile, break_even, kubernetes_cost, lambda_cost, pods_for
from compare.profiles import quantity

from tests.infra.conftest import INFRA

PRICES: dict[str, Any] = yaml.safe_load((INFRA / "compare" / "prices.yaml").read_text())
MEASUREMENTS = Path(__file__).parent / "measurements.json"


def prices(**changes: Any) -> dict[str, Any]:
    edited = copy.deepcopy(PRICES)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = edited
        for key in parents:
            target = target[key]
        target[leaf] = value
    return edited


def function(
    memory_mb: int = 512,
    arch: str = "x86_64",
    provisioned: int = 0,
    http_api: bool = False,
    duration_ms: float = 1000,
) -> LambdaProfile:
    return LambdaProfile(memory_mb, arch, provisioned, http_api, duration_ms)


def no_logs(**changes: Any) -> dict[str, Any]:
    return prices(lambda_log_bytes_per_request=0, **changes)


def test_aws_pricing_page_example_512_mb_three_million_one_second_calls() -> None:
    # AWS's example: 3M calls of 1 s at 512 MB, free tier applied, at $0.00001667 per GB-s:
    # (1,500,000 - 400,000) GB-s x $0.00001667 = $18.34; (3M - 1M) x $0.20/M = $0.40; total $18.74.
    p = no_logs(
        lambda__include_free_tier=True, lambda__gb_second={"x86_64": 0.00001667, "arm64": 0.0000133334}
    )
    cost = lambda_cost(p, function(), 3_000_000)
    assert cost.lines["compute"] == pytest.approx(18.337, abs=1e-3)
    assert cost.lines["requests"] == pytest.approx(0.40)
    assert cost.total == pytest.approx(18.74, abs=0.005)


def test_arm_function_without_free_tier() -> None:
    # 10M calls of 100 ms at 128 MB on arm64: 125,000 GB-s x $0.0000133334 = $1.666675, plus $2 of requests.
    cost = lambda_cost(no_logs(), function(128, "arm64", duration_ms=100), 10_000_000)
    assert cost.total == pytest.approx(3.666675, abs=1e-6)


def test_billed_duration_rounds_up_to_the_millisecond() -> None:
    fast = lambda_cost(no_logs(), function(1024, duration_ms=0.03), 1_000_000)
    assert fast.lines["compute"] == pytest.approx(1_000_000 * 0.001 * 1 * 0.0000166667)


def test_provisioned_concurrency_bills_the_hours_and_a_cheaper_duration() -> None:
    # 1 GB provisioned all month: 2,628,000 GB-s x $0.0000041667 = $10.950; 1M calls of 100 ms on it:
    # 100,000 GB-s x $0.0000097222 = $0.972; no on-demand compute while it covers the mean concurrency.
    cost = lambda_cost(no_logs(), function(1024, provisioned=1, duration_ms=100), 1_000_000)
    assert cost.lines["provisioned concurrency"] == pytest.approx(10.9501 + 0.97222, abs=1e-3)
    assert cost.lines["compute"] == 0


def test_http_api_and_log_ingestion() -> None:
    # 100M requests: $1.00 per million through an HTTP API; 350 bytes of logs each at $0.50/GB = $17.50.
    cost = lambda_cost(PRICES, function(duration_ms=1, http_api=True), 100_000_000)
    assert cost.lines["HTTP API"] == pytest.approx(100.0)
    assert cost.lines["logs"] == pytest.approx(17.5)


def pod(
    cpu: float = 0.25, memory: float = 0.75, low: int = 2, high: int = 4, rps: float = 400, lb: bool = False
) -> KubernetesProfile:
    return KubernetesProfile(cpu, memory, low, high, 70, rps, lb)


def test_kubernetes_node_share_control_plane_and_load_balancer() -> None:
    # 2 pods, each the larger of 0.25/2 vCPU and 0.75/8 GiB of an m6i.large ($0.096/h), for 730 h: $17.52.
    cost = kubernetes_cost(PRICES, pod(lb=True), 1_000_000, 1)
    assert cost.lines["pods (node share)"] == pytest.approx(2 * 0.125 * 0.096 * 730)
    assert cost.lines["control plane share"] == pytest.approx(73.0)
    assert cost.lines["load balancer"] == pytest.approx((0.0225 + 0.006) * 730)
    assert not cost.notes


def test_replicas_follow_the_load_within_the_bounds() -> None:
    assert pods_for(pod(), 10) == (2, True)
    assert pods_for(pod(), 3 * 280) == (3, True)  # 280 req/s usable per pod at a 70% target
    assert pods_for(pod(), 10_000) == (4, False)
    assert kubernetes_cost(PRICES, pod(), 1_000_000, 10_000).notes == (
        "4 replicas cannot carry the peak of 10000 req/s",
    )


def test_break_even_is_where_the_costs_cross() -> None:
    fn, k8s = function(1024, "arm64", duration_ms=5), pod()
    crossing = break_even(PRICES, fn, k8s, peak_ratio=3)
    assert crossing is not None
    seconds = PRICES["hours_per_month"] * 3600
    at = (
        lambda_cost(PRICES, fn, crossing).total,
        kubernetes_cost(PRICES, k8s, crossing, crossing / seconds * 3).total,
    )
    assert at[0] == pytest.approx(at[1], rel=0.01)
    below = crossing / 2
    assert (
        lambda_cost(PRICES, fn, below).total < kubernetes_cost(PRICES, k8s, below, below / seconds * 3).total
    )


@pytest.mark.parametrize(
    ("text", "value"), [("250m", 0.25), ("1", 1.0), ("768Mi", 0.75), ("1Gi", 1.0), ("2.5", 2.5)]
)
def test_quantities(text: str, value: float) -> None:
    assert quantity(text) == pytest.approx(value)


def run_compare(*args: str | Path, measurements: Path = MEASUREMENTS) -> subprocess.CompletedProcess[str]:
    """`python -m compare` as `make compare` runs it, on fixed measurements."""
    command = [INFRA / ".venv" / "bin" / "python", "-m", "compare", "--measurements", measurements, *args]
    return subprocess.run(command, cwd=INFRA, capture_output=True, text=True, timeout=120)


def test_report_and_charts_from_a_fixed_input(tmp_path: Path) -> None:
    result = run_compare("--out", tmp_path)
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "report.md").read_text()
    assert [line for line in report.splitlines() if line.startswith("## ")] == [
        "## dev",
        "## staging",
        "## prod",
    ]
    for env in ("dev", "staging", "prod"):
        png = (tmp_path / f"{env}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) > 10_000
        assert f"![{env}]({env}.png)" in report
    assert report.count("**Recommendation.** **Lambda**") == 3
    assert "Kubernetes becomes cheaper above" in report
    assert "| Kubernetes: load balancer |" in report.split("## prod")[1]
    assert report.startswith("# Kubernetes or Lambda for iris v1\n")
    assert "Inputs: `features` FP32 [-1, 4]. Outputs: `probabilities` FP32 [-1, 3]." in report
    assert report.count("| | Lambda (LiteRT zip) | Kubernetes (TensorFlow image) |") == 3
    assert "| cold start | 83 ms (zip init) |" in report


def test_a_model_without_a_zip_is_priced_on_the_image_at_the_memory_it_needs(tmp_path: Path) -> None:
    result = run_compare("--out", tmp_path, measurements=MEASUREMENTS.with_name("measurements-reviews.json"))
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Kubernetes or Lambda for reviews v1\n")
    assert "Inputs: `text` BYTES [-1]." in report
    assert (
        "no Lambda zip (the model has no model.tflite (string input 'text': LiteRT has no string tensors)"
        in report
    )
    assert report.count("| | Lambda (TensorFlow image) | Kubernetes (TensorFlow image) |") == 3
    assert "(image init)" in report
    assert "(zip init)" not in report
    dev, staging, prod = (report.split(f"## {env}")[1].split("## ")[0] for env in ("dev", "staging", "prod"))
    assert "Lambda: 1024 MB arm64" in dev  # dev sets 256, too little for TensorFlow
    assert "twinserve:lambdaMemoryMb is 256 for dev, too little for the model image" in dev
    assert "twinserve:lambdaMemoryMb is 512 for staging" in staging  # the default
    assert "too little for the model image" not in prod  # prod sets 1024


def test_a_bad_prices_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("lambda: {}\n")
    result = run_compare("--prices", bad, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {bad} lacks hours_per_month, reviewed,")
    assert not (tmp_path / "out").exists()

"""Monthly cost of each runtime for one environment: a pure function of prices, settings and measurements.

Simplifications, stated in the report: Lambda compute is billed at the first tier; data
transfer is left out (the same for both runtimes); Kubernetes pods are priced as their
share of a node (the larger of their CPU and memory fraction), scaled by the autoscaler's
bounds for the average traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class LambdaProfile:
    memory_mb: int
    architecture: str
    provisioned: int
    http_api: bool
    duration_ms: float  # measured warm handler duration; Lambda bills whole milliseconds


@dataclass(frozen=True)
class KubernetesProfile:
    cpu_request: float  # vCPU
    memory_request_gib: float
    min_replicas: int
    max_replicas: int
    target_cpu_percent: int
    requests_per_second_per_pod: float  # measured throughput of one pod at its CPU request
    load_balancer: bool


@dataclass(frozen=True)
class Cost:
    total: float
    lines: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def month_seconds(prices: dict[str, Any]) -> float:
    return prices["hours_per_month"] * SECONDS_PER_HOUR


def lambda_cost(prices: dict[str, Any], profile: LambdaProfile, requests: float) -> Cost:
    """Requests, GB-seconds (on demand, or at the provisioned rate while provisioned capacity covers them)."""
    p, arch = prices["lambda"], profile.architecture
    gb = profile.memory_mb / 1024
    billed_seconds = math.ceil(profile.duration_ms) / 1000
    gb_seconds = requests * billed_seconds * gb
    mean_concurrency = requests * billed_seconds / month_seconds(prices)
    covered = min(1.0, profile.provisioned / mean_concurrency) if mean_concurrency else 0.0
    free_requests = p["free_tier"]["requests"] if p["include_free_tier"] else 0
    free_gb_seconds = p["free_tier"]["gb_seconds"] if p["include_free_tier"] else 0
    on_demand_gb_seconds = max(0.0, gb_seconds * (1 - covered) - free_gb_seconds)
    lines = {
        "requests": max(0.0, requests - free_requests) / 1e6 * p["requests_per_million"],
        "compute": on_demand_gb_seconds * p["gb_second"][arch],
        "provisioned concurrency": profile.provisioned
        * gb
        * month_seconds(prices)
        * p["provisioned_gb_second"][arch]
        + gb_seconds * covered * p["provisioned_duration_gb_second"][arch],
        "HTTP API": requests / 1e6 * prices["http_api_requests_per_million"] if profile.http_api else 0.0,
        "logs": requests
        * prices["lambda_log_bytes_per_request"]
        / 1e9
        * prices["cloudwatch_logs_ingestion_per_gb"],
    }
    return Cost(sum(lines.values()), lines)


def pods_for(profile: KubernetesProfile, requests_per_second: float) -> tuple[int, bool]:
    """Replicas the autoscaler would run for this load, and whether the max can carry it."""
    usable = profile.requests_per_second_per_pod * profile.target_cpu_percent / 100
    needed = math.ceil(requests_per_second / usable) if usable else profile.max_replicas
    return min(max(needed, profile.min_replicas), profile.max_replicas), needed <= profile.max_replicas


def kubernetes_cost(
    prices: dict[str, Any], profile: KubernetesProfile, requests: float, peak_rps: float
) -> Cost:
    k, hours = prices["kubernetes"], prices["hours_per_month"]
    node = k["node"]
    pods, _ = pods_for(profile, requests / month_seconds(prices))
    _, carries_peak = pods_for(profile, peak_rps)
    share = max(profile.cpu_request / node["vcpu"], profile.memory_request_gib / node["memory_gib"])
    lines = {
        "pods (node share)": pods * share * node["hourly"] * hours,
        "control plane share": k["control_plane_hourly"] * k["control_plane_share"] * hours,
        "load balancer": (k["load_balancer_hourly"] + k["load_balancer_lcu_hourly"]) * hours
        if profile.load_balancer
        else 0.0,
    }
    notes = (
        ()
        if carries_peak
        else (f"{profile.max_replicas} replicas cannot carry the peak of {peak_rps:g} req/s",)
    )
    return Cost(sum(lines.values()), lines, notes)


def break_even(
    prices: dict[str, Any], fn: LambdaProfile, pod: KubernetesProfile, peak_ratio: float
) -> float | None:
    """Monthly requests above which Kubernetes costs less than Lambda (None if it never does up to 1e12)."""

    def lambda_minus_kubernetes(requests: float) -> float:
        peak = requests / month_seconds(prices) * peak_ratio
        return lambda_cost(prices, fn, requests).total - kubernetes_cost(prices, pod, requests, peak).total

    low, high = 1.0, 1e12
    if lambda_minus_kubernetes(low) > 0:
        return 0.0
    if lambda_minus_kubernetes(high) < 0:
        return None
    for _ in range(200):  # bisection on a log scale
        middle = math.sqrt(low * high)
        low, high = (middle, high) if lambda_minus_kubernetes(middle) < 0 else (low, middle)
    return high

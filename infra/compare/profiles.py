"""From an environment's settings and the measurements to the cost model's profiles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from program.settings import Settings

from compare.cost import KubernetesProfile, LambdaProfile

# Lambda allocates one full vCPU at 1,769 MB and CPU in proportion below it.
FULL_VCPU_MB = 1769
UNITS = {"": 1.0, "m": 1e-3, "Ki": 2**-20, "Mi": 2**-10, "Gi": 1.0, "Ti": 2**10}


def quantity(text: str) -> float:
    """A Kubernetes quantity in cores or GiB: "250m" → 0.25, "768Mi" → 0.75."""
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


@dataclass(frozen=True)
class Traffic:
    requests_per_month: float
    peak_rps: float


def lambda_profile(settings: Settings, measured: dict[str, Any]) -> LambdaProfile:
    """The measured warm handler time, slowed in proportion to the CPU share Lambda gives this memory size."""
    handler = measured["warm"][
        "lambda_zip_handler" if settings.function.package == "zip" else "lambda_image_handler"
    ]
    slowdown = max(1.0, FULL_VCPU_MB / settings.function.memory_mb)
    return LambdaProfile(
        settings.function.memory_mb,
        settings.function.architecture,
        settings.function.provisioned_concurrency,
        settings.function.endpoint == "http-api",
        handler["p50_ms"] * slowdown,
    )


def kubernetes_profile(settings: Settings, measured: dict[str, Any]) -> KubernetesProfile:
    """A pod's throughput at its CPU request: the one-worker rate times the cores its workers can use."""
    cpu = quantity(settings.kubernetes.cpu_request)
    per_core = measured["warm"]["kubernetes_pod"]["requests_per_second"]
    return KubernetesProfile(
        cpu,
        quantity(settings.kubernetes.memory_request),
        settings.kubernetes.min_replicas,
        settings.kubernetes.max_replicas,
        settings.kubernetes.target_cpu_percent,
        per_core * min(cpu, settings.kubernetes.workers),
        settings.kubernetes.service_type == "LoadBalancer",
    )

"""The SLO every runtime is held to, and its Prometheus form for clusters with the Prometheus Operator.

The same three signals as the Lambda alarms and the deploy's canary analysis (`infra/delivery/canary.py`):
the share of inference answers that are 5xx, the share that are 429 (load shed), and p99 latency,
each over the model's V2 infer and TF Serving predict routes, per track (stable or canary pods).
An alert fires after 2 minutes in breach, as a Lambda alarm does after 2 breaching minutes of 3.
"""

from __future__ import annotations

from program.settings import Slo
from serving.contract import INFERENCE_ROUTES
from serving.contract import LATENCY_METRIC as LATENCY
from serving.contract import REQUESTS_METRIC as REQUESTS

# The pods' track label as Prometheus sees it (a PodMonitor's podTargetLabels); empty on stable pods.
TRACK_LABEL = "twinserve_dev_track"
WINDOW = "5m"
# Fewer mirrored rows compared than this judge no shadow: the bake's analysis and Lambda's alarm.
MIN_SHADOW_ROWS = 100
FOR = "2m"


def _ratio(selector: str, status: str) -> str:
    by = f"sum by ({TRACK_LABEL})"
    return (
        f'{by} (rate({REQUESTS}_total{{{selector},status_code=~"{status}"}}[{WINDOW}]))\n'
        f"/\n{by} (rate({REQUESTS}_total{{{selector}}}[{WINDOW}]))"
    )


def alert_rules(model: str, namespace: str, slo: Slo) -> list[dict]:
    """One PrometheusRule group: the three SLO alerts for `model`'s pods in `namespace`."""
    selector = f'namespace="{namespace}",model="{model}",route=~"{"|".join(INFERENCE_ROUTES)}"'
    p99 = (
        f"histogram_quantile(0.99, sum by ({TRACK_LABEL}, le) "
        f"(rate({LATENCY}_bucket{{{selector}}}[{WINDOW}])))"
    )
    track = f'{{{{ or $labels.{TRACK_LABEL} "stable" }}}}'
    alerts = [
        ("ErrorRatio", f"{_ratio(selector, '5..')}\n> {slo.error_ratio:g}",
         f"{{{{ $value | humanizePercentage }}}} of {model}'s answers on the {track} track are 5xx "
         f"(SLO {slo.error_ratio:g})"),
        ("ThrottleRatio", f"{_ratio(selector, '429')}\n> {slo.throttle_ratio:g}",
         f"{{{{ $value | humanizePercentage }}}} of {model}'s requests on the {track} track are shed "
         f"with 429 (SLO {slo.throttle_ratio:g})"),
        ("P99Latency", f"{p99}\n> {slo.p99_ms / 1000:g}",
         f"{model}'s p99 latency on the {track} track is {{{{ $value | humanizeDuration }}}} "
         f"(SLO {slo.p99_ms} ms)"),
    ]  # fmt: skip
    rules = [
        {
            "alert": f"Twinserve{name}",
            "expr": expr,
            "for": FOR,
            "labels": {"severity": "critical", "model": model},
            "annotations": {"summary": f"{model}: {name} above its SLO", "description": description},
        }
        for name, expr, description in alerts
    ]
    return [{"name": f"twinserve-{model}-slo", "rules": rules}]

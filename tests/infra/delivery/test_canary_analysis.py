"""The canary's arithmetic against Prometheus' own rules: histogram_quantile, counter resets, and
the decision on a scripted series of scrapes."""

from __future__ import annotations

import pytest
from delivery.analysis import Snapshot, Thresholds, parse, quantile, window
from delivery.canary import INCONCLUSIVE, PROMOTE, ROLL_BACK, analyse
from program.settings import Slo

DEFAULT = Thresholds(Slo(), min_requests=50)

INF = float("inf")


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.99, {0.1: 50, 0.5: 90, 1.0: 100, INF: 100}, 0.95),  # linear inside (0.5, 1]
        (0.5, {0.1: 50, 0.5: 90, 1.0: 100, INF: 100}, 0.1),
        (0.99, {0.1: 50, INF: 100}, 0.1),  # in +Inf: the highest finite bound
        (0.99, {0.1: 0, INF: 0}, None),  # nothing observed
    ],
)
def test_quantile_as_histogram_quantile_computes_it(q: float, buckets: dict, expected: float | None) -> None:
    assert quantile(q, buckets) == (pytest.approx(expected) if expected is not None else None)


EXPOSITION = """\
# TYPE rest_server_requests_total counter
rest_server_requests_total{model="m",route="v2_infer",status_code="200"} 90.0
rest_server_requests_total{model="m",route="tf_predict",status_code="500"} 6.0
rest_server_requests_total{model="m",route="v2_infer",status_code="429"} 4.0
rest_server_requests_total{model="m",route="ready",status_code="200"} 1000.0
rest_server_requests_total{model="other",route="v2_infer",status_code="500"} 50.0
# TYPE rest_server_request_duration_seconds histogram
rest_server_request_duration_seconds_bucket{le="0.01",model="m",route="v2_infer",status_code="200"} 80.0
rest_server_request_duration_seconds_bucket{le="0.1",model="m",route="v2_infer",status_code="200"} 90.0
rest_server_request_duration_seconds_bucket{le="+Inf",model="m",route="v2_infer",status_code="200"} 90.0
rest_server_request_duration_seconds_bucket{le="0.01",model="m",route="tf_predict",status_code="500"} 0.0
rest_server_request_duration_seconds_bucket{le="0.1",model="m",route="tf_predict",status_code="500"} 6.0
rest_server_request_duration_seconds_bucket{le="+Inf",model="m",route="tf_predict",status_code="500"} 6.0
"""


def test_only_the_models_inference_routes_count() -> None:
    snapshot = parse(EXPOSITION, "m")
    assert snapshot.statuses == {"200": 90.0, "500": 6.0, "429": 4.0}
    assert snapshot.buckets == {0.01: 80.0, 0.1: 96.0, INF: 96.0}
    seen = window(Snapshot(), snapshot)
    assert (seen.requests, seen.errors, seen.throttled) == (100, 6, 4)
    assert seen.error_ratio == pytest.approx(0.06)


def test_a_counter_that_went_down_restarted() -> None:
    seen = window(Snapshot({"200": 100.0}), Snapshot({"200": 30.0, "500": 3.0}))
    assert (seen.requests, seen.errors) == (33, 3)


def scripted(*snapshots: Snapshot) -> tuple:
    series, now = iter(snapshots), [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return (lambda: next(series)), (lambda: now[0]), sleep


def test_the_first_breach_rolls_back_and_the_timeline_shows_each_step() -> None:
    scrape, clock, sleep = scripted(
        Snapshot({"200": 0}),
        Snapshot({"200": 20, "500": 5}),  # 25 requests: too few to judge
        Snapshot({"200": 95, "500": 5}),  # 5 % errors over 100 requests
        Snapshot({"200": 500, "500": 5}),
    )
    analysis = analyse(
        scrape,
        Thresholds(Slo(), min_requests=50),
        bake_seconds=60,
        interval=10,
        clock=clock,
        sleep=sleep,
    )
    assert analysis.verdict == ROLL_BACK
    assert analysis.reason == "error ratio 0.0500 > 0.0100"
    assert [(s.seconds, s.kubernetes.requests, bool(s.breaches)) for s in analysis.steps] == [
        (10, 25, False),
        (20, 100, True),
    ]


def test_a_clean_bake_promotes_and_a_quiet_one_is_inconclusive() -> None:
    clean = scripted(Snapshot({"200": 0}), Snapshot({"200": 60}), Snapshot({"200": 120}))
    assert analyse(clean[0], DEFAULT, 20, 10, clean[1], clean[2]).verdict == PROMOTE
    quiet = scripted(Snapshot({"200": 0}), Snapshot({"200": 10}), Snapshot({"200": 20}))
    analysis = analyse(quiet[0], DEFAULT, 20, 10, quiet[1], quiet[2])
    assert analysis.verdict == INCONCLUSIVE
    assert analysis.reason == "20 requests in 20 s, fewer than the 50 a verdict needs"
